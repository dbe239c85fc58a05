package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

const vip = "dns"

func guarded(v Verdict) bool   { return v.Guarded }
func permitted(v Verdict) bool { return !v.Guarded }

// reportUp reports vip up at every node and waits until each sees them all.
func reportUp(t *testing.T, sites int, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		n.g.Report(vip, routes.StateUp, time.Now(), "")
	}
	for _, n := range nodes {
		n.waitSites(vip, sites)
	}
}

func TestFloorGuardRelease(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("ams2", "edge1"))
	c := startNode(t, s.fleetCfg("fra1", "edge1"))
	reportUp(t, 3, a, b, c)

	a.engage(vip, 1)
	v := a.waitVerdict(vip, 5*time.Second, "permitted", permitted)
	if v.Others != 2 || v.Reason != "2 other sites announce it (ams2, fra1), min_sites 1" || v.Seq == 0 {
		t.Errorf("a: %+v", v)
	}
	b.engage(vip, 1)
	v = b.waitVerdict(vip, 5*time.Second, "permitted", permitted)
	if v.Others != 1 || v.Reason != "1 other site announces it (fra1), min_sites 1" {
		t.Errorf("b: %+v", v)
	}
	c.engage(vip, 1)
	v = c.waitVerdict(vip, 5*time.Second, "guarded", guarded)
	if v.Others != 0 || v.Reason != "no other site announces it, min_sites 1" || v.Took <= 0 {
		t.Errorf("c: %+v", v)
	}
	// The fleet sees the guarded VIP at fra1.
	a.waitSites(vip, 1)
	if got := entryState(a.g.View(), vip, "fra1"); got != routes.StateGuarded {
		t.Errorf("a sees fra1 %q, want guarded", got)
	}

	// ams1 recovers: fra1 may withdraw now; ams2 stays withdrawn.
	a.recover(vip)
	v = c.waitVerdict(vip, 5*time.Second, "permitted after ams1 came back", permitted)
	if v.Reason != "1 other site announces it (ams1), min_sites 1" {
		t.Errorf("c: %+v", v)
	}
	if v, _ := b.verdict(vip); v.Guarded {
		t.Errorf("b: %+v", v)
	}
	a.waitSites(vip, 1)
}

func entryState(v View, vip, site string) routes.State {
	for _, e := range v.Entries {
		if e.VIP == vip && e.Site == site {
			return e.State
		}
	}
	return ""
}

func TestLockContention(t *testing.T) {
	s := startEtcd(t)
	var nodes []*node
	for i := range 5 {
		nodes = append(nodes, startNode(t, s.fleetCfg(fmt.Sprintf("site%d", i), "edge1")))
	}
	for round := range 3 {
		reportUp(t, 5, nodes...)
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { n.engage(vip, 2) })
		}
		wg.Wait()
		for _, n := range nodes {
			n.waitVerdict(vip, 10*time.Second, "a verdict", func(Verdict) bool { return true })
		}
		// Settled: every node's view shows exactly 2 sites announcing, and
		// the verdicts agree with it.
		for _, n := range nodes {
			n.waitSites(vip, 2)
		}
		g := 0
		for _, n := range nodes {
			if v, _ := n.verdict(vip); v.Guarded {
				g++
			}
		}
		if g != 2 {
			t.Fatalf("round %d: %d guarded, want 2", round, g)
		}
		for _, n := range nodes {
			n.recover(vip)
		}
	}
}

func TestSameSiteCountsOnce(t *testing.T) {
	s := startEtcd(t)
	a1 := startNode(t, s.fleetCfg("ams1", "edge1"))
	a2 := startNode(t, s.fleetCfg("ams1", "edge2"))
	b := startNode(t, s.fleetCfg("fra1", "edge1"))
	reportUp(t, 2, a1, a2, b)

	b.engage(vip, 2)
	v := b.waitVerdict(vip, 5*time.Second, "guarded", guarded)
	if v.Others != 1 || v.Reason != "only 1 other site announces it (ams1), min_sites 2" {
		t.Errorf("b: %+v", v)
	}
	// edge2 keeps ams1 counted for edge1.
	a1.engage(vip, 2)
	v = a1.waitVerdict(vip, 5*time.Second, "permitted", permitted)
	if v.Others != 2 {
		t.Errorf("a1: %+v", v)
	}
}

