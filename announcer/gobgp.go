package announcer

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgpmetrics "github.com/osrg/gobgp/v4/pkg/metrics"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// GoBGP is the Speaker backed by an embedded GoBGP v4 server. It is the only
// code in anycastd that imports gobgp's pkg/server.
type GoBGP struct {
	logger   *slog.Logger
	s        *server.BgpServer
	localASN uint32

	mu sync.Mutex
	// announced are the prefixes with a path in GoBGP (Withdraw deletes
	// only those).
	announced map[netip.Prefix]bool
	// lastPath is each announced prefix's route as last added, to tell a
	// change of its prepend alone (see Announce).
	lastPath map[netip.Prefix]routes.Route
	// prepends holds each announced prefix's Route.Prepend (none: left
	// out): its membership of the export policy's prepend sets
	// (gobgp_policy.go). Written by the loop's goroutine.
	prepends map[netip.Prefix]int
	// policies are the installed export policy generations' plans, by
	// generation (installPolicies). Owned by the loop's goroutine.
	policies map[int]policyPlan
	// changes are the spans of the latest Announce and Withdraw calls
	// (see resync).
	changes changeLog

	stopWatch context.CancelFunc
	watchDone chan struct{}
	onPeer    func(PeerEvent)
	peerCfg   atomic.Pointer[map[netip.Addr]config.Peer] // configured peers, for log hints and limits

	// What is installed, owned by the loop's goroutine (Start, Configure):
	// the configuration the export policy was built from, its generation,
	// the last generation tried, and each session's settings by address.
	policyFor   *config.Config
	gen         int
	lastGen     int
	sessionsFor map[string]*api.Peer
	// holding: graceful restart, and the loop has not released the
	// sessions yet; peers are added administratively down, restarting
	// (gobgp_restart.go). Set by the loop's goroutine; read by HoldForBFD.
	holding atomic.Bool
	// restartStop: StopForRestart is closing the sessions (for the log).
	restartStop atomic.Bool

	sessions sessionState   // what the session events told (gobgp_peers.go)
	resyncs  sync.WaitGroup // resync goroutines, ended by Stop
}

// OnPeerState registers f to be told of every session state change. Call it
// before Start; f runs in GoBGP's event callback and must not block.
func (g *GoBGP) OnPeerState(f func(PeerEvent)) { g.onPeer = f }

// NewGoBGP returns a speaker that logs through logger. GoBGP's own lines go
// to it too, at anycastd's levels (logger.go: GoBGP's Info is debug).
func NewGoBGP(logger *slog.Logger) *GoBGP {
	g := &GoBGP{logger: logger, announced: make(map[netip.Prefix]bool), lastPath: make(map[netip.Prefix]routes.Route),
		sessionsFor: make(map[string]*api.Peer)}
	g.s = server.NewBgpServer(server.LoggerOption(newGoBGPLogger(logger.With("component", "gobgp"), g.notificationSent, g.notificationReceived), nil))
	// Serve returns once Stop has stopped the instance.
	go g.s.Serve()
	return g
}

// Start implements Speaker.
func (g *GoBGP) Start(ctx context.Context, cfg *config.Config) error {
	listenPort := int32(cfg.BGP.ListenPort)
	if listenPort == 0 {
		listenPort = -1 // GoBGP: no listener
	}
	var listen []string
	for _, a := range cfg.BGP.ListenAddresses {
		listen = append(listen, a.String())
	}
	g.localASN = cfg.BGP.ASN
	err := g.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             cfg.BGP.ASN,
		RouterId:        cfg.BGP.RouterID.String(),
		ListenPort:      listenPort,
		ListenAddresses: listen,
	}})
	if err != nil {
		return fmt.Errorf("starting BGP: %w", err)
	}
	// StartBgp resets policy state, so policies go in after it, and before
	// any peer exists, so no session ever runs without them.
	if err := g.installPolicies(ctx, cfg, 1, true); err != nil {
		return err
	}
	g.policyFor, g.gen, g.lastGen = cfg, 1, 1

	g.setPeers(cfg)
	// The watch is registered before any peer exists: registering it
	// lists the existing peers' state, which races with their FSMs
	// (GoBGP v4.8.0, newWatchEventPeer reading fsm.recvOpen).
	wctx, cancel := context.WithCancel(context.Background())
	g.stopWatch, g.watchDone = cancel, make(chan struct{})
	if err := g.watchPeers(wctx); err != nil {
		cancel()
		close(g.watchDone)
		return fmt.Errorf("watching BGP sessions: %w", err)
	}

	// With graceful restart the sessions stay down until the loop knows
	// every VIP's first decision (ReleaseSessions, gobgp_restart.go).
	g.holding.Store(cfg.BGP.GracefulRestart)
	for _, p := range cfg.BGP.Peers {
		if err := g.addPeer(ctx, p.Address.String(), peerConfig(cfg, p)); err != nil {
			return err
		}
	}
	return nil
}

