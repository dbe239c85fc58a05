package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/testutil"
)

// stepChecker lets a test decide each probe's outcome: every Check waits for
// one value sent on results (or for ctx).
type stepChecker struct {
	results chan error
	calls   atomic.Int64
}

func newStepChecker() *stepChecker { return &stepChecker{results: make(chan error)} }

func (s *stepChecker) Check(ctx context.Context) error {
	s.calls.Add(1)
	select {
	case err := <-s.results:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startRunner schedules r alone on a scheduler of its own, as a Manager
// does, until stop or the end of the test. stop returns once r has stopped:
// no probe in flight, Watch returned, the checker closed. It works in and
// out of a synctest bubble.
func startRunner(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := newScheduler()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		s.run(ctx)
	}()
	stopped := s.add(ctx, r)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			for _, ch := range []<-chan struct{}{stopped, ran} {
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					t.Fatal("runner did not stop within 5s")
				}
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// testCheck returns a check of the given timing, with fast_interval equal
// to interval.
func testCheck(interval, timeout time.Duration, rise, fall int) config.Check {
	return config.Check{Name: "test", Type: config.CheckTCP, Interval: interval, FastInterval: interval,
		Timeout: timeout, Rise: rise, Fall: fall}
}

var errProbe = errors.New("probe failed")

// feed steps sc through outcomes (true: pass), each as a probe of r, and
// waits for r to have recorded it. It must run in a synctest bubble.
func feed(t *testing.T, r *Runner, sc *stepChecker, outcomes ...bool) {
	t.Helper()
	for _, pass := range outcomes {
		var err error
		if !pass {
			err = errProbe
		}
		feedErr(t, r, sc, err)
	}
}

// feedErr makes err the outcome of r's next probe (through sc) and waits
// for r to have recorded it. It must run in a synctest bubble.
func feedErr(t *testing.T, r *Runner, sc *stepChecker, err error) {
	t.Helper()
	before := r.probes()
	sc.results <- err // time advances to the next probe
	synctest.Wait()
	if r.probes() != before+1 {
		t.Fatalf("%d probes recorded, want %d", r.probes(), before+1)
	}
}

// probes returns how many probes r has recorded (test helper).
func (r *Runner) probes() int {
	st := r.State()
	return int(st.TotalPasses + st.TotalFailures)
}

func TestRunnerOneEventPerTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		sc := newStepChecker()
		// A long timeout so that probes wait for the test.
		r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 3, 3), sc, nil, events.publish)
		startRunner(t, r)

		feed(t, r, sc, true, true)
		if st := r.State(); st.Status != StatusUnknown || st.ConsecutivePasses != 2 {
			t.Fatalf("after 2 passes: %v with %d passes, want unknown with 2", st.Status, st.ConsecutivePasses)
		}
		feed(t, r, sc, true, false, true, false, false)
		if st := r.State(); st.Status != StatusUp || st.ConsecutiveFailures != 2 {
			t.Fatalf("after 2 more failures: %v with %d failures, want up with 2", st.Status, st.ConsecutiveFailures)
		}
		feed(t, r, sc, false, false, false)
		st := r.State()
		if st.Status != StatusDown || st.ConsecutiveFailures != 5 || st.ConsecutivePasses != 0 {
			t.Fatalf("state = %+v", st)
		}
		if diff := cmp.Diff([]string{"unknown>up", "up>down"}, events.transitions()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		ev := events.get()
		if ev[0].Check != "test" || !ev[0].Last.Passed() || ev[1].Last.Err != errProbe.Error() {
			t.Errorf("events = %+v", ev)
		}
		if !st.Since.Equal(ev[1].Last.Time.Add(ev[1].Last.Latency)) {
			t.Errorf("Since = %v, want end of the probe that caused the transition", st.Since)
		}
		if len(st.History) != 10 || st.TotalPasses != 4 || st.TotalFailures != 6 {
			t.Errorf("history has %d results, totals %d passes and %d failures; want 10, 4, 6",
				len(st.History), st.TotalPasses, st.TotalFailures)
		}
	})
}

func TestRunnerRiseFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		sc := newStepChecker()
		r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 3), sc, nil, events.publish)
		startRunner(t, r)

		for _, s := range []struct {
			pass bool
			want Status
		}{
			{false, StatusUnknown},
			{false, StatusUnknown},
			{false, StatusDown}, // fall from unknown
			{true, StatusDown},
			{true, StatusUp},
		} {
			feed(t, r, sc, s.pass)
			if got := r.Status(); got != s.want {
				t.Fatalf("after probe %d: %v, want %v", r.probes(), got, s.want)
			}
		}
		if diff := cmp.Diff([]string{"unknown>down", "down>up"}, events.transitions()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
	})
}

func TestRunnerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		blocking := CheckerFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		r := NewRunner(testCheck(30*time.Millisecond, 20*time.Millisecond, 1, 2), blocking, nil, events.publish)
		startRunner(t, r)

		time.Sleep(time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"unknown>down"}, events.transitions()); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		if last := events.get()[0].Last; last.Err != "timeout after 20ms" || last.Kind != KindTimeout ||
			last.Latency != 20*time.Millisecond {
			t.Errorf("down because of %+v, want a timeout after 20ms", last)
		}
	})
}

