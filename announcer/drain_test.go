package announcer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
)

func up(a *Announcer)   { a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp}) }
func down(a *Announcer) { a.CheckChanged(health.Event{Check: "web", Status: health.StatusDown}) }

func established(t *testing.T, r *bgptest.Router) func() bool {
	return func() bool { st, _, _ := r.PeerState(t, edgeAddr); return st == "established" }
}

// Drain: the router sees the VIP with GRACEFUL_SHUTDOWN before it sees the
// withdrawal, and the session stays up throughout.
func TestDrainAnnouncesGracefulShutdownThenWithdraws(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.Node.DrainTime = 500 * time.Millisecond
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4]; return ok }, "VIP at router", nil)
	_, _, uptime := r.PeerState(t, edgeAddr)

	if err := a.Drain(context.Background(), "web", "maintenance", 0); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		return slices.Contains(r.Received(t)[vip4].Communities, "65535:0")
	}, "VIP with graceful-shutdown 65535:0 at router", nil)
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 0 }, "withdrawal after the drain time", nil)
	if st := a.Snapshot().VIPs[0]; st.State != "disabled" || st.Reason != "drained: maintenance" {
		t.Errorf("VIP state %s %q, want disabled \"drained: maintenance\"", st.State, st.Reason)
	}
	st, _, after := r.PeerState(t, edgeAddr)
	if st != "established" || !after.Equal(uptime) {
		t.Errorf("session %s since %v, want established since %v (never reset)", st, after, uptime)
	}

	if err := a.Drain(context.Background(), "nope", "", 0); err == nil {
		t.Error("draining an unknown VIP succeeded")
	}
	if err := a.Undrain(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		rt, ok := r.Received(t)[vip4]
		return ok && !slices.Contains(rt.Communities, "65535:0")
	}, "VIP back without graceful-shutdown after undrain", nil)
}

func TestMaintenanceFileDrainsAndRestores(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	file := filepath.Join(t.TempDir(), "maintenance")
	cfg := testConfig(r)
	cfg.Node.DrainTime = 200 * time.Millisecond
	cfg.VIPs[0].MaintenanceFile = file
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP at router", nil)

	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 0 }, "withdrawal while the maintenance file exists", nil)
	if st := a.Snapshot().VIPs[0]; st.State != "disabled" {
		t.Errorf("VIP state %s, want disabled", st.State)
	}
	os.Remove(file)
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP back once the file is gone", nil)
}

func TestDegradeAnnouncesWithPrepends(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.VIPs[0].OnFailure = config.OnFailureDegrade
	cfg.VIPs[0].Degraded = &config.Degraded{Prepend: 3, Communities: []config.Community{65001<<16 | 666}}
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4]; return ok }, "VIP at router", nil)
	_, updates, _ := r.PeerState(t, edgeAddr)

	down(a)
	want := []uint32{65001, 65001, 65001, 65001} // eBGP prepends once more
	bgptest.Eventually(t, wait, func() bool {
		return slices.Equal(r.Received(t)[vip4].ASPath, want)
	}, "degraded VIP with 3 prepends", func() string { return fmtRoute(r.Received(t)[vip4]) })
	if c := r.Received(t)[vip4].Communities; !slices.Contains(c, "65001:666") {
		t.Errorf("degraded communities %v lack 65001:666", c)
	}
	// Degrading replaced the route: one UPDATE, no withdrawal in between.
	_, after, _ := r.PeerState(t, edgeAddr)
	if after != updates+1 {
		t.Errorf("router received %d UPDATEs for the degrade, want 1", after-updates)
	}
}

// A check flapping on every interval leads to one hold-down, not a storm of
// UPDATEs.
func TestFlappingCheckIsHeldDown(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.VIPs[0].FlapHoldDown = config.FlapHoldDown{MaxFlaps: 3, Window: time.Minute, HoldDown: time.Hour}
	a, _ := startAnnouncer(t, cfg)
	bgptest.Eventually(t, wait, established(t, r), "session", nil)
	_, before, _ := r.PeerState(t, edgeAddr)
	// up, then 20 flaps: only the first 3 changes reach the router, plus the
	// withdrawal when the hold-down starts.
	for i := 0; i < 21; i++ {
		if i%2 == 0 {
			up(a)
		} else {
			down(a)
		}
		// Let each transition be reconciled on its own, as with real checks.
		want := i%2 == 0
		bgptest.Eventually(t, wait, func() bool {
			s := a.Snapshot()
			return s.VIPs[0].State == "held" || (len(s.Announced) == 1) == want
		}, "transition applied", nil)
	}
	if st := a.Snapshot().VIPs[0]; st.State != "held" {
		t.Fatalf("VIP state %s %q, want held", st.State, st.Reason)
	}
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 0 }, "held VIP withdrawn", nil)
	_, after, _ := r.PeerState(t, edgeAddr)
	if n := after - before; n != 4 {
		t.Errorf("router received %d UPDATEs for 21 check transitions, want 4 (up, down, up, then the hold-down's withdrawal)", n)
	}
}

func fmtRoute(r bgptest.Route) string { return fmt.Sprintf("%s as-path %v", r.Prefix, r.ASPath) }

// startup_delay: nothing is announced until the delay after the first
// session came up, even with checks passing.
func TestStartupDelayHoldsAnnouncements(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.Node.StartupDelay = 700 * time.Millisecond
	sp := NewGoBGP(bgptest.DiscardLogger)
	a := New(cfg, sp, bgptest.DiscardLogger, Options{})
	sp.OnPeerState(a.PeerChanged)
	run(t, a)
	up(a)

	bgptest.Eventually(t, wait, established(t, r), "session", nil)
	sessionUp := time.Now()
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP after the startup delay", nil)
	if took := time.Since(sessionUp); took < 500*time.Millisecond {
		t.Errorf("VIP announced %v after the session came up; startup_delay is 700ms", took)
	}
}