// setPeers records the configured peers for the event watcher.
func (g *GoBGP) setPeers(cfg *config.Config) {
	m := make(map[netip.Addr]config.Peer, len(cfg.BGP.Peers))
	for _, p := range cfg.BGP.Peers {
		m[p.Address] = p
	}
	g.peerCfg.Store(&m)
}

func peerConfig(cfg *config.Config, p config.Peer) *api.Peer {
	keepalive := p.KeepaliveInterval
	if keepalive == 0 {
		keepalive = p.HoldTime / 3
	}
	peer := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			Description:     p.Description,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(keepalive / time.Second),
			ConnectRetry:      uint64(max(p.ConnectRetry/time.Second, 1)),
		}},
		Transport: &api.Transport{
			PassiveMode: p.Passive,
			RemotePort:  uint32(p.Port),
		},
		GracefulRestart: gracefulRestart(cfg),
	}
	if p.LocalAddress.IsValid() {
		peer.Transport.LocalAddress = p.LocalAddress.String()
	}
	if p.MultihopTTL > 0 {
		peer.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	if p.TTLSecurityHops > 0 {
		// GoBGP v4.8.0 then sends with TTL/hop limit 255 and sets
		// IP_MINTTL (IPV6_MINHOPCOUNT) to TtlMin on the socket, outgoing
		// and accepted alike (RFC 5082 §3).
		peer.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 256 - uint32(p.TTLSecurityHops)}
	}
	for _, f := range p.Families {
		fam := apiFamily(f)
		a := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true},
			MpGracefulRestart: mpGracefulRestart(cfg)}
		if p.MaxReceivedPrefixes > 0 {
			// GoBGP counts the peer's Adj-RIB-In after each UPDATE; above the
			// limit it sends CEASE/Maximum Number of Prefixes Reached and
			// keeps the session administratively down (see prefixLimitExceeded).
			a.PrefixLimits = &api.PrefixLimit{Family: fam, MaxPrefixes: p.MaxReceivedPrefixes}
		}
		peer.AfiSafis = append(peer.AfiSafis, a)
	}
	return peer
}

func apiFamily(f config.Family) *api.Family {
	if f == config.FamilyIPv6 {
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// Announce implements Speaker: one AddPath for the whole batch, so GoBGP
// queues the paths together and packs them into shared UPDATEs. The prepend
// sets are updated first (one call per set).
func (g *GoBGP) Announce(ctx context.Context, rs ...routes.Route) error {
	if len(rs) == 0 {
		return nil
	}
	start := time.Now()
	paths := make([]*apiutil.Path, len(rs))
	for i, r := range rs {
		path, err := buildPath(r)
		if err != nil {
			return fmt.Errorf("building path for %s: %w", r.Prefix, err)
		}
		paths[i] = path
	}
	// A path already announced whose prepend alone changes: the export
	// policy applies the prepend, so the path itself is the same, and
	// GoBGP sends nothing for a path equal to the one it replaces. Its
	// eBGP peers get their routes again below. (When other attributes
	// change too, the new path goes out by itself.)
	g.mu.Lock()
	resend := false
	for _, r := range rs {
		if old, ok := g.lastPath[r.Prefix]; ok && old.Prepend != r.Prepend {
			old.Prepend = r.Prepend
			resend = resend || old.Equal(r)
		}
	}
	g.mu.Unlock()
	if err := g.setPrepends(ctx, rs); err != nil {
		return fmt.Errorf("announcing: %w", err)
	}
	_, err := g.s.AddPath(apiutil.AddPathRequest{Paths: paths})
	if err == nil && resend {
		g.resendToEBGP(ctx)
	}
	g.mu.Lock()
	g.changes.add(start, time.Now())
	if err == nil {
		for _, r := range rs {
			g.announced[r.Prefix] = true
			g.lastPath[r.Prefix] = r
		}
	}
	g.mu.Unlock()
	if err != nil {
		if len(rs) == 1 {
			return fmt.Errorf("announcing %s: %w", rs[0].Prefix, err)
		}
		return fmt.Errorf("announcing %d routes: %w", len(rs), err)
	}
	return nil
}

// Withdraw implements Speaker. It deletes by path, one DeletePath for the
// batch: by UUID, GoBGP walks its whole RIB for each deletion (10 ms each at
// 10,000 routes); and a DeletePath with neither path nor UUID would delete
// every local path, so a prefix that was never announced is not sent at
// all. GoBGP matches a deleted path by its prefix and source only, so the
// path is built again here rather than kept per prefix.
func (g *GoBGP) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	g.mu.Lock()
	var paths []*apiutil.Path
	var gone []netip.Prefix
	for _, p := range prefixes {
		if !g.announced[p] {
			continue
		}
		path, err := buildPath(routes.Route{Prefix: p})
		if err != nil {
			g.mu.Unlock()
			return fmt.Errorf("building path for %s: %w", p, err)
		}
		paths = append(paths, path)
		gone = append(gone, p)
	}
	g.mu.Unlock()
	if len(paths) == 0 {
		return nil
	}
	start := time.Now()
	err := g.s.DeletePath(apiutil.DeletePathRequest{Paths: paths})
	g.mu.Lock()
	g.changes.add(start, time.Now())
	if err == nil {
		for _, p := range gone {
			delete(g.announced, p)
			delete(g.lastPath, p)
		}
	}
	g.mu.Unlock()
	if err != nil {
		if len(gone) == 1 {
			return fmt.Errorf("withdrawing %s: %w", gone[0], err)
		}
		return fmt.Errorf("withdrawing %d routes: %w", len(gone), err)
	}
	// A withdrawal is not evaluated by the export policy: the prefixes
	// leave their prepend sets only to keep the sets small.
	if err := g.clearPrepends(ctx, gone); err != nil {
		g.logger.Warn("removing withdrawn prefixes from their prepend sets", "err", err)
	}
	return nil
}

// SentUpdates implements Speaker, from GoBGP's per-session message
// counters, which count what was written to the socket.
func (g *GoBGP) SentUpdates(ctx context.Context) (map[netip.Addr]uint64, error) {
	out := make(map[netip.Addr]uint64)
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		s := p.GetState()
		if s == nil || s.SessionState != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		addr, err := netip.ParseAddr(s.NeighborAddress)
		if err != nil {
			addr, _ = netip.ParseAddr(p.GetConf().GetNeighborAddress())
		}
		out[addr] = s.GetMessages().GetSent().GetUpdate()
	})
	if err != nil {
		return nil, fmt.Errorf("listing peers: %w", err)
	}
	return out, nil
}

