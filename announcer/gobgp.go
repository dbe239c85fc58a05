package announcer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgpmetrics "github.com/osrg/gobgp/v3/pkg/metrics"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// GoBGP is the Speaker backed by an embedded GoBGP v3 server. It is the only
// code in anycastd that imports gobgp's pkg/server.
type GoBGP struct {
	logger   *slog.Logger
	s        *server.BgpServer
	localASN uint32

	mu       sync.Mutex
	paths    map[netip.Prefix]*api.Path // announced paths, for DeletePath
	lastDown map[netip.Addr]string      // why each session last left Established

	stopWatch context.CancelFunc
	watchDone chan struct{}
	onPeer    func(PeerStatus)
	md5       atomic.Pointer[map[netip.Addr]bool] // peers with a TCP MD5 password, for log hints
	gen       int                                 // generation of the installed export policy
}

// OnPeerState registers f to be told of every session state change. Call it
// before Start; f runs in GoBGP's event callback and must not block.
func (g *GoBGP) OnPeerState(f func(PeerStatus)) { g.onPeer = f }

// NewGoBGP returns a speaker that logs through logger. GoBGP's own logs are
// passed to it at the level GoBGP gives them.
func NewGoBGP(logger *slog.Logger) *GoBGP {
	g := &GoBGP{logger: logger, paths: make(map[netip.Prefix]*api.Path), lastDown: make(map[netip.Addr]string)}
	gl := newGoBGPLogger(logger.With("component", "gobgp"))
	gl.peerDown = g.recordPeerDown
	g.s = server.NewBgpServer(server.LoggerOption(gl))
	// In GoBGP v3 Serve never returns, even after StopBgp: this one goroutine
	// outlives the speaker.
	go g.s.Serve()
	return g
}

// recordPeerDown keeps why a session went down (GoBGP's fsm goroutine calls
// it just before the state change is published).
func (g *GoBGP) recordPeerDown(peer, reason string) {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.lastDown[addr] = reason
	g.mu.Unlock()
}

// lastError is why the session with addr last went down ("" if it never did).
func (g *GoBGP) lastError(addr netip.Addr) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastDown[addr]
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

	g.setMD5(cfg)
	wctx, cancel := context.WithCancel(context.Background())
	g.stopWatch, g.watchDone = cancel, make(chan struct{})
	go g.watchPeers(wctx)

	for _, p := range cfg.BGP.Peers {
		if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(cfg, p)}); err != nil {
			return fmt.Errorf("adding peer %s: %w", p.Address, err)
		}
	}
	return nil
}

// installPolicies installs generation gen of the policies for cfg and
// assigns them. Policies of other generations are left to the caller.
func (g *GoBGP) installPolicies(ctx context.Context, cfg *config.Config, gen int, withImport bool) error {
	plan := buildPolicies(cfg, gen)
	for _, s := range plan.sets {
		if err := g.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: s}); err != nil {
			return fmt.Errorf("adding defined set %s: %w", s.Name, err)
		}
	}
	policies := []*api.Policy{plan.export}
	assigned := plan.assigned[1:]
	if withImport {
		policies = append(policies, plan.import_)
		assigned = plan.assigned
	}
	for _, p := range policies {
		if err := g.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p, ReferExistingStatements: false}); err != nil {
			return fmt.Errorf("adding policy %s: %w", p.Name, err)
		}
	}
	for _, a := range assigned {
		if err := g.s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assigning policy %s: %w", a.Policies[0].Name, err)
		}
	}
	g.gen = gen
	return nil
}

func (g *GoBGP) setMD5(cfg *config.Config) {
	m := make(map[netip.Addr]bool, len(cfg.BGP.Peers))
	for _, p := range cfg.BGP.Peers {
		m[p.Address] = p.Password != ""
	}
	g.md5.Store(&m)
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
		GracefulRestart: &api.GracefulRestart{Enabled: cfg.BGP.GracefulRestart},
	}
	if p.LocalAddress.IsValid() {
		peer.Transport.LocalAddress = p.LocalAddress.String()
	}
	if p.MultihopTTL > 0 {
		peer.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	for _, f := range p.Families {
		fam := familyIPv4
		if f == config.FamilyIPv6 {
			fam = familyIPv6
		}
		peer.AfiSafis = append(peer.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}})
	}
	return peer
}

