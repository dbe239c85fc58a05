package announcer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// fakeGuard records the loop's calls to the fleet guard in the shared call
// log ("fleet engage web 2", ...) and keeps the latest report per VIP.
type fakeGuard struct {
	log *callLog
	mu  sync.Mutex
	seq uint64
	rep map[string]routes.State
}

var _ FleetGuard = (*fakeGuard)(nil)

func (g *fakeGuard) Engage(vip string, minSites int) uint64 {
	g.mu.Lock()
	g.seq++
	seq := g.seq
	g.mu.Unlock()
	_ = g.log.record(fmt.Sprintf("fleet engage %s %d", vip, minSites))
	return seq
}
func (g *fakeGuard) Disengage(vip string) { _ = g.log.record("fleet disengage " + vip) }
func (g *fakeGuard) Report(vip string, st routes.State, _ time.Time, _ string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rep[vip] = st
}
func (g *fakeGuard) Forget(vip string)       { _ = g.log.record("fleet forget " + vip) }
func (g *fakeGuard) RequestDrainSlot(string) { _ = g.log.record("fleet request slot") }
func (g *fakeGuard) ReleaseDrainSlot()       { _ = g.log.record("fleet release slot") }
func (g *fakeGuard) lastSeq() uint64         { g.mu.Lock(); defer g.mu.Unlock(); return g.seq }
func (g *fakeGuard) reported(vip string) routes.State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rep[vip]
}

// startFleet runs an announcer for cfg (with [fleet]) over a fake speaker,
// fake addresses and a fake guard, all in one call log.
func startFleet(t *testing.T, cfg *config.Config) (*Announcer, *callLog, *fakeSpeaker, *fakeGuard) {
	t.Helper()
	log := newCallLog()
	sp := newFakeSpeaker(log)
	g := &fakeGuard{log: log, rep: make(map[string]routes.State)}
	a := New(cfg, sp, bgptest.DiscardLogger, Options{
		RetryInterval: 5 * time.Millisecond, FlushTimeout: 10 * time.Millisecond, Addresses: fakeAddresses{log}, Fleet: g,
	})
	stop := run(t, a)
	t.Cleanup(stop)
	expectCalls(t, log, "start")
	return a, log, sp, g
}

func fleetConfig(minSites int) *config.Config {
	cfg := fakeConfig()
	cfg.Fleet = &config.Fleet{Site: "ams1", Node: "edge1", OnCoordinatorLost: config.CoordinatorLostHold}
	cfg.VIPs[0].MinSites = minSites
	return cfg
}

func waitState(t *testing.T, a *Announcer, vip string, want routes.State) routes.VIPStatus {
	t.Helper()
	var got routes.VIPStatus
	bgptest.Eventually(t, wait, func() bool {
		for _, v := range a.Snapshot().VIPs {
			if v.Name == vip && v.State == want {
				got = v
				return true
			}
		}
		return false
	}, fmt.Sprintf("VIP %s to reach %s", vip, want), func() string { return fmt.Sprintf("%+v", a.Snapshot().VIPs) })
	return got
}

// A health-driven withdrawal waits for the guard: nothing is withdrawn
// before its verdict; "guarded" keeps the route, degraded (the default
// prepend); "withdraw" then withdraws it; passing checks disengage.
func TestFleetGuardHoldsHealthDrivenWithdrawal(t *testing.T) {
	a, log, sp, g := startFleet(t, fleetConfig(2))
	up(a)
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	waitState(t, a, "web", routes.StateUp)

	down(a)
	expectCalls(t, log, "fleet engage web 2")
	// Until the verdict the VIP is as it was: up, announced.
	if st := a.Snapshot().VIPs[0]; st.State != routes.StateUp || sp.prefixes() != "203.0.113.42/32" {
		t.Fatalf("before the verdict: state %s, announced %q; want up, announced", st.State, sp.prefixes())
	}
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: g.lastSeq(), Guarded: true, Reason: "only 1 other site announces it, min_sites 2", Others: 1})
	st := waitState(t, a, "web", routes.StateGuarded)
	expectCalls(t, log, "announce 203.0.113.42/32") // replaced in place, degraded
	if r := sp.routes()[vip4]; r.Prepend != routes.GuardedPrepend {
		t.Errorf("guarded route prepend %d, want %d", r.Prepend, routes.GuardedPrepend)
	}
	if g.reported("web") != routes.StateGuarded {
		t.Errorf("reported %s to the fleet, want guarded", g.reported("web"))
	}
	t.Logf("reason: %s", st.Reason)

	// A stale verdict (an older engagement) changes nothing.
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: g.lastSeq() + 7, Guarded: false})
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: g.lastSeq(), Guarded: false, Reason: "2 other sites announce it"})
	waitState(t, a, "web", routes.StateDown)
	expectCalls(t, log, "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32")

	// The fleet drops below the floor again: announced again, guarded.
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: g.lastSeq(), Guarded: true, Reason: "no other site announces it"})
	waitState(t, a, "web", routes.StateGuarded)
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")

	up(a)
	waitState(t, a, "web", routes.StateUp)
	expectCalls(t, log, "fleet disengage web", "announce 203.0.113.42/32")
	if g.reported("web") != routes.StateUp {
		t.Errorf("reported %s to the fleet, want up", g.reported("web"))
	}
}

