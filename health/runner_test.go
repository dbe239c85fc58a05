package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
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

// startRunner runs r until the test ends.
func startRunner(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func testCheck(interval, timeout time.Duration, rise, fall int) config.Check {
	return config.Check{Name: "test", Type: config.CheckTCP, Interval: interval, Timeout: timeout, Rise: rise, Fall: fall}
}

var errProbe = errors.New("probe failed")

// feed steps sc through outcomes (true: pass), waiting for each to be
// recorded by r.
func feed(t *testing.T, r *Runner, sc *stepChecker, outcomes ...bool) {
	t.Helper()
	for _, pass := range outcomes {
		before := r.probes()
		var err error
		if !pass {
			err = errProbe
		}
		select {
		case sc.results <- err:
		case <-time.After(5 * time.Second):
			t.Fatal("runner did not probe")
		}
		waitFor(t, 5*time.Second, func() bool { return r.probes() > before })
	}
}

// probes returns how many probes r has recorded (test helper).
func (r *Runner) probes() int {
	st := r.State()
	return int(st.TotalPasses + st.TotalFailures)
}

func TestRunnerOneEventPerTransition(t *testing.T) {
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
	waitFor(t, 5*time.Second, func() bool { return len(events.get()) >= 2 })
	if diff := cmp.Diff([]Status{StatusUp, StatusDown}, events.statuses()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	ev := events.get()
	if ev[0].Check != "test" || !ev[0].Last.Passed() || ev[1].Last.Err != errProbe.Error() {
		t.Errorf("events = %+v", ev)
	}
	if !st.Since.Equal(ev[1].Last.Time.Add(ev[1].Last.Latency)) {
		t.Errorf("Since = %v, want end of the probe that caused the transition", st.Since)
	}
	if len(st.History) != 10 {
		t.Errorf("history has %d results, want 10", len(st.History))
	}
}

func TestRunnerRiseFall(t *testing.T) {
	var events eventLog
	sc := newStepChecker()
	r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 3), sc, nil, events.publish)
	startRunner(t, r)

	feed(t, r, sc, false, false)
	if s := r.Status(); s != StatusUnknown {
		t.Fatalf("after 2 failures: %v, want unknown", s)
	}
	feed(t, r, sc, false) // fall from unknown
	if s := r.Status(); s != StatusDown {
		t.Fatalf("after 3 failures: %v, want down", s)
	}
	feed(t, r, sc, true)
	if s := r.Status(); s != StatusDown {
		t.Fatalf("after 1 pass: %v, want down", s)
	}
	feed(t, r, sc, true)
	if s := r.Status(); s != StatusUp {
		t.Fatalf("after 2 passes: %v, want up", s)
	}
	// publish runs just after the state is updated.
	waitFor(t, 5*time.Second, func() bool { return len(events.get()) >= 2 })
	if diff := cmp.Diff([]Status{StatusDown, StatusUp}, events.statuses()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestRunnerTimeout(t *testing.T) {
	var events eventLog
	blocking := CheckerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	r := NewRunner(testCheck(30*time.Millisecond, 20*time.Millisecond, 1, 2), blocking, nil, events.publish)
	startRunner(t, r)

	waitFor(t, 5*time.Second, func() bool { return len(events.get()) == 1 })
	ev := events.get()[0]
	if ev.Status != StatusDown || ev.Last.Err != "timeout after 20ms" {
		t.Fatalf("event = %+v, want down with timeout after 20ms", ev)
	}
	if ev.Last.Latency < 20*time.Millisecond {
		t.Errorf("latency %v below the timeout", ev.Last.Latency)
	}
}

func TestRunnerNeverOverlaps(t *testing.T) {
	var inflight, maxInflight, calls atomic.Int64
	slow := CheckerFunc(func(ctx context.Context) error {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		calls.Add(1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(35 * time.Millisecond) // ignores ctx, outlives the interval
		return nil
	})
	r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), slow, nil, nil)
	stop := startRunner(t, r)

	waitFor(t, 5*time.Second, func() bool { return calls.Load() >= 5 })
	stop()
	if m := maxInflight.Load(); m != 1 {
		t.Fatalf("%d probes in flight at once, want 1", m)
	}
	st := r.State()
	for _, res := range st.History {
		// The checker returned nil, but only after its deadline.
		if res.Err != "timeout after 5ms" {
			t.Fatalf("result %+v, want timeout after 5ms", res)
		}
	}
	for i := 1; i < len(st.History); i++ {
		prev := st.History[i-1]
		if st.History[i].Time.Before(prev.Time.Add(prev.Latency)) {
			t.Fatalf("probe %d started before probe %d ended", i, i-1)
		}
	}
}

func TestRunnerHistoryCapped(t *testing.T) {
	var calls atomic.Int64
	r := NewRunner(testCheck(5*time.Millisecond, time.Second, 1, 1), CheckerFunc(func(context.Context) error {
		calls.Add(1)
		return nil
	}), nil, nil)
	stop := startRunner(t, r)
	waitFor(t, 5*time.Second, func() bool { return calls.Load() >= 2*historySize+3 })
	stop()

	st := r.State()
	if len(st.History) != historySize {
		t.Fatalf("history has %d results, want %d", len(st.History), historySize)
	}
	for i := 1; i < len(st.History); i++ {
		if !st.History[i].Time.After(st.History[i-1].Time) {
			t.Fatalf("history not oldest first at %d", i)
		}
	}
	// The probe in flight at stop is not recorded.
	if st.ConsecutivePasses != int(st.TotalPasses) || st.ConsecutivePasses < 2*historySize+2 {
		t.Errorf("ConsecutivePasses = %d, TotalPasses = %d, calls = %d",
			st.ConsecutivePasses, st.TotalPasses, calls.Load())
	}
}

func TestRunnerPanicIsFailure(t *testing.T) {
	var events eventLog
	r := NewRunner(testCheck(10*time.Millisecond, time.Second, 1, 1), CheckerFunc(func(context.Context) error {
		panic("boom")
	}), nil, events.publish)
	startRunner(t, r)
	waitFor(t, 5*time.Second, func() bool { return len(events.get()) == 1 })
	if ev := events.get()[0]; ev.Status != StatusDown || ev.Last.Err != "checker panicked: boom" {
		t.Fatalf("event = %+v", ev)
	}
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
		t.Fatalf("Run took %v to return", d)
	}
	if h := r.State().History; len(h) != 0 {
		t.Fatalf("probe cut short by shutdown was recorded: %+v", h)
	}
}

func TestRunnerLogging(t *testing.T) {
	var buf testutil.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sc := newStepChecker()
	r := NewRunner(testCheck(10*time.Millisecond, time.Minute, 2, 1), sc, logger, nil)
	startRunner(t, r)

	feed(t, r, sc, false, true, true, true)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=INFO msg="health check changed state" check=test from=unknown to=down err="probe failed"`,
		`level=INFO msg="health check changed state" check=test from=down to=up err="probe failed"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s", buf.String())
	}
	for i, l := range lines {
		if _, rest, _ := strings.Cut(l, " "); rest != want[i] {
			t.Errorf("log line %d = %q, want %q", i, rest, want[i])
		}
	}
}