func TestLeaseExpiry(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("fra1", "edge1"))
	reportUp(t, 2, a, b)
	b.engage(vip, 1)
	b.waitVerdict(vip, 5*time.Second, "permitted", permitted)

	start := time.Now()
	a.kill()
	v := b.waitVerdict(vip, 10*time.Second, "guarded once ams1's lease expired", guarded)
	if v.Reason != "no other site announces it, min_sites 1" {
		t.Errorf("b: %+v", v)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("guarded after %s, before ams1's lease (2s) could expire", took)
	}
	if _, known := b.g.View().Sites(vip); known != 1 {
		t.Errorf("b still sees ams1's entry: %+v", b.g.View().Entries)
	}
}

func TestCoordinatorLost(t *testing.T) {
	s := startEtcd(t)
	hold := startNode(t, s.fleetCfg("ams1", "edge1"))
	lc := s.fleetCfg("ams2", "edge1")
	lc.OnCoordinatorLost = config.CoordinatorLostLocal
	local := startNode(t, lc)
	other := startNode(t, s.fleetCfg("fra1", "edge1"))
	reportUp(t, 3, hold, local, other)
	hold.engage(vip, 3)
	hold.waitVerdict(vip, 5*time.Second, "guarded", guarded)
	// In "hold", a VIP already withdrawn with the store's permit stays
	// withdrawn when the store is lost: nothing comes back.
	for _, n := range []*node{local, other} {
		n.g.Report("ntp", routes.StateUp, time.Now(), "")
	}
	hold.waitSites("ntp", 2)
	hold.engage("ntp", 1)
	hold.waitVerdict("ntp", 5*time.Second, "permitted", permitted)
	local.engage(vip, 3)
	local.waitVerdict(vip, 5*time.Second, "guarded", guarded)

	// etcd stops taking requests at once, but its Close waits for open
	// streams for 7s: stop it while the guard notices.
	start := time.Now()
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	bound := 4 * time.Second // the probe's 1s timeout, and slack
	v := hold.waitVerdict(vip, bound, "the hold verdict", func(v Verdict) bool { return v.Others == -1 })
	if !v.Guarded || !strings.Contains(v.Reason, `on_coordinator_lost = "hold"`) {
		t.Errorf("hold: %+v", v)
	}
	v = local.waitVerdict(vip, bound, "the local verdict", func(v Verdict) bool { return v.Others == -1 })
	if v.Guarded || !strings.Contains(v.Reason, `on_coordinator_lost = "local"`) {
		t.Errorf("local: %+v", v)
	}
	if v, _ := hold.verdict("ntp"); v.Guarded || v.Others < 0 {
		t.Errorf("hold: the withdrawn VIP got %+v; want it left withdrawn", v)
	}
	if c := hold.g.View().Coordinator; c.Connected || c.Err == "" {
		t.Errorf("hold's coordinator: %+v", c)
	}
	t.Logf("lost verdicts within %s", time.Since(start))
	// New engagements are answered at once.
	t0 := time.Now()
	hold.engage("web", 1)
	local.engage("web", 1)
	hold.waitVerdict("web", time.Second, "hold verdict on a new engagement", guarded)
	local.waitVerdict("web", time.Second, "local verdict on a new engagement", permitted)
	t.Logf("new engagements answered within %s", time.Since(t0))
	// on_coordinator_lost changes live.
	hc := *hold.cfg
	hc.OnCoordinatorLost = config.CoordinatorLostLocal
	hold.g.SetConfig(&hc)
	v = hold.waitVerdict("web", time.Second, "local verdict after the reload", permitted)
	if !strings.Contains(v.Reason, `on_coordinator_lost = "local"`) {
		t.Errorf("hold after reload: %+v", v)
	}
	// Back to "hold": what was withdrawn meanwhile stays withdrawn; a new
	// engagement is held.
	hold.g.SetConfig(hold.cfg)
	hold.engage("ntp2", 1)
	hold.waitVerdict("ntp2", time.Second, "hold verdict after the reload", guarded)
	if v, _ := hold.verdict("web"); v.Guarded {
		t.Errorf("web came back after the reload to hold: %+v", v)
	}

	<-stopped
	s.start()
	for _, n := range []*node{hold, local} {
		waitFor(t, 15*time.Second, n.cfg.Node+" connected again", func() bool { return n.g.View().Coordinator.Connected })
	}
	// Decided anew (the first node back may see the others' entries gone
	// with their leases, and be guarded until they publish again).
	hold.waitVerdict(vip, 10*time.Second, "decided again", func(v Verdict) bool { return v.Others >= 0 && v.Guarded })
	local.waitVerdict(vip, 10*time.Second, "guarded again", func(v Verdict) bool { return v.Others >= 0 && v.Guarded })
	// One warning for the outage, however many retries, and one line for
	// the recovery.
	if l := hold.logLines("level=WARN"); len(l) != 1 || !strings.Contains(l[0], "fleet coordinator (etcd) cannot be reached") {
		t.Errorf("warnings: %q", l)
	}
	if l := hold.logLines("level=INFO", "reached again"); len(l) != 1 {
		t.Errorf("recovery lines: %q", l)
	}
}

