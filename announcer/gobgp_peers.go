package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Session events: the log lines, the LastError of each session, and the
// sessions closed for sending too many prefixes.

// limitState is what the speaker knows of sessions closed for exceeding
// max_received_prefixes: how often each was, and the timers that let them
// come up again. Its own mutex: the event watcher and Stop both use it.
type limitState struct {
	mu       sync.Mutex
	exceeded map[netip.Addr]uint64
	restarts map[netip.Addr]*time.Timer
	stopped  bool
}

// exceededCount is how many times the session with addr was closed for
// exceeding max_received_prefixes since the speaker started.
func (g *GoBGP) exceededCount(addr netip.Addr) uint64 {
	g.limits.mu.Lock()
	defer g.limits.mu.Unlock()
	return g.limits.exceeded[addr]
}

// watchPeers logs every session state change and keeps LastError. Coming up
// is info; going down is warn with GoBGP's reason; a session refused while
// opening (a NOTIFICATION sent or received in OpenSent or OpenConfirm: wrong
// AS, bad BGP identifier, unsupported capability or version) is warn with
// the NOTIFICATION's code and subcode, once per distinct reason; a session
// with TCP MD5 that never got past "active" is warn with a hint, since a
// wrong password shows no other sign (the router drops the segments
// silently). The routine steps in between (connect, active, opensent) are
// debug. The callback runs on the watcher's goroutine and must not block.
func (g *GoBGP) watchPeers(ctx context.Context) {
	defer close(g.watchDone)
	last := make(map[netip.Addr]string)
	wasUp := make(map[netip.Addr]bool)
	warned := make(map[netip.Addr]string) // last refusal reason logged at warn
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
			prev := last[addr]
			if prev == st.State {
				return
			}
			last[addr] = st.State
			reason := ""
			if isDownReason(ps.DisconnectReason) {
				reason = ps.DisconnectMessage
			}
			limited := ps.AdminState == api.PeerState_ADMIN_STATE_PFX_CT && !st.Established()
			if limited {
				reason = g.prefixLimitExceeded(addr)
			}
			if reason != "" && !st.Established() {
				g.recordDown(addr, reason)
			}
			st.LastError = g.lastError(addr)
			if g.onPeer != nil {
				g.onPeer(st)
			}
			pc := (*g.peerCfg.Load())[addr]
			attrs := []any{"peer", addr.String(), "asn", st.ASN, "state", st.State}
			switch {
			case st.Established():
				wasUp[addr] = true
				delete(warned, addr)
				g.logger.Info("BGP session established", attrs...)
			case prev == "established":
				g.logger.Warn("BGP session lost; the router withdraws this node's routes",
					append(attrs, "from", prev, "reason", reason)...)
			case limited:
				// prefixLimitExceeded logged it.
			case refusedWhileOpening(prev, ps.DisconnectReason) && warned[addr] != reason:
				warned[addr] = reason
				g.logger.Warn("BGP session refused while opening; retrying, further refusals for the same reason are logged at debug",
					append(attrs, "from", prev, "reason", reason)...)
			case st.State == "active" && pc.Password != "" && !wasUp[addr]:
				g.logger.Warn("BGP session not coming up; TCP MD5 is configured: a wrong or missing password on either side looks exactly like this",
					attrs...)
			default:
				g.logger.Debug("BGP session state", append(attrs, "from", prev, "reason", reason)...)
			}
		},
	}, server.WatchPeer())
	if err != nil && !errors.Is(err, context.Canceled) {
		g.logger.Error("watching BGP peers failed", "err", err)
	}
	<-ctx.Done()
}

// isDownReason reports whether r says why a session went down or was
// refused, rather than naming the step that moved it on (an OPEN received,
// the idle hold timer).
func isDownReason(r api.PeerState_DisconnectReason) bool {
	return r != api.PeerState_DISCONNECT_REASON_UNSPECIFIED && r != api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED
}

// refusedWhileOpening reports whether a session left OpenSent or
// OpenConfirm because of a NOTIFICATION or a message GoBGP refused.
func refusedWhileOpening(prev string, r api.PeerState_DisconnectReason) bool {
	if prev != "opensent" && prev != "openconfirm" {
		return false
	}
	switch r {
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT, api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED,
		api.PeerState_DISCONNECT_REASON_INVALID_MSG, api.PeerState_DISCONNECT_REASON_BAD_PEER_AS:
		return true
	}
	return false
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
	g.limits.mu.Lock()
	defer g.limits.mu.Unlock()
	if g.limits.exceeded == nil {
		g.limits.exceeded = make(map[netip.Addr]uint64)
		g.limits.restarts = make(map[netip.Addr]*time.Timer)
	}
	g.limits.exceeded[addr]++
	attrs := []any{"peer", addr.String(), "asn", pc.ASN, "max_received_prefixes", pc.MaxReceivedPrefixes,
		"times", g.limits.exceeded[addr]}
	if pc.MaxReceivedRestart <= 0 || g.limits.stopped {
		g.logger.Warn("BGP peer sent more prefixes than max_received_prefixes in one family: session closed and kept down until a reload changes the peer or anycastd restarts; this node's routes are withdrawn from that router",
			attrs...)
		return reason
	}
	g.logger.Warn("BGP peer sent more prefixes than max_received_prefixes in one family: session closed; this node's routes are withdrawn from that router until it comes up again",
		append(attrs, "restart_in", pc.MaxReceivedRestart.String())...)
	if t := g.limits.restarts[addr]; t != nil {
		t.Stop()
	}
	g.limits.restarts[addr] = time.AfterFunc(pc.MaxReceivedRestart, func() {
		g.limits.mu.Lock()
		stopped := g.limits.stopped
		delete(g.limits.restarts, addr)
		g.limits.mu.Unlock()
		if stopped {
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
// prefixes; none starts after it.
func (g *GoBGP) stopRestarts() {
	g.limits.mu.Lock()
	defer g.limits.mu.Unlock()
	g.limits.stopped = true
	for a, t := range g.limits.restarts {
		t.Stop()
		delete(g.limits.restarts, a)
	}
}
