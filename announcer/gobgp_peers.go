package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Session events: the log lines, the LastError of each session, refusals
// during the OPEN exchange, and sessions closed for too many prefixes.

// sessionState is what the speaker learned from GoBGP's session events and
// NOTIFICATIONs. Its own mutex: the event watcher, GoBGP's FSM goroutines
// (through the log handler), the API's reads and Stop all use it.
type sessionState struct {
	mu       sync.Mutex
	state    map[netip.Addr]string // each session's last state event (RFC 4271 §8.2.2, lower case)
	wasUp    map[netip.Addr]bool   // the session has been established since the speaker started
	lastDown map[netip.Addr]string // why each session last went down or was refused
	warned   map[netip.Addr]string // the refusal last logged at warn, until the session comes up
	exceeded map[netip.Addr]uint64 // times closed for exceeding max_received_prefixes
	heard    map[netip.Addr]string // the message of the last NOTIFICATION received, until its state event
	restarts map[netip.Addr]*time.Timer
	bfdHeld  map[netip.Addr]bool // down until BFD is up again (gobgp_bfd.go)
	stopped  bool
}

func (s *sessionState) init() {
	if s.lastDown == nil {
		s.lastDown = make(map[netip.Addr]string)
		s.state = make(map[netip.Addr]string)
		s.wasUp = make(map[netip.Addr]bool)
		s.warned = make(map[netip.Addr]string)
		s.exceeded = make(map[netip.Addr]uint64)
		s.heard = make(map[netip.Addr]string)
		s.restarts = make(map[netip.Addr]*time.Timer)
		s.bfdHeld = make(map[netip.Addr]bool)
	}
}

// lastError is why the session with addr last went down or was refused (""
// if it never was).
func (g *GoBGP) lastError(addr netip.Addr) string {
	g.sessions.mu.Lock()
	defer g.sessions.mu.Unlock()
	return g.sessions.lastDown[addr]
}

// exceededCount is how many times the session with addr was closed for
// exceeding max_received_prefixes since the speaker started.
func (g *GoBGP) exceededCount(addr netip.Addr) uint64 {
	g.sessions.mu.Lock()
	defer g.sessions.mu.Unlock()
	return g.sessions.exceeded[addr]
}

// watchPeers logs every session state change and keeps LastError. Coming up
// is info; going down is warn with GoBGP's reason; a session that goes down
// during the OPEN exchange is warn (refused, once per distinct reason); a
// session with TCP MD5 that never got past "active" is warn with a hint,
// since a wrong password shows no other sign (the router drops the segments
// silently). The routine steps in between are debug. The callback runs on
// the watcher's goroutine and must not block. The watch ends with ctx, then
// g.watchDone is closed.
func (g *GoBGP) watchPeers(ctx context.Context) error {
	err := g.s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, ts time.Time) {
			if ev == nil || ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			ps := ev.Peer.State
			addr := ps.NeighborAddress
			if !addr.IsValid() {
				addr = ev.Peer.Conf.NeighborAddress
			}
			st := PeerStatus{Address: addr, ASN: ps.PeerASN, State: fsmStates[ps.SessionState], Since: ts}
			g.sessions.mu.Lock()
			g.sessions.init()
			prev := g.sessions.state[addr]
			g.sessions.state[addr] = st.State
			g.sessions.mu.Unlock()
			if prev == st.State {
				return
			}
			reason := ""
			if isDownReason(ps.DisconnectReason) {
				reason = explainReason(prev, ps.DisconnectMessage)
			}
			if strings.HasPrefix(reason, "notification-received ") {
				reason += g.takeMessage(addr)
			}
			limited := ps.AdminState == api.PeerState_ADMIN_STATE_PFX_CT && !st.Established()
			if limited {
				reason = g.prefixLimitExceeded(addr)
			}
			problem := "" // up, but some routes unusable (sessions.go)
			if st.Established() {
				problem = sessionProblem((*g.peerCfg.Load())[addr], ps.RemoteCap)
			}
			g.sessions.mu.Lock()
			wasUp := g.sessions.wasUp[addr]
			if st.Established() {
				g.sessions.wasUp[addr] = true
				delete(g.sessions.warned, addr)
			}
			if reason != "" && !st.Established() {
				g.sessions.lastDown[addr] = reason
			}
			if problem != "" {
				g.sessions.lastDown[addr] = problem
			}
			st.LastError = g.sessions.lastDown[addr]
			g.sessions.mu.Unlock()
			if g.onPeer != nil {
				g.onPeer(PeerEvent{Address: addr, ASN: st.ASN, From: prev, To: st.State, Time: ts, LastError: st.LastError})
			}
			attrs := []any{"peer", addr.String(), "asn", st.ASN, "state", st.State}
			switch {
			case st.Established():
				g.logger.Info("BGP session established", attrs...)
				if problem != "" {
					g.logger.Error("BGP session cannot carry this node's IPv4 routes: no extended next hop",
						append(attrs, "reason", problem)...)
				}
				g.sessions.mu.Lock()
				if !g.sessions.stopped {
					g.resyncs.Add(1)
					go g.resync(ctx, addr, ts)
				}
				g.sessions.mu.Unlock()
			case prev == "established" && g.restartStop.Load():
				g.logger.Info("BGP session closed for a planned restart; a router that negotiated graceful restart keeps this node's routes as stale",
					attrs...)
			case prev == "established":
				g.logger.Warn("BGP session lost; the router withdraws this node's routes",
					append(attrs, "from", prev, "reason", reason)...)
			case limited:
				// prefixLimitExceeded logged it.
			case (prev == "opensent" || prev == "openconfirm") && reason != "":
				g.refused(addr, reason)
			case st.State == "active" && (*g.peerCfg.Load())[addr].Password != "" && !wasUp:
				g.logger.Warn("BGP session not coming up; TCP MD5 is configured: a wrong or missing password on either side looks exactly like this",
					attrs...)
			default:
				g.logger.Debug("BGP session state", append(attrs, "from", prev, "reason", reason)...)
			}
		},
	}, server.WatchPeer())
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		close(g.watchDone)
	}()
	return nil
}