// A definite failure, a VIP without a floor, and a VIP that was never
// announced here are withdrawn (or stay withdrawn) without asking.
func TestFleetGuardNotAsked(t *testing.T) {
	t.Run("definite failure", func(t *testing.T) {
		a, log, _, _ := startFleet(t, fleetConfig(2))
		up(a)
		expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
		a.CheckChanged(health.Event{Check: "web", Status: health.StatusDown, Last: health.Result{Err: "process 42 exited", Definite: true}})
		expectCalls(t, log, "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32")
		waitState(t, a, "web", routes.StateDown)
	})
	t.Run("min_sites 0", func(t *testing.T) {
		a, log, _, _ := startFleet(t, fleetConfig(0))
		up(a)
		expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
		down(a)
		expectCalls(t, log, "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32")
	})
	t.Run("never announced here", func(t *testing.T) {
		a, log, sp, _ := startFleet(t, fleetConfig(2))
		down(a)
		waitState(t, a, "web", routes.StateDown)
		if calls := log.peek(); len(calls) != 0 || sp.prefixes() != "" {
			t.Fatalf("calls %v, announced %q; want none", calls, sp.prefixes())
		}
	})
}

// With max_drained, a drain takes a fleet drain slot first: while it
// waits, the VIP stays up and the snapshot says so; once granted the drain
// runs; undraining gives the slot back.
func TestFleetDrainSlot(t *testing.T) {
	cfg := fleetConfig(1)
	cfg.Fleet.MaxDrained = 1
	cfg.Node.DrainTime = time.Hour
	a, log, sp, _ := startFleet(t, cfg)
	up(a)
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	waitState(t, a, "web", routes.StateUp)

	done := make(chan error, 1)
	go func() { done <- a.Drain(context.Background(), "", "maintenance", 0) }()
	expectCalls(t, log, "fleet request slot")
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) before the guard said anything about the slot", err)
	case <-time.After(20 * time.Millisecond):
	}
	a.DrainSlotChanged(fleet.DrainSlotEvent{Detail: "waiting for a drain slot: 1 of 1 held by ams2/edge1"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	snap := a.Snapshot()
	if snap.DrainWaiting != "waiting for a drain slot: 1 of 1 held by ams2/edge1" || snap.NodeDrained || snap.VIPs[0].State != routes.StateUp {
		t.Fatalf("waiting: DrainWaiting %q, NodeDrained %v, state %s; want the detail, false, up", snap.DrainWaiting, snap.NodeDrained, snap.VIPs[0].State)
	}
	if r := sp.routes()[vip4]; len(r.Communities) != 0 {
		t.Fatalf("route carries %v while the drain waits", r.Communities)
	}

	a.DrainSlotChanged(fleet.DrainSlotEvent{Granted: true})
	waitState(t, a, "web", routes.StateDraining)
	expectCalls(t, log, "announce 203.0.113.42/32")
	if snap := a.Snapshot(); snap.DrainWaiting != "" || !snap.NodeDrained {
		t.Fatalf("granted: DrainWaiting %q, NodeDrained %v", snap.DrainWaiting, snap.NodeDrained)
	}

	if err := a.Undrain(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "web", routes.StateUp)
	expectCalls(t, log, "fleet release slot", "announce 203.0.113.42/32")
}

// A stop waits for a drain slot at most the drain time, then drains
// anyway.
func TestFleetShutdownDrainsAnywayAfterTheDrainTime(t *testing.T) {
	cfg := fleetConfig(1)
	cfg.Fleet.MaxDrained = 1
	cfg.Node.DrainTime = 150 * time.Millisecond
	a, log, sp, _ := startFleet(t, cfg)
	up(a)
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	waitState(t, a, "web", routes.StateUp)

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.DrainForShutdown(context.Background()) }()
	expectCalls(t, log, "fleet request slot")
	a.DrainSlotChanged(fleet.DrainSlotEvent{Detail: "waiting for a drain slot: 1 of 1 held by ams2/edge1"})
	// As the daemon does: the drain request is answered (once the guard
	// said waiting), then WaitDrained.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := a.WaitDrained(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 2*cfg.Node.DrainTime {
		t.Errorf("drained after %v: the stop should wait the drain time for a slot, then drain for the drain time", took)
	}
	if got := sp.prefixes(); got != "" {
		t.Errorf("after the drain %q is still announced", got)
	}
	t.Logf("waited for a slot, then drained anyway: %v", took)
}