// Peers implements Speaker.
func (g *GoBGP) Peers(ctx context.Context) ([]PeerStatus, error) {
	var out []PeerStatus
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		st := peerStatus(p)
		st.LastError = g.lastError(st.Address)
		st.MaxPrefixesExceeded = g.exceededCount(st.Address)
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("listing peers: %w", err)
	}
	return out, nil
}

// sessionStates names GoBGP's session states as RFC 4271 §8.2.2 does, in
// lower case.
var sessionStates = map[api.PeerState_SessionState]string{
	api.PeerState_SESSION_STATE_IDLE:        "idle",
	api.PeerState_SESSION_STATE_CONNECT:     "connect",
	api.PeerState_SESSION_STATE_ACTIVE:      "active",
	api.PeerState_SESSION_STATE_OPENSENT:    "opensent",
	api.PeerState_SESSION_STATE_OPENCONFIRM: "openconfirm",
	api.PeerState_SESSION_STATE_ESTABLISHED: "established",
}

var fsmStates = map[bgp.FSMState]string{
	bgp.BGP_FSM_IDLE:        "idle",
	bgp.BGP_FSM_CONNECT:     "connect",
	bgp.BGP_FSM_ACTIVE:      "active",
	bgp.BGP_FSM_OPENSENT:    "opensent",
	bgp.BGP_FSM_OPENCONFIRM: "openconfirm",
	bgp.BGP_FSM_ESTABLISHED: "established",
}

func peerStatus(p *api.Peer) PeerStatus {
	st := PeerStatus{}
	if c := p.GetConf(); c != nil {
		st.Address, _ = netip.ParseAddr(c.NeighborAddress)
		st.ASN = c.PeerAsn
		st.Description = c.Description
	}
	if s := p.GetState(); s != nil {
		st.State = sessionStates[s.SessionState]
		if !st.Address.IsValid() {
			st.Address, _ = netip.ParseAddr(s.NeighborAddress)
		}
	}
	if t := p.GetTimers().GetState(); t != nil {
		if st.State == "established" && t.Uptime != nil {
			st.Since = t.Uptime.AsTime()
		} else if t.Downtime != nil {
			st.Since = t.Downtime.AsTime()
		}
	}
	return st
}

// Stop implements Speaker: it closes every session (CEASE, Peer
// De-configured) and stops the instance, its Serve goroutine included.
func (g *GoBGP) Stop(ctx context.Context) error {
	g.s.Stop()
	g.stopped()
	return nil
}

// stopped ends what the speaker runs beside GoBGP once the instance has
// stopped: the session watch, pending prefix-limit restarts, resyncs.
func (g *GoBGP) stopped() {
	if g.stopWatch != nil {
		g.stopWatch()
		<-g.watchDone
		g.stopWatch = nil
	}
	g.stopRestarts()
	g.resyncs.Wait()
}

// Collector returns GoBGP's own Prometheus collector (per-peer message and
// route counts). Each scrape lists the routes advertised to every peer.
func (g *GoBGP) Collector() prometheus.Collector { return gobgpmetrics.NewBgpCollector(g.s) }
