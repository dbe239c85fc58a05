package announcer

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// gatedSpeaker is a fake speaker that holds its sessions after Start, as
// the GoBGP adapter does with graceful restart, and can stop for a
// restart.
type gatedSpeaker struct {
	*fakeSpeaker
	holding bool // owned by the loop's goroutine
}

func (g *gatedSpeaker) HoldingSessions() bool { return g.holding }

func (g *gatedSpeaker) ReleaseSessions(context.Context) error {
	if err := g.log.record("release sessions"); err != nil {
		return err
	}
	g.holding = false
	return nil
}

func (g *gatedSpeaker) StopForRestart(context.Context) error { return g.log.record("stop for restart") }

// grConfig: VIP "web" (vip4, check "web") and VIP "api" (vip6, check
// "api"), graceful restart with restart time rt.
func grConfig(rt time.Duration) *config.Config {
	cfg := fakeConfig()
	cfg.BGP.GracefulRestart, cfg.BGP.GracefulRestartTime = true, rt
	cfg.Checks = append(cfg.Checks, config.Check{Name: "api", Type: config.CheckTCP})
	cfg.VIPs = append(cfg.VIPs, config.VIP{Name: "api", Prefixes: []netip.Prefix{vip6}, Checks: []string{"api"}, Require: 1})
	return cfg
}

func startGated(t *testing.T, cfg *config.Config) (*Announcer, *callLog, func()) {
	t.Helper()
	log := newCallLog()
	sp := &gatedSpeaker{fakeSpeaker: newFakeSpeaker(log), holding: true}
	a := New(cfg, sp, bgptest.DiscardLogger, Options{
		RetryInterval: 5 * time.Millisecond, FlushTimeout: 10 * time.Millisecond, Addresses: fakeAddresses{log},
	})
	stop := run(t, a)
	expectCalls(t, log, "start")
	return a, log, stop
}

// RFC 4724 §2, §4.1: the sessions (and so End-of-RIB) wait until every VIP
// has a first decision; the routes of the decided VIPs are in the speaker
// before the sessions come up. A planned restart withdraws nothing and
// leaves the addresses.
func TestGracefulRestartWaitsForFirstDecisions(t *testing.T) {
	a, log, stop := startGated(t, grConfig(time.Hour))
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	// "api" has not decided: the sessions stay down.
	// A control request is taken only between reconciles: once it is
	// answered, the reconcile that announced (and would have released)
	// is over.
	_ = a.Undrain(context.Background(), "")
	if got := log.peek(); len(got) != 0 {
		t.Fatalf("calls before api's first decision: %q", got)
	}
	a.CheckChanged(checkEvent("api", health.StatusDown))
	expectCalls(t, log, "release sessions")
	// Released once only.
	a.CheckChanged(checkEvent("api", health.StatusUp))
	expectCalls(t, log, "addr add 2001:db8:42::1/128", "announce 2001:db8:42::1/128")

	a.StopForRestart()
	stop()
	got := log.take()
	if !slices.Equal(got, []string{"stop for restart"}) {
		t.Fatalf("planned restart: calls %q, want only the speaker's stop for restart (nothing withdrawn, addresses kept)", got)
	}
}

// Without every first decision, the sessions come up at the latest
// releaseShare of the restart time after the start, before the routers
// drop the stale routes.
func TestGracefulRestartReleasesBeforeTheRestartTimeRunsOut(t *testing.T) {
	start := time.Now()
	_, log, stop := startGated(t, grConfig(400*time.Millisecond))
	defer stop()
	expectCalls(t, log, "release sessions")
	if took, want := time.Since(start), 300*time.Millisecond; took < want-20*time.Millisecond || took > want+500*time.Millisecond {
		t.Errorf("released after %s, want about %s", took, want)
	}
}

func TestUndecided(t *testing.T) {
	cfg := grConfig(time.Hour)
	cfg.VIPs = append(cfg.VIPs, config.VIP{Name: "both", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.9/32")},
		Checks: []string{"web", "api"}, Require: 1})
	l := &loop{Announcer: &Announcer{}}
	l.setConfig(cfg)
	for _, tc := range []struct {
		checks map[string]routes.CheckStatus
		want   []string
	}{
		{map[string]routes.CheckStatus{}, []string{"web", "api", "both"}},
		// "both" needs one of two: web up decides it.
		{map[string]routes.CheckStatus{"web": {Status: health.StatusUp}}, []string{"api"}},
		// web down: "both" still waits for api.
		{map[string]routes.CheckStatus{"web": {Status: health.StatusDown}}, []string{"api", "both"}},
		{map[string]routes.CheckStatus{"web": {Status: health.StatusDown}, "api": {Status: health.StatusDown}}, nil},
	} {
		d := routes.Compute(cfg, tc.checks, routes.Overrides{Now: time.Now()})
		if got := undecided(l.vips, tc.checks, d.VIPs); !slices.Equal(got, tc.want) {
			t.Errorf("checks %v: undecided %q, want %q", tc.checks, got, tc.want)
		}
	}
}

// With the real speaker: the session is held administratively down until
// the VIP's first decision; then it comes up with the capability of RFC
// 4724 §3: the Restart State bit, the restart time, and each family with
// the Forwarding State bit.
func TestGoBGPGracefulRestart(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.BGP.GracefulRestart, cfg.BGP.GracefulRestartTime = true, 90*time.Second
	sp := NewGoBGP(bgptest.DiscardLogger)
	a := New(cfg, sp, bgptest.DiscardLogger, Options{})
	run(t, a)

	adminState := func() api.PeerState_AdminState {
		st := api.PeerState_ADMIN_STATE_UNSPECIFIED
		_ = sp.s.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) { st = p.GetState().GetAdminState() })
		return st
	}
	bgptest.Eventually(t, wait, func() bool { return adminState() != api.PeerState_ADMIN_STATE_UNSPECIFIED },
		"the speaker has its peer", nil)
	if st := adminState(); st != api.PeerState_ADMIN_STATE_DOWN {
		t.Fatalf("before the VIP's first decision the session is %v, want held down", st)
	}
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP at router", nil)

	var gr *api.GracefulRestartCapability
	for _, c := range r.RemoteCaps(t, edgeAddr) {
		if g := c.GetGracefulRestart(); g != nil {
			gr = g
		}
	}
	if gr == nil {
		t.Fatal("the router received no graceful-restart capability")
	}
	if gr.Time != 90 || gr.Flags&0x08 == 0 {
		t.Errorf("capability: restart time %d, flags %#x; want 90 and the Restart State bit (0x08)", gr.Time, gr.Flags)
	}
	if len(gr.Tuples) != 1 || gr.Tuples[0].GetFamily().GetAfi() != api.Family_AFI_IP || gr.Tuples[0].Flags&0x80 == 0 {
		t.Errorf("capability tuples %v; want ipv4 unicast with the Forwarding State bit (0x80)", gr.Tuples)
	}
}

// A stop while the sessions are still held after a graceful restart brings
// them up with nothing announced, so the routers drop the routes they kept
// from the previous run (End-of-RIB) instead of keeping them for the
// restart time.
func TestGracefulRestartStopWhileHeldReleases(t *testing.T) {
	a, log, stop := startGated(t, grConfig(time.Hour))
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	stop()
	expectCalls(t, log, "withdraw 203.0.113.42/32", "release sessions", "stop", "addr close")
}
