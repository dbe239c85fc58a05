package announcer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// sharedCheckConfig is n VIPs (203.0.113.1… /32) all guarded by check
// "shared".
func sharedCheckConfig(n int) *config.Config {
	cfg := &config.Config{
		BGP:    config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("198.18.1.2")},
		Checks: []config.Check{{Name: "shared", Type: config.CheckTCP}},
	}
	for i := range n {
		cfg.VIPs = append(cfg.VIPs, config.VIP{
			Name:     fmt.Sprintf("v%d", i+1),
			Prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 32)},
			Checks:   []string{"shared"}, Require: 1, RemoveOnWithdraw: true,
		})
	}
	return cfg
}

// VIPs that change together are one batch: every address is on the
// interface before the first of their routes is announced, and the routes
// go to the speaker in one call (the fake logs a batch's calls together);
// their withdrawals likewise, before any address goes.
func TestLoopBatchesAddressesThenRoutes(t *testing.T) {
	a, log, _, stop := startFake(t, sharedCheckConfig(3))
	defer stop()
	a.CheckChanged(checkEvent("shared", health.StatusUp))
	expectCalls(t, log,
		"addr add 203.0.113.1/32", "addr add 203.0.113.2/32", "addr add 203.0.113.3/32",
		"announce 203.0.113.1/32", "announce 203.0.113.2/32", "announce 203.0.113.3/32")
	a.CheckChanged(checkEvent("shared", health.StatusDown))
	expectCalls(t, log,
		"withdraw 203.0.113.1/32", "withdraw 203.0.113.2/32", "withdraw 203.0.113.3/32",
		"addr remove 203.0.113.1/32", "addr remove 203.0.113.2/32", "addr remove 203.0.113.3/32")
}

// One route the speaker refuses does not hold back the others of its
// batch: the batch is tried route by route, the refused one is retried
// until it goes out.
func TestLoopBatchFailureIsolated(t *testing.T) {
	a, log, sp, stop := startFake(t, sharedCheckConfig(3))
	defer stop()
	log.failNext("announce 203.0.113.2/32", 2)
	a.CheckChanged(checkEvent("shared", health.StatusUp))
	expectCalls(t, log,
		"addr add 203.0.113.1/32", "addr add 203.0.113.2/32", "addr add 203.0.113.3/32",
		"announce 203.0.113.2/32 (failed)", // the batch
		"announce 203.0.113.1/32",          // one by one
		"announce 203.0.113.2/32 (failed)",
		"announce 203.0.113.3/32",
		"addr add 203.0.113.2/32", "announce 203.0.113.2/32", // the retry (the address call is idempotent)
	)
	if n := len(sp.routes()); n != 3 {
		t.Fatalf("speaker holds %d routes, want 3", n)
	}
}

