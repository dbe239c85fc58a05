package announcer

import (
	"context"
	"testing"
	"time"

	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// HoldForBFD closes the session and keeps it down (the router loses this
// node's routes at once, not after the hold time), and releasing the hold
// brings it back with the routes.
func TestHoldForBFD(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	sp := NewGoBGP(bgptest.DiscardLogger)
	a := New(testConfig(r), sp, bgptest.DiscardLogger, Options{})
	run(t, a)
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	established := func() bool { st, _, _ := r.PeerState(t, edgeAddr); return st == "established" }
	bgptest.Eventually(t, wait, func() bool { return established() && len(r.Received(t)) > 0 }, "session and routes", nil)

	ctx := context.Background()
	if err := sp.HoldForBFD(ctx, routerAddr, true, "control_detection_time_expired"); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return !established() && len(r.Received(t)) == 0 },
		"session down and routes gone at the router", nil)
	// Held: GoBGP's own retries do not bring it back (its connect retry
	// here is 1s).
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if established() {
			t.Fatal("the session came back while BFD holds it down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := sp.HoldForBFD(ctx, routerAddr, false, "up"); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return established() && len(r.Received(t)) > 0 }, "session and routes back", nil)
}