func TestDrainSlots(t *testing.T) {
	s := startEtcd(t)
	ca, cb := s.fleetCfg("ams1", "edge1"), s.fleetCfg("ams2", "edge1")
	ca.MaxDrained, cb.MaxDrained = 1, 1
	a, b := startNode(t, ca), startNode(t, cb)

	granted := func(n *node) func() bool {
		return func() bool { ev, ok := n.lastDrain(); return ok && ev.Granted }
	}
	waiting := func(n *node, detail string) func() bool {
		return func() bool { ev, ok := n.lastDrain(); return ok && !ev.Granted && ev.Detail == detail }
	}
	a.g.RequestDrainSlot("kernel upgrade")
	waitFor(t, 5*time.Second, "a granted", granted(a))
	b.g.RequestDrainSlot("kernel upgrade")
	waitFor(t, 5*time.Second, "b waiting", waiting(b, "waiting for a drain slot: 1 of 1 held by ams1/edge1"))
	// b's view follows its watch, which may trail its own read.
	waitFor(t, 5*time.Second, "b's view shows ams1's slot", func() bool {
		sl := b.g.View().Slots
		return len(sl) == 1 && sl[0].Site == "ams1" && sl[0].Reason == "kernel upgrade"
	})

	a.g.ReleaseDrainSlot()
	waitFor(t, 5*time.Second, "b granted after a's release", granted(b))
	a.g.RequestDrainSlot("again")
	waitFor(t, 5*time.Second, "a waiting", waiting(a, "waiting for a drain slot: 1 of 1 held by ams2/edge1"))

	// max_drained changes live.
	ca2 := *ca
	ca2.MaxDrained = 2
	a.g.SetConfig(&ca2)
	waitFor(t, 5*time.Second, "a granted with max_drained 2", granted(a))
	a.g.ReleaseDrainSlot()
	a.g.SetConfig(ca)
	a.g.RequestDrainSlot("again")
	waitFor(t, 5*time.Second, "a waiting again", waiting(a, "waiting for a drain slot: 1 of 1 held by ams2/edge1"))

	b.kill()
	waitFor(t, 10*time.Second, "a granted once b's lease expired", granted(a))
}

func TestReportBatching(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("ams2", "edge1"))
	waitFor(t, 5*time.Second, "a connected", func() bool { return a.g.View().Coordinator.Connected })
	before := a.count.writes.Load()
	const n = 2000
	for i := range n {
		a.g.Report(fmt.Sprintf("vip%d", i), routes.StateUp, time.Now(), "")
	}
	waitFor(t, 20*time.Second, "b sees 2000 entries", func() bool { return len(b.g.View().Entries) == n })
	writes := a.count.writes.Load() - before
	t.Logf("%d reports in %d transactions", n, writes)
	if writes < n/MaxOps || writes > n/MaxOps+5 {
		t.Errorf("%d transactions for %d reports, want about %d", writes, n, n/MaxOps)
	}
	// Forget is batched too, and the entries vanish.
	for i := range n {
		a.g.Forget(fmt.Sprintf("vip%d", i))
	}
	waitFor(t, 20*time.Second, "b sees none", func() bool { return len(b.g.View().Entries) == 0 })
}

