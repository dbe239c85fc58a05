//go:build integration

package integration

import (
	"context"
	"errors"
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
// client must end up answered by site B and see no failed request, except
// at most one reset by site B at the moment the core's path moves: a
// connection opened to A whose next segment is routed to B is reset by B.
// That is anycast's own property at any path change (no daemon can avoid
// it); the drain's job is that nothing fails at A's withdrawal and stop.
func TestSIGTERMDrainLosesNoRequest(t *testing.T) {
	l := startTwoSite(t)

	var ok atomic.Int64
	var mu sync.Mutex
	var failures []failedRequest
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
			began := time.Now()
			site, err := get(l, "client", vipURL2)
			mu.Lock()
			if err != nil {
				failures = append(failures, failedRequest{began, time.Now(), err})
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
	movedAt := time.Now()
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
		"client: %d requests answered, %d failed", ms(tMoved), ms(tGone), ok.Load(), len(failures))
	var atMove int
	for _, f := range failures {
		// The core's move is seen by a poll every 10 ms, and zebra puts it
		// in the kernel shortly after: a request that overlaps the 250 ms
		// around that poll is one the move can have cut.
		if errors.Is(f.err, syscall.ECONNRESET) && f.end.After(movedAt.Add(-250*time.Millisecond)) &&
			f.began.Before(movedAt.Add(250*time.Millisecond)) {
			atMove++
			t.Logf("request %v–%v (move seen at 0) was reset at the path move: %v",
				ms(f.began.Sub(movedAt)), ms(f.end.Sub(movedAt)), f.err)
			continue
		}
		t.Errorf("request %v–%v after the core's move failed: %v; want none outside the move",
			ms(f.began.Sub(movedAt)), ms(f.end.Sub(movedAt)), f.err)
	}
	if atMove > 1 {
		t.Errorf("%d requests were reset at the path move; at most one can be in flight then at one request per 20 ms", atMove)
	}
	if last != "site-b" {
		t.Errorf("last answer from %q, want site-b", last)
	}
	if tMoved >= tGone {
		t.Errorf("the core moved to site B only when the route was withdrawn (%v, %v): graceful shutdown had no effect", tMoved, tGone)
	}
}

// failedRequest is one client request that failed: when it began and
// ended, and why.
type failedRequest struct {
	began, end time.Time
	err        error
}