// The loop recomputes only the VIPs an event touched. Whatever the order of
// check transitions, drains and undrains, what it announces (and shows)
// must equal a computation of every VIP from the same inputs.
func TestLoopIncrementalEqualsFull(t *testing.T) {
	const nVIPs, nChecks, steps = 40, 8, 300
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := &config.Config{BGP: config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("198.18.1.2")}}
	cfg.Node.DrainTime = time.Hour // a drained VIP stays draining
	for c := range nChecks {
		cfg.Checks = append(cfg.Checks, config.Check{Name: fmt.Sprintf("c%d", c), Type: config.CheckTCP})
	}
	med := uint32(500)
	for i := range nVIPs {
		v := config.VIP{
			Name:     fmt.Sprintf("v%02d", i),
			Prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 32)},
		}
		for _, c := range rng.Perm(nChecks)[:1+rng.IntN(3)] {
			v.Checks = append(v.Checks, fmt.Sprintf("c%d", c))
		}
		v.Require = 1 + rng.IntN(len(v.Checks))
		if i%3 == 0 {
			v.Degraded = &config.Degraded{MinPassing: 1, MED: &med}
		}
		cfg.VIPs = append(cfg.VIPs, v)
	}
	log := newCallLog()
	sp := newFakeSpeaker(log)
	a := New(cfg, sp, bgptest.DiscardLogger, Options{RetryInterval: 5 * time.Millisecond, FlushTimeout: 10 * time.Millisecond})
	defer run(t, a)()

	checks := map[string]routes.CheckStatus{}
	drained := map[string]routes.Drain{}
	statuses := []health.Status{health.StatusUp, health.StatusDown}
	ctx := context.Background()
	for step := range steps {
		switch r := rng.IntN(10); {
		case r < 8:
			c := fmt.Sprintf("c%d", rng.IntN(nChecks))
			s := statuses[rng.IntN(2)]
			checks[c] = routes.CheckStatus{Status: s}
			a.CheckChanged(checkEvent(c, s))
		case r == 8:
			v := cfg.VIPs[rng.IntN(nVIPs)].Name
			if err := a.Drain(ctx, v, "test", 0); err != nil {
				t.Fatal(err)
			}
			if _, ok := drained[v]; !ok {
				drained[v] = routes.Drain{Reason: "test"}
			}
		default:
			v := cfg.VIPs[rng.IntN(nVIPs)].Name
			if err := a.Undrain(ctx, v); err != nil {
				t.Fatal(err)
			}
			delete(drained, v)
		}
		// A control call is answered after the loop reconciled what came
		// before it: a barrier.
		if err := a.Undrain(ctx, "v-none-"+fmt.Sprint(step)); err == nil {
			t.Fatal("undrain of an unknown VIP succeeded")
		}
		if err := a.Undrain(ctx, ""); err != nil {
			t.Fatal(err)
		}
		snap := a.Snapshot()
		ov := routes.Overrides{Now: time.Now(), Drained: map[string]routes.Drain{}}
		for v := range drained {
			ov.Drained[v] = routes.Drain{Reason: "test", Since: time.Now()}
		}
		want := routes.Compute(cfg, checks, ov)
		got := routes.Table{}
		for _, r := range snap.Announced {
			got[r.Prefix] = r
		}
		if diff := cmp.Diff(want.Routes, got, cmp.Comparer(routes.Route.Equal)); diff != "" {
			t.Fatalf("step %d: announced (-full computation +loop):\n%s", step, diff)
		}
		if diff := cmp.Diff(want.Routes, routes.Table(sp.routes()), cmp.Comparer(routes.Route.Equal)); diff != "" {
			t.Fatalf("step %d: speaker (-full computation +loop):\n%s", step, diff)
		}
		for i, st := range snap.VIPs {
			if w := want.VIPs[i]; st.Name != w.Name || st.State != w.State {
				t.Fatalf("step %d: VIP %s is %s, a full computation says %s %s", step, st.Name, st.State, w.Name, w.State)
			}
		}
	}
}

// A drain that ends is applied by the next reconcile, whichever event the
// loop took first: its timer may fire while another event is taken, and
// that reconcile must not compute only what the event marked.
func TestLoopTimeDrivenChangeAfterAnotherEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fakeConfig()
		cfg.Node.DrainTime = time.Second
		log := newCallLog()
		a := New(cfg, newFakeSpeaker(log), bgptest.DiscardLogger, Options{})
		l := a.newLoop()
		ctx := context.Background()
		l.checkChanged(checkEvent("web", health.StatusUp))
		l.reconcile(ctx)
		if err := l.control(controlReq{drain: true, vip: "web", source: drainAPI, reason: "test"}); err != nil {
			t.Fatal(err)
		}
		l.reconcile(ctx)
		if st := l.states["web"].State; st != routes.StateDraining {
			t.Fatalf("VIP %s after the drain request, want draining", st)
		}
		log.take()
		time.Sleep(2 * time.Second) // the drain time is over
		l.reconcile(ctx)            // as after any other event: nothing marked
		if st := l.states["web"].State; st != routes.StateDisabled {
			t.Errorf("VIP %s once the drain time is over, want disabled", st)
		}
		if calls := log.take(); !slices.Contains(calls, "withdraw 203.0.113.42/32") {
			t.Errorf("calls %q once the drain time is over, want the withdrawal", calls)
		}
	})
}