func TestStopRevokes(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("ams2", "edge1"))
	reportUp(t, 2, a, b)
	a.stop()
	// Well before the 2s lease could expire.
	waitFor(t, time.Second, "ams1's entry gone at once", func() bool { n, _ := b.g.View().Sites(vip); return n == 1 })
}

func TestReadView(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	reportUp(t, 1, a) // a's own view shows its report at once; etcd follows
	var v View
	var err error
	waitFor(t, 5*time.Second, "ams1's entry in etcd", func() bool {
		v, err = ReadView(context.Background(), s.fleetCfg("fra1", "edge1"))
		return err != nil || len(v.Entries) > 0
	})
	if err != nil || !v.Coordinator.Connected || len(v.Entries) != 1 || v.Entries[0].Site != "ams1" || v.Entries[0].State != routes.StateUp {
		t.Errorf("ReadView: %+v, %v", v, err)
	}
	cfg := s.fleetCfg("fra1", "edge1")
	cfg.EtcdEndpoints = []string{freeURL(t)}
	cfg.Timeout = 200 * time.Millisecond
	if v, err := ReadView(context.Background(), cfg); err == nil || v.Coordinator.Connected {
		t.Errorf("ReadView of nothing: %+v, %v", v, err)
	}
}

func TestStartWithoutEtcd(t *testing.T) {
	s := newEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	a.g.Report(vip, routes.StateUp, time.Now(), "")
	a.engage(vip, 1)
	v := a.waitVerdict(vip, 3*time.Second, "the hold verdict", guarded)
	if v.Others != -1 || !strings.Contains(v.Reason, "cannot be reached") {
		t.Errorf("%+v", v)
	}
	if c := a.g.View().Coordinator; c.Connected || c.Err == "" {
		t.Errorf("coordinator: %+v", c)
	}
	s.start()
	waitFor(t, 10*time.Second, "connected", func() bool { return a.g.View().Coordinator.Connected })
	v = a.waitVerdict(vip, 5*time.Second, "decided", func(v Verdict) bool { return v.Others == 0 })
	if !v.Guarded {
		t.Errorf("%+v", v)
	}
	// Its entry was published once connected, as the decision left it.
	waitFor(t, 5*time.Second, "own entry guarded", func() bool { return entryState(a.g.View(), vip, "ams1") == routes.StateGuarded })
}

// A guarded VIP is decided again only once the view has shown enough other
// sites announcing for releaseSettle: a fleet recovering at once sees no
// withdraw-and-announce blip at a site whose own checks rise a moment
// later than the others'.
func TestGuardedReleaseSettles(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("fra1", "edge1"))
	a.g.Report(vip, routes.StateUp, time.Now(), "")
	b.g.Report(vip, routes.StateDown, time.Now(), "")
	a.waitSites(vip, 1)
	a.engage(vip, 1)
	a.waitVerdict(vip, 5*time.Second, "guarded", guarded)

	// fra1 comes back: ams1 is released, but not before releaseSettle.
	t0 := time.Now()
	b.g.Report(vip, routes.StateUp, time.Now(), "")
	a.waitVerdict(vip, 5*time.Second, "permitted once fra1 announces", permitted)
	if took := time.Since(t0); took < releaseSettle {
		t.Errorf("released %v after fra1 came back, before releaseSettle (%v)", took, releaseSettle)
	}

	// fra1 fails: ams1 is guarded again (the floor). fra1 comes back and
	// ams1's own checks rise within the settle time: no verdict at all.
	b.g.Report(vip, routes.StateDown, time.Now(), "")
	a.waitVerdict(vip, 5*time.Second, "guarded again", guarded)
	b.g.Report(vip, routes.StateUp, time.Now(), "")
	a.waitSites(vip, 2)
	a.recover(vip) // a verdict after this would fail the test (onVerdict's seq check)
	for end := time.Now().Add(releaseSettle + 500*time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if v, ok := a.verdict(vip); ok {
			t.Fatalf("verdict after the VIP recovered: %+v", v)
		}
	}
}
