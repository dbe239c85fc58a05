package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
)

// timeline records, in order, the probe results and the transitions of a
// Manager's checks: "pass", "fail", "fail!" (a definite failure), "up",
// "down". Events also go to a channel, to wait for them.
type timeline struct {
	mu      sync.Mutex
	entries []string
	events  chan Event
}

func newTimeline() *timeline { return &timeline{events: make(chan Event, 1000)} }

func (tl *timeline) observe(_ string, _ config.CheckType, r Result) {
	s := "pass"
	switch {
	case r.Definite:
		s = "fail!"
	case !r.Passed():
		s = "fail"
	}
	tl.add(s)
}

func (tl *timeline) publish(e Event) {
	tl.add(e.Status.String())
	tl.events <- e
}

func (tl *timeline) add(s string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.entries = append(tl.entries, s)
}

// mark returns a position to read the timeline from.
func (tl *timeline) mark() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.entries)
}

// since returns the entries from mark up to and including the first
// transition after it.
func (tl *timeline) since(mark int) []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for _, e := range tl.entries[mark:] {
		out = append(out, e)
		if e == "up" || e == "down" {
			break
		}
	}
	return out
}

// next waits up to within for the next event and checks its status.
func (tl *timeline) next(t testing.TB, want Status, within time.Duration) Event {
	t.Helper()
	select {
	case e := <-tl.events:
		if e.Status != want {
			t.Fatalf("event %+v, want %v", e, want)
		}
		return e
	case <-time.After(within):
		t.Fatalf("no %v event within %v", want, within)
	}
	return Event{}
}

// startManager runs checks on a Manager that reports to a new timeline,
// until the test ends.
func startManager(t testing.TB, checks ...config.Check) (*Manager, *timeline) {
	t.Helper()
	tl := newTimeline()
	m := NewManager(nil, tl.publish)
	m.OnResult(tl.observe)
	if err := m.Start(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m, tl
}

func TestRunnerDefiniteFailureBypassesFall(t *testing.T) {
	for _, err := range []error{Definite(errors.New("gone")), fmt.Errorf("%w: gone", ErrDefinite)} {
		var events eventLog
		sc := newStepChecker()
		r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 3), sc, nil, events.publish)
		stop := startRunner(t, r)
		feed(t, r, sc, true, true, false)
		before := r.probes()
		sc.results <- err
		waitFor(t, 5*time.Second, func() bool { return r.probes() > before })
		st := r.State()
		if st.Status != StatusDown || st.ConsecutiveFailures != 2 {
			t.Fatalf("after a definite failure: %v with %d failures, want down with 2", st.Status, st.ConsecutiveFailures)
		}
		last := st.History[len(st.History)-1]
		if !last.Definite || last.Err != err.Error() || last.Kind != KindFail {
			t.Errorf("last result %+v", last)
		}
		if st.History[len(st.History)-2].Definite {
			t.Errorf("a plain failure marked definite")
		}
		feed(t, r, sc, true) // rise still applies
		if s := r.Status(); s != StatusDown {
			t.Fatalf("after one pass: %v, want down (rise 2)", s)
		}
		feed(t, r, sc, true)
		if diff := cmp.Diff([]Status{StatusUp, StatusDown, StatusUp}, events.statuses()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if err.Error() != "gone" && err.Error() != "definite failure: gone" {
			t.Errorf("message %q", err)
		}
		stop()
	}
}

// wakeChecker is a Watcher driven by the test: it fails definitely while
// fail is set, and its Watch hands wake over.
type wakeChecker struct {
	fail     atomic.Bool
	calls    atomic.Int64
	block    chan struct{} // while set, a probe waits for it to be closed
	blocking atomic.Bool
	wakes    chan func()
	watching atomic.Int32
	closed   atomic.Int32
}

func newWakeChecker() *wakeChecker { return &wakeChecker{wakes: make(chan func(), 1)} }

func (w *wakeChecker) Check(ctx context.Context) error {
	w.calls.Add(1)
	if w.blocking.Load() {
		select {
		case <-w.block:
		case <-ctx.Done():
		}
	}
	if w.fail.Load() {
		return Definite(errors.New("gone"))
	}
	return nil
}

func (w *wakeChecker) Watch(ctx context.Context, wake func()) {
	w.watching.Add(1)
	defer w.watching.Add(-1)
	w.wakes <- wake
	<-ctx.Done()
}

func (w *wakeChecker) Close() error {
	w.closed.Add(1)
	return nil
}

// runWith runs r until the returned stop, either alone (Runner.Run) or on a
// scheduler (as a Manager does). stop returns once r has stopped.
func runWith(t *testing.T, scheduled bool, r *Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if scheduled {
		s := newScheduler()
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			s.run(ctx)
		}()
		stopped := s.add(ctx, r)
		go func() {
			<-stopped
			<-ran
			close(done)
		}()
	} else {
		go func() {
			defer close(done)
			r.Run(ctx)
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("runner did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestWatcherWakesRunner(t *testing.T) {
	for _, scheduled := range []bool{false, true} {
		t.Run(fmt.Sprintf("scheduled=%v", scheduled), func(t *testing.T) {
			var events eventLog
			w := newWakeChecker()
			// An interval of an hour: only wakes make probes (but for the
			// jittered first one, within a second).
			r := NewRunner(testCheck(time.Hour, time.Minute, 1, 3), w, nil, events.publish)
			stop := runWith(t, scheduled, r)
			wake := <-w.wakes
			wake()
			waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusUp })

			w.fail.Store(true)
			start := time.Now()
			wake()
			waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusDown })
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("down %v after the wake", d)
			}

			// A wake while a probe is in flight makes another probe follow.
			w.fail.Store(false)
			w.block = make(chan struct{})
			w.blocking.Store(true)
			calls := w.calls.Load()
			wake()
			waitFor(t, 5*time.Second, func() bool { return w.calls.Load() == calls+1 })
			wake()
			wake()
			w.blocking.Store(false)
			close(w.block)
			waitFor(t, 5*time.Second, func() bool { return w.calls.Load() == calls+2 })
			waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusUp })
			time.Sleep(20 * time.Millisecond)
			if n := w.calls.Load(); n != calls+2 {
				t.Errorf("%d probes after three wakes, want 2", n-calls)
			}
			stop()
			if w.watching.Load() != 0 || w.closed.Load() != 1 {
				t.Errorf("after stop: %d watching, closed %d times; want 0, 1", w.watching.Load(), w.closed.Load())
			}
			if diff := cmp.Diff([]Status{StatusUp, StatusDown, StatusUp}, events.statuses()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			wake() // after stop: a no-op
		})
	}
}
