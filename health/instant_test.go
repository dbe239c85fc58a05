package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
// until the test ends. Timing left out of a check is defaulted as
// config.Load would (withDefaults).
func startManager(t testing.TB, checks ...config.Check) (*Manager, *timeline) {
	t.Helper()
	tl := newTimeline()
	m := NewManager(nil, tl.publish)
	m.OnResult(tl.observe)
	for i := range checks {
		checks[i] = withDefaults(checks[i])
	}
	if err := m.Start(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m, tl
}

func TestRunnerDefiniteFailureBypassesFall(t *testing.T) {
	for _, err := range []error{Definite(errors.New("gone")), fmt.Errorf("%w: gone", ErrDefinite)} {
		t.Run(err.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events eventLog
				sc := newStepChecker()
				r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 3), sc, nil, events.publish)
				startRunner(t, r)
				feed(t, r, sc, true, true, false)
				feedErr(t, r, sc, err)
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
				if diff := cmp.Diff([]string{"unknown>up", "up>down", "down>up"}, events.transitions()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		})
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

func TestWatcherWakesRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		w := newWakeChecker()
		// An interval of an hour: only wakes make probes (but for the
		// jittered first one, within a second).
		r := NewRunner(testCheck(time.Hour, time.Minute, 1, 3), w, nil, events.publish)
		stop := startRunner(t, r)
		start := time.Now()
		wake := <-w.wakes
		wake()
		synctest.Wait()
		if s := r.Status(); s != StatusUp {
			t.Fatalf("after a wake: %v, want up at once", s)
		}

		w.fail.Store(true)
		wake()
		synctest.Wait()
		if s := r.Status(); s != StatusDown {
			t.Fatalf("after a wake with the service gone: %v, want down at once", s)
		}

		// A wake while a probe is in flight makes another probe follow.
		w.fail.Store(false)
		w.block = make(chan struct{})
		w.blocking.Store(true)
		calls := w.calls.Load()
		wake()
		synctest.Wait()
		if n := w.calls.Load() - calls; n != 1 {
			t.Fatalf("%d probes in flight after a wake, want 1", n)
		}
		wake()
		wake()
		w.blocking.Store(false)
		close(w.block)
		synctest.Wait()
		if n := w.calls.Load() - calls; n != 2 {
			t.Errorf("%d probes after three wakes, one during the first probe, want 2", n)
		}
		if s := r.Status(); s != StatusUp {
			t.Errorf("after the probes: %v, want up", s)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the woken probes took %v, want no time at all", d)
		}

		// The schedule goes on from the last woken probe: the next one is
		// an interval after it.
		calls = w.calls.Load()
		time.Sleep(time.Hour - time.Nanosecond)
		synctest.Wait()
		if n := w.calls.Load() - calls; n != 0 {
			t.Errorf("%d probes within the hour after the last one, want 0", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := w.calls.Load() - calls; n != 1 {
			t.Errorf("%d probes an hour after the last one, want 1", n)
		}

		stop()
		if w.watching.Load() != 0 || w.closed.Load() != 1 {
			t.Errorf("after stop: %d watching, closed %d times; want 0, 1", w.watching.Load(), w.closed.Load())
		}
		if diff := cmp.Diff([]string{"unknown>up", "up>down", "down>up"}, events.transitions()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		wake() // after stop: a no-op
	})
}
