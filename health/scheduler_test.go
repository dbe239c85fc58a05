package health

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// startScheduler runs a scheduler until the test ends. It works in and out
// of a synctest bubble.
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
	synctest.Test(t, func(t *testing.T) {
		s, ctx := startScheduler(t)
		rctx, cancel := context.WithCancel(ctx)
		const n = 200
		var overlapped [n]atomic.Bool
		var inflight [n]atomic.Int64
		var runners []*Runner
		var dones []<-chan struct{}
		for i := range n {
			r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error {
				if inflight[i].Add(1) > 1 {
					overlapped[i].Store(true)
				}
				defer inflight[i].Add(-1)
				time.Sleep(7 * time.Millisecond) // ignores ctx and outlives the timeout
				return nil
			}), nil, nil)
			runners = append(runners, r)
			dones = append(dones, s.add(rctx, r))
		}
		// Probes start at each runner's jitter (in [0, 10ms)) + 0, 10, …,
		// 90ms and end 7ms later: 9 or 10 of them have ended by 100ms.
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		for i, r := range runners {
			if p := r.probes(); p < 9 || p > 10 {
				t.Errorf("runner %d recorded %d probes in 100ms at a 10ms interval, want 9 or 10", i, p)
			}
		}
		cancel()
		for i, d := range dones {
			waitClosed(t, d, "runner")
			if overlapped[i].Load() {
				t.Fatalf("runner %d had two probes in flight at once", i)
			}
		}
	})
}

// The first probe comes after a jitter in [0, min(interval, 1s)); each
// later one a whole interval after the previous one was due, however long
// the probes take.
func TestSchedulerTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, ctx := startScheduler(t)
		type probeTimes struct {
			mu     sync.Mutex
			starts []time.Time
		}
		add := func(interval, takes time.Duration) *probeTimes {
			var p probeTimes
			s.add(ctx, NewRunner(testCheck(interval, interval/2, 1, 1), CheckerFunc(func(context.Context) error {
				p.mu.Lock()
				p.starts = append(p.starts, time.Now())
				p.mu.Unlock()
				time.Sleep(takes)
				return nil
			}), nil, nil))
			return &p
		}
		start := time.Now()
		short := add(100*time.Millisecond, 30*time.Millisecond)
		var long []*probeTimes
		for range 20 {
			long = append(long, add(time.Minute, 0))
		}
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()

		short.mu.Lock()
		defer short.mu.Unlock()
		if j := short.starts[0].Sub(start); j < 0 || j >= 100*time.Millisecond {
			t.Errorf("first probe at %v, want a jitter in [0, 100ms)", j)
		}
		if len(short.starts) != 10 {
			t.Errorf("%d probes in a second at a 100ms interval, want 10", len(short.starts))
		}
		for i := 1; i < len(short.starts); i++ {
			if d := short.starts[i].Sub(short.starts[0]); d != time.Duration(i)*100*time.Millisecond {
				t.Errorf("probe %d came %v after the first, want %v", i, d, time.Duration(i)*100*time.Millisecond)
			}
		}

		// At a long interval the jitter is under a second, and spreads the
		// first probes of checks started together.
		firsts := map[time.Time]bool{}
		for _, p := range long {
			p.mu.Lock()
			if len(p.starts) != 1 {
				t.Errorf("%d probes in the first second at a 1m interval, want 1", len(p.starts))
			} else {
				firsts[p.starts[0]] = true
			}
			p.mu.Unlock()
		}
		if len(firsts) < len(long)/2 {
			t.Errorf("first probes of %d checks at %d instants: no jitter", len(long), len(firsts))
		}
	})
}

func TestSchedulerStopsOneRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		// The others go on: 10 probes in 100ms.
		synctest.Wait() // any probe due now has been recorded
		n := other.probes()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if p := other.probes() - n; p != 10 {
			t.Errorf("remaining runner probed %d times in 100ms at a 10ms interval, want 10", p)
		}
		time.Sleep(2 * time.Second) // past the stopped runner's first probe
		if c := calls.Load(); c != before {
			t.Errorf("stopped runner probed %d times after its stop", c-before)
		}

		// Added with its context already done: finished at once.
		dctx, dcancel := context.WithCancel(ctx)
		dcancel()
		waitClosed(t, s.add(dctx, NewRunner(testCheck(time.Hour, time.Second, 1, 1), nil, nil, nil)), "runner added stopped")
	})
}
