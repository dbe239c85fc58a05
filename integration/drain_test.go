//go:build integration

package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainLosesNoRequest stops site A's anycastd with SIGTERM while
// a client sends requests to the VIP the whole time. anycastd first
// re-announces the VIP with GRACEFUL_SHUTDOWN (65535:0); the core gives such
// paths local-pref 0 (RFC 8326), so traffic moves to site B while site A
// still serves; only after drain_time (2s) is the route withdrawn. The
// client must see no failed request and end up answered by site B.
func TestSIGTERMDrainLosesNoRequest(t *testing.T) {
	l := startTwoSite(t)

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lastErr string
	var last string
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			site, err := get(l, "client", vipURL2)
			mu.Lock()
			if err != nil {
				failed.Add(1)
				lastErr = err.Error()
			} else {
				ok.Add(1)
				last = site
			}
			mu.Unlock()
		}
	}()
	eventually(t, 5*time.Second, 20*time.Millisecond, "client requests flowing", func() error {
		if ok.Load() < 5 {
			return fmt.Errorf("%d answered so far", ok.Load())
		}
		return nil
	})

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- l.KillNode("site-a", syscall.SIGTERM) }()
	tMoved := eventually(t, 10*time.Second, 10*time.Millisecond, "core prefers site B while site A drains",
		bestFrom(l, "core", vip2, edgeB))
	eventually(t, 10*time.Second, 10*time.Millisecond, "site A's path gone at the core after the drain",
		noPathFrom(l, "core", vip2, edgeA))
	tGone := time.Since(start)
	if err := <-stopped; err != nil {
		t.Errorf("stopping site-a's anycastd: %v", err)
	}
	eventually(t, 5*time.Second, 20*time.Millisecond, "client answered by site-b", answeredBy(l, "client", vipURL2, "site-b"))
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("SIGTERM drain of site-a: core moved to site B after %v, site A's path withdrawn after %v; "+
		"client: %d requests answered, %d failed", ms(tMoved), ms(tGone), ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the drain (last error: %s); want none", failed.Load(), lastErr)
	}
	if last != "site-b" {
		t.Errorf("last answer from %q, want site-b", last)
	}
	if tMoved >= tGone {
		t.Errorf("the core moved to site B only when the route was withdrawn (%v, %v): graceful shutdown had no effect", tMoved, tGone)
	}
}
