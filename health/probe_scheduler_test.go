package health

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// idleWorkers returns the scheduler's idle workers, the most recently idle
// last.
func idleWorkers(s *scheduler) []*worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*worker(nil), s.idle...)
}

// A burst of concurrent probes starts workers; afterwards a steady check
// keeps reusing the most recently idle one, and the others end after
// workerIdle.
func TestSchedulerLIFOWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, ctx := startScheduler(t)
		const burst = 4
		var started sync.WaitGroup
		started.Add(burst)
		release := make(chan struct{})
		for range burst {
			r := NewRunner(testCheck(time.Hour, time.Minute, 1, 1), CheckerFunc(func(context.Context) error {
				started.Done()
				<-release
				return nil
			}), nil, nil)
			s.add(ctx, r)
		}
		started.Wait() // four probes in flight: four workers
		close(release)
		synctest.Wait()
		if n := len(idleWorkers(s)); n != burst {
			t.Fatalf("%d idle workers after the burst, want %d", n, burst)
		}

		var mu sync.Mutex
		var probes int
		steady := NewRunner(testCheck(100*time.Millisecond, 50*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error {
			mu.Lock()
			probes++
			mu.Unlock()
			return nil
		}), nil, nil)
		top := idleWorkers(s)[burst-1]
		s.add(ctx, steady)
		time.Sleep(time.Second)
		synctest.Wait()
		if idle := idleWorkers(s); len(idle) != burst || idle[burst-1] != top {
			t.Errorf("the steady check did not keep to the most recently idle worker")
		}
		time.Sleep(workerIdle)
		synctest.Wait()
		if idle := idleWorkers(s); len(idle) != 1 || idle[0] != top {
			t.Errorf("%d idle workers after %v, want the steady check's one", len(idle), workerIdle)
		}
		mu.Lock()
		defer mu.Unlock()
		if probes < 100 {
			t.Errorf("%d probes of the steady check in %v", probes, time.Second+workerIdle)
		}
	})
}