// resync sends the session with addr every route again if one may have
// missed it. GoBGP v4.8.0 sends a new session the routes it holds and
// publishes the state change (at up) holding a lock that announcements
// wait for, and only after releasing it marks the session Established for
// its own sends: an announcement or withdrawal that runs in between reaches
// every other session but not this one, and is never sent to it. Such a
// change returns after up; changes that returned before up ran before the
// initial routes were taken, and changes that started after GoBGP was seen
// counting it Established reached it. So once GoBGP counts the session
// Established, a change that returned since up and started before then
// gets a soft reset out (the outbound side
// of RFC 2918's route refresh, no session reset): the router sees the
// routes it has again, and the one it missed.
func (g *GoBGP) resync(ctx context.Context, addr netip.Addr, up time.Time) {
	defer g.resyncs.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		established := false
		err := g.s.ListPeer(ctx, &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
			established = p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
		})
		// If GoBGP says Established, it marked the session so before now: a
		// change started since reaches it.
		seen := time.Now()
		if err != nil || ctx.Err() != nil {
			return
		}
		if established {
			g.mu.Lock()
			missed := g.changes.mayHaveMissed(up, seen)
			g.mu.Unlock()
			if !missed {
				return
			}
			g.logger.Debug("a route changed while the session came up: sending it every route again", "peer", addr.String())
			if err := g.s.ResetPeer(ctx, &api.ResetPeerRequest{
				Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT,
			}); err != nil && ctx.Err() == nil {
				g.logger.Warn("resending routes to a new BGP session", "peer", addr.String(), "err", err)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// isDownReason reports whether r says why a session went down or was
// refused, rather than naming the step that moved it on (an OPEN received,
// the idle hold timer).
func isDownReason(r api.PeerState_DisconnectReason) bool {
	return r != api.PeerState_DISCONNECT_REASON_UNSPECIFIED && r != api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED
}

// notificationSent is told of every NOTIFICATION GoBGP sends (from its log
// handler, on the session's FSM goroutine). On an established session the
// state event that follows carries it. Before Established it is the only
// trace of a refused OPEN exchange: GoBGP v4.8.0 does the exchange of an
// outgoing connection while the session stays "active" and publishes no
// event for a failure there.
func (g *GoBGP) notificationSent(peer string, code, subcode uint8) {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return
	}
	g.sessions.mu.Lock()
	up := g.sessions.state[addr] == "established"
	g.sessions.mu.Unlock()
	if up || code == bgp.BGP_ERROR_CEASE {
		return // Cease: GoBGP's own stop or reconfiguration
	}
	reason := "notification-sent " + bgp.NewNotificationErrorCode(code, subcode).String()
	if code == bgp.BGP_ERROR_FSM_ERROR && subcode == 1 {
		// RFC 6608 §4: a message other than OPEN in OpenSent. A router
		// that refuses this node's OPEN sends a NOTIFICATION, which GoBGP
		// answers so and does not decode.
		reason = invalidWhileOpening // sessions.go
	}
	g.refused(addr, reason)
}

// notificationReceived is told of every NOTIFICATION GoBGP receives (from
// its log handler, on the session's FSM goroutine, before the state event
// that follows it), with the router's message if it sent one (RFC 9003
// Administrative Shutdown or Reset, e.g. BIRD's `disable peer "text"`).
// GoBGP's state event names only the codes; takeMessage adds the message.
func (g *GoBGP) notificationReceived(peer string, _, _ uint8, message string) {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return
	}
	g.sessions.mu.Lock()
	defer g.sessions.mu.Unlock()
	g.sessions.init()
	if message == "" {
		delete(g.sessions.heard, addr)
		return
	}
	g.sessions.heard[addr] = message
}