// A probe that outlives its period (ignoring its timeout) delays the next
// one to the first period boundary after it ended, and never overlaps it.
func TestRunnerNeverOverlaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inflight atomic.Int64
		var overlapped atomic.Bool
		slow := CheckerFunc(func(ctx context.Context) error {
			if inflight.Add(1) > 1 {
				overlapped.Store(true)
			}
			defer inflight.Add(-1)
			time.Sleep(35 * time.Millisecond) // ignores ctx, outlives the interval
			return nil
		})
		r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), slow, nil, nil)
		stop := startRunner(t, r)
		time.Sleep(time.Second)
		stop()

		if overlapped.Load() {
			t.Fatal("two probes in flight at once")
		}
		st := r.State()
		if len(st.History) != historySize {
			t.Fatalf("%d results in a second, want %d (the history size)", len(st.History), historySize)
		}
		for i, res := range st.History {
			// The checker returned nil, but only after its deadline.
			if res.Err != "timeout after 5ms" || res.Latency != 35*time.Millisecond {
				t.Fatalf("result %+v, want a timeout after 5ms, ending 35ms after it began", res)
			}
			// Periods 10-30ms after its start passed during the probe.
			if gap := res.Time.Sub(st.History[max(i-1, 0)].Time); i > 0 && gap != 40*time.Millisecond {
				t.Errorf("probe %d started %v after the previous one, want 40ms", i, gap)
			}
		}
	})
}

func TestRunnerHistoryCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error {
			calls.Add(1)
			return nil
		}), nil, nil)
		startRunner(t, r)
		// 100 probes: at the jitter (in [0, 10ms)) + 0, 10, …, 990ms.
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()

		st := r.State()
		if len(st.History) != historySize {
			t.Fatalf("history has %d results, want %d", len(st.History), historySize)
		}
		for i := 1; i < len(st.History); i++ {
			if gap := st.History[i].Time.Sub(st.History[i-1].Time); gap != 10*time.Millisecond {
				t.Fatalf("history at %d: %v after the previous result, want 10ms (oldest first)", i, gap)
			}
		}
		if n := calls.Load(); n != 100 || st.ConsecutivePasses != 100 || st.TotalPasses != 100 {
			t.Errorf("%d probes: ConsecutivePasses = %d, TotalPasses = %d; want 100 each",
				n, st.ConsecutivePasses, st.TotalPasses)
		}
	})
}

func TestRunnerPanicIsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), CheckerFunc(func(context.Context) error {
			panic("boom")
		}), nil, events.publish)
		startRunner(t, r)
		time.Sleep(10 * time.Millisecond) // past the jitter: one probe
		synctest.Wait()
		ev := events.get()
		if len(ev) != 1 || ev[0].Status != StatusDown || ev[0].Last.Err != "checker panicked: boom" || ev[0].Last.Kind != KindError {
			t.Fatalf("events = %+v, want one down with a KindError: checker panicked: boom", ev)
		}
	})
}

func TestRunnerKeepsOutput(t *testing.T) {
	r := NewRunner(testCheck(10*time.Millisecond, 2*time.Second, 1, 1),
		newExec(t, "/bin/sh", "-c", "echo ready"), nil, nil)
	stop := startRunner(t, r)
	waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusUp })
	stop()
	if h := r.State().History; h[0].Output != "ready\n" {
		t.Fatalf("output = %q", h[0].Output)
	}
}

func TestRunnerStopsExecInFlight(t *testing.T) {
	var calls atomic.Int64
	ex := newExec(t, "/bin/sh", "-c", "sleep 30")
	r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 1, 1), CheckerFunc(func(ctx context.Context) error {
		calls.Add(1)
		return ex.Check(ctx)
	}), nil, nil)
	stop := startRunner(t, r)
	waitFor(t, 5*time.Second, func() bool { return calls.Load() == 1 })
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stopping took %v", d)
	}
	if h := r.State().History; len(h) != 0 {
		t.Fatalf("probe cut short by shutdown was recorded: %+v", h)
	}
}

func TestRunnerLogging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testutil.SyncBuffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		sc := newStepChecker()
		r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 1), sc, logger, nil)
		startRunner(t, r)

		feed(t, r, sc, false, true, true, true)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		want := []string{
			`level=INFO msg="health check changed state" check=test from=unknown to=down err="probe failed"`,
			// Risen: the failure before it is not logged as if it were the
			// reason.
			`level=INFO msg="health check changed state" check=test from=down to=up`,
		}
		if len(lines) != len(want) {
			t.Fatalf("log:\n%s", buf.String())
		}
		for i, l := range lines {
			if _, rest, _ := strings.Cut(l, " "); rest != want[i] {
				t.Errorf("log line %d = %q, want %q", i, rest, want[i])
			}
		}
	})
}

// config.Load defaults and validates timing; a check that bypassed it is a
// bug, reported at once rather than as a division by zero in the scheduler.
func TestNewRunnerWithoutTiming(t *testing.T) {
	full := testCheck(time.Second, 500*time.Millisecond, 3, 3)
	for name, unset := range map[string]func(*config.Check){
		"interval":      func(c *config.Check) { c.Interval = 0 },
		"fast_interval": func(c *config.Check) { c.FastInterval = 0 },
		"timeout":       func(c *config.Check) { c.Timeout = 0 },
		"rise":          func(c *config.Check) { c.Rise = 0 },
		"fall":          func(c *config.Check) { c.Fall = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := full
			unset(&c)
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, `health: check "test" has no valid timing`) {
					t.Errorf("panic %q, want one naming the check", msg)
				}
			}()
			NewRunner(c, nil, nil, nil)
		})
	}
	if r := NewRunner(withDefaults(config.Check{Name: "test"}), nil, nil, nil); r.Status() != StatusUnknown {
		t.Errorf("new runner %v, want unknown", r.Status())
	}
}
