package health

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// startScheduler runs a scheduler until the test ends.
func startScheduler(t *testing.T) (*scheduler, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := newScheduler()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, ctx
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not done after 5s", what)
	}
}

func TestSchedulerRunsEveryRunner(t *testing.T) {
	s, ctx := startScheduler(t)
	rctx, cancel := context.WithCancel(ctx)
	const n = 200
	var inflight, maxInflight [n]atomic.Int64
	var runners []*Runner
	var dones []<-chan struct{}
	for i := range n {
		r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error {
			k := inflight[i].Add(1)
			defer inflight[i].Add(-1)
			if k > maxInflight[i].Load() {
				maxInflight[i].Store(k)
			}
			time.Sleep(7 * time.Millisecond) // ignores ctx and outlives the timeout
			return nil
		}), nil, nil)
		runners = append(runners, r)
		dones = append(dones, s.add(rctx, r))
	}
	waitFor(t, 10*time.Second, func() bool {
		for _, r := range runners {
			if r.probes() < 3 {
				return false
			}
		}
		return true
	})
	cancel()
	for i, d := range dones {
		waitClosed(t, d, "runner")
		if m := maxInflight[i].Load(); m != 1 {
			t.Fatalf("runner %d had %d probes in flight at once", i, m)
		}
	}
}

func TestSchedulerStopsOneRunner(t *testing.T) {
	s, ctx := startScheduler(t)

	// Waiting in the heap: its first probe is up to a second away, and
	// any after it an hour.
	var calls atomic.Int64
	idle := NewRunner(testCheck(time.Hour, time.Second, 1, 1), CheckerFunc(func(context.Context) error {
		calls.Add(1)
		return nil
	}), nil, nil)
	ictx, icancel := context.WithCancel(ctx)
	idleDone := s.add(ictx, idle)

	// Probing.
	started := make(chan struct{})
	busy := NewRunner(testCheck(10*time.Millisecond, time.Minute, 1, 1), CheckerFunc(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), nil, nil)
	bctx, bcancel := context.WithCancel(ctx)
	busyDone := s.add(bctx, busy)
	waitClosed(t, started, "first probe")

	other := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error { return nil }), nil, nil)
	s.add(ctx, other)

	before := calls.Load() // 0, or 1 if its first probe came early
	icancel()
	waitClosed(t, idleDone, "idle runner")
	bcancel()
	waitClosed(t, busyDone, "busy runner")
	if h := busy.State().History; len(h) != 0 {
		t.Errorf("probe cut short by its stop was recorded: %+v", h)
	}
	// The others go on.
	n := other.probes()
	waitFor(t, 5*time.Second, func() bool { return other.probes() > n+2 })
	if c := calls.Load(); c != before {
		t.Errorf("stopped runner probed %d times after its stop", c-before)
	}

	// Added with its context already done: finished at once.
	dctx, dcancel := context.WithCancel(ctx)
	dcancel()
	waitClosed(t, s.add(dctx, NewRunner(testCheck(time.Hour, time.Second, 1, 1), nil, nil, nil)), "runner added stopped")
}