// takeMessage returns the message of the NOTIFICATION last received from
// addr, quoted (control characters escaped) after ": ", or "" if it had
// none; and forgets it.
func (g *GoBGP) takeMessage(addr netip.Addr) string {
	g.sessions.mu.Lock()
	defer g.sessions.mu.Unlock()
	g.sessions.init()
	m, ok := g.sessions.heard[addr]
	delete(g.sessions.heard, addr)
	if !ok {
		return ""
	}
	return ": " + strconv.Quote(m)
}

// refused records and logs a session refused during the OPEN exchange: at
// warn the first time for each distinct reason, then at debug while the
// session keeps retrying.
func (g *GoBGP) refused(addr netip.Addr, reason string) {
	g.sessions.mu.Lock()
	g.sessions.init()
	g.sessions.lastDown[addr] = reason
	again := g.sessions.warned[addr] == reason
	g.sessions.warned[addr] = reason
	g.sessions.mu.Unlock()
	pc := (*g.peerCfg.Load())[addr]
	attrs := []any{"peer", addr.String(), "asn", pc.ASN, "reason", reason}
	if again {
		g.logger.Debug("BGP session refused while opening", attrs...)
		return
	}
	g.logger.Warn("BGP session refused while opening; retrying, and logging the same refusal again at debug only", attrs...)
}

// prefixLimitExceeded handles a session that GoBGP closed with CEASE,
// Maximum Number of Prefixes Reached (RFC 4486 §4), after the peer's
// Adj-RIB-In for a family grew past max_received_prefixes. GoBGP keeps such
// a session administratively down; this logs it, counts it and, unless
// max_received_prefixes_restart is 0, enables the session again after that
// time. It returns the session's LastError.
func (g *GoBGP) prefixLimitExceeded(addr netip.Addr) string {
	pc := (*g.peerCfg.Load())[addr]
	reason := fmt.Sprintf("notification-sent cease maximum number of prefixes reached (max_received_prefixes %d)", pc.MaxReceivedPrefixes)
	s := &g.sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.exceeded[addr]++
	attrs := []any{"peer", addr.String(), "asn", pc.ASN, "max_received_prefixes", pc.MaxReceivedPrefixes,
		"times", s.exceeded[addr]}
	if pc.MaxReceivedRestart <= 0 || s.stopped {
		g.logger.Warn("BGP peer sent more prefixes than max_received_prefixes in one family: session closed and kept down until a reload changes the peer or anycastd restarts; this node's routes are withdrawn from that router",
			attrs...)
		return reason
	}
	g.logger.Warn("BGP peer sent more prefixes than max_received_prefixes in one family: session closed; this node's routes are withdrawn from that router until it comes up again",
		append(attrs, "restart_in", pc.MaxReceivedRestart.String())...)
	if t := s.restarts[addr]; t != nil {
		t.Stop()
	}
	s.restarts[addr] = time.AfterFunc(pc.MaxReceivedRestart, func() {
		s.mu.Lock()
		stopped := s.stopped
		delete(s.restarts, addr)
		s.mu.Unlock()
		if stopped || g.heldForBFD(addr.String()) {
			return
		}
		g.logger.Info("BGP session closed for too many prefixes: enabling it again", "peer", addr.String())
		if err := g.s.EnablePeer(context.Background(), &api.EnablePeerRequest{Address: addr.String()}); err != nil {
			g.logger.Warn("enabling BGP session after max_received_prefixes", "peer", addr.String(), "err", err)
		}
	})
	return reason
}

// stopRestarts cancels pending restarts of sessions closed for too many
// prefixes; none starts after it, and no resync.
func (g *GoBGP) stopRestarts() {
	s := &g.sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for a, t := range s.restarts {
		t.Stop()
		delete(s.restarts, a)
	}
}

// changeLog keeps the spans (start, end) of the latest route changes.
type changeLog struct {
	spans [changeLogSize][2]time.Time
	next  int
	n     int // spans recorded, at most changeLogSize
}

const changeLogSize = 64

func (c *changeLog) add(start, end time.Time) {
	c.spans[c.next] = [2]time.Time{start, end}
	c.next = (c.next + 1) % changeLogSize
	c.n = min(c.n+1, changeLogSize)
}

// mayHaveMissed reports whether a change may have run while a session was
// coming up: one that returned since up (GoBGP had taken the initial routes
// by then) and started before seen (when the session was seen Established;
// a change that started after it reached the session). With more changes
// since up than the log holds, it says yes.
func (c *changeLog) mayHaveMissed(up, seen time.Time) bool {
	for i := range c.n {
		s := c.spans[(c.next-1-i+changeLogSize)%changeLogSize]
		if s[1].Before(up) {
			return false // this and all older ones returned before up
		}
		if s[0].Before(seen) {
			return true
		}
	}
	return c.n == changeLogSize
}