// The guarded route reaches a real router with the default prepend: the
// speaker's export policy has a set for it from the start.
func TestFleetGuardedPrependAtRouter(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.Fleet = &config.Fleet{Site: "ams1", Node: "edge1"}
	cfg.VIPs[0].MinSites = 1
	g := &fakeGuard{log: newCallLog(), rep: make(map[string]routes.State)}
	a := New(cfg, NewGoBGP(bgptest.DiscardLogger), bgptest.DiscardLogger, Options{Fleet: g})
	run(t, a)
	up(a)
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4]; return ok }, "VIP at router", nil)

	down(a)
	waitSeq := func() uint64 {
		for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if s := g.lastSeq(); s > 0 {
				return s
			}
		}
		t.Fatal("the loop never engaged the guard")
		return 0
	}
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: waitSeq(), Guarded: true, Reason: "no other site announces it"})
	want := []uint32{65001, 65001, 65001, 65001} // eBGP prepends once more
	bgptest.Eventually(t, wait, func() bool {
		return slices.Equal(r.Received(t)[vip4].ASPath, want)
	}, "guarded VIP with 3 prepends", func() string {
		return fmt.Sprintf("%s; %+v", fmtRoute(r.Received(t)[vip4]), a.Snapshot().VIPs)
	})
}

// A reload to min_sites = 0 ends the guard's hold: the guarded VIP is
// withdrawn at once, without asking.
func TestFleetReloadToNoFloorWithdrawsGuarded(t *testing.T) {
	cfg := fleetConfig(2)
	a, log, _, g := startFleet(t, cfg)
	up(a)
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	down(a)
	expectCalls(t, log, "fleet engage web 2")
	a.FleetVerdict(fleet.Verdict{VIP: "web", Seq: g.lastSeq(), Guarded: true, Reason: "no other site announces it"})
	waitState(t, a, "web", routes.StateGuarded)
	expectCalls(t, log, "announce 203.0.113.42/32")

	next := fleetConfig(0)
	if err := a.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, "web", routes.StateDown)
	expectCalls(t, log, "fleet disengage web", "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32", "configure")
}

// A stop with nothing announced takes no traffic away: it waits for no
// drain slot.
func TestFleetShutdownWithNothingAnnouncedTakesNoSlot(t *testing.T) {
	cfg := fleetConfig(1)
	cfg.Fleet.MaxDrained = 1
	cfg.Node.DrainTime = time.Hour
	a, log, _, _ := startFleet(t, cfg)
	down(a)
	waitState(t, a, "web", routes.StateDown)
	if err := a.DrainForShutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.WaitDrained(ctx); err != nil {
		t.Fatalf("WaitDrained: %v (DrainWaiting %q)", err, a.Snapshot().DrainWaiting)
	}
	if calls := log.take(); len(calls) != 0 {
		t.Errorf("calls %v; want none (no slot asked for)", calls)
	}
}