// Announce implements Speaker. AddPath on a prefix that is already announced
// replaces the path (one UPDATE, no withdrawal).
func (g *GoBGP) Announce(ctx context.Context, r routes.Route) error {
	path, err := buildPath(r, g.localASN)
	if err != nil {
		return fmt.Errorf("building path for %s: %w", r.Prefix, err)
	}
	if _, err := g.s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		return fmt.Errorf("announcing %s: %w", r.Prefix, err)
	}
	g.mu.Lock()
	g.paths[r.Prefix] = path
	g.mu.Unlock()
	return nil
}

// Withdraw implements Speaker. It deletes by the path it announced: by UUID,
// GoBGP walks its whole RIB for each deletion (10 ms each at 10,000 routes);
// and a DeletePath with neither path nor UUID would delete every local path,
// so a prefix that was never announced is not sent at all.
func (g *GoBGP) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	g.mu.Lock()
	path := g.paths[prefix]
	g.mu.Unlock()
	if path == nil {
		return nil
	}
	if err := g.s.DeletePath(ctx, &api.DeletePathRequest{
		TableType: api.TableType_GLOBAL, Family: familyOf(prefix), Path: path,
	}); err != nil {
		return fmt.Errorf("withdrawing %s: %w", prefix, err)
	}
	g.mu.Lock()
	delete(g.paths, prefix)
	g.mu.Unlock()
	return nil
}

// SentUpdates implements Speaker, from GoBGP's per-session message
// counters, which count what was written to the socket.
func (g *GoBGP) SentUpdates(ctx context.Context) (map[netip.Addr]uint64, error) {
	out := make(map[netip.Addr]uint64)
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		s := p.GetState()
		if s == nil || s.SessionState != api.PeerState_ESTABLISHED {
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
		out = append(out, st)
	})
	if err != nil {
		return nil, fmt.Errorf("listing peers: %w", err)
	}
	return out, nil
}

func peerStatus(p *api.Peer) PeerStatus {
	st := PeerStatus{}
	if c := p.GetConf(); c != nil {
		st.Address, _ = netip.ParseAddr(c.NeighborAddress)
		st.ASN = c.PeerAsn
		st.Description = c.Description
	}
	if s := p.GetState(); s != nil {
		st.State = strings.ToLower(s.SessionState.String())
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

// watchPeers logs every session state change: coming up at info, going
// down at warn, and a session with TCP MD5 that never got past "active" at
// warn with a hint, since a wrong password shows no other sign (the router
// drops the segments silently). The WatchEvent callback must not block.
func (g *GoBGP) watchPeers(ctx context.Context) {
	defer close(g.watchDone)
	last := make(map[netip.Addr]string)
	wasUp := make(map[netip.Addr]bool)
	err := g.s.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		ev := r.GetPeer()
		if ev == nil || ev.Type != api.WatchEventResponse_PeerEvent_STATE || ev.Peer == nil {
			return
		}
		st := peerStatus(ev.Peer)
		prev := last[st.Address]
		if prev == st.State {
			return
		}
		last[st.Address] = st.State
		if g.onPeer != nil {
			g.onPeer(st)
		}
		attrs := []any{"peer", st.Address.String(), "asn", st.ASN, "state", st.State}
		switch {
		case st.Established():
			wasUp[st.Address] = true
			g.logger.Info("BGP session established", attrs...)
		case prev == "established":
			g.logger.Warn("BGP session lost; the router withdraws this node's routes",
				append(attrs, "from", prev, "reason", g.lastError(st.Address))...)
		case st.State == "active" && (*g.md5.Load())[st.Address] && !wasUp[st.Address]:
			g.logger.Warn("BGP session not coming up; TCP MD5 is configured: a wrong or missing password on either side looks exactly like this",
				attrs...)
		default:
			g.logger.Info("BGP session state", attrs...)
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		g.logger.Error("watching BGP peers failed", "err", err)
		return
	}
	<-ctx.Done()
}

// Stop implements Speaker.
func (g *GoBGP) Stop(ctx context.Context) error {
	err := g.s.StopBgp(ctx, &api.StopBgpRequest{})
	if g.stopWatch != nil {
		g.stopWatch()
		<-g.watchDone
		g.stopWatch = nil
	}
	if err != nil {
		return fmt.Errorf("stopping BGP: %w", err)
	}
	return nil
}

// Collector returns GoBGP's own Prometheus collector (per-peer message and
// route counts). Each scrape lists the routes advertised to every peer.
func (g *GoBGP) Collector() prometheus.Collector { return gobgpmetrics.NewBgpCollector(g.s) }
