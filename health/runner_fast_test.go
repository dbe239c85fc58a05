package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/google/go-cmp/cmp"
)

// The period is fast_interval while a state change is in doubt and
// interval otherwise, counted from when the previous probe was due.
func TestRunnerFastInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slow, fast = 500 * time.Millisecond, 10 * time.Millisecond
		var failing atomic.Bool
		c := testCheck(slow, 5*time.Millisecond, 3, 3)
		c.FastInterval = fast
		r := NewRunner(c, CheckerFunc(func(context.Context) error {
			if failing.Load() {
				return errProbe
			}
			return nil
		}), nil, nil)
		var mu sync.Mutex
		var times []time.Time // of the probes, in order
		var statuses []Status // after each probe
		r.OnResult(func(res Result) {
			mu.Lock()
			defer mu.Unlock()
			times = append(times, res.Time)
			statuses = append(statuses, r.Status())
		})
		start := time.Now()
		startRunner(t, r)
		time.Sleep(slow) // past the jitter
		synctest.Wait()
		mu.Lock()
		first := times[0]
		mu.Unlock()
		if j := first.Sub(start); j < 0 || j >= slow {
			t.Errorf("first probe %v after the start, want a jitter in [0, %v)", j, slow)
		}
		// Passing for 1.7s after the first probe, then failing for 2s.
		time.Sleep(time.Until(first.Add(1700 * time.Millisecond)))
		synctest.Wait()
		failing.Store(true)
		time.Sleep(2 * time.Second)
		synctest.Wait()

		mu.Lock()
		defer mu.Unlock()
		var gaps []time.Duration
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, times[i].Sub(times[i-1]))
		}
		up, down, unknown := StatusUp, StatusDown, StatusUnknown
		wantStatuses := []Status{
			unknown, unknown, up, up, up, up, // passing: at 0, 10, 20, 520, 1020, 1520ms
			up, up, down, down, down, down, // failing: at 2020, 2030, 2040, 2540, 3040, 3540ms
		}
		wantGaps := []time.Duration{
			fast, fast, // rising from unknown
			slow, slow, slow, slow, // up: the first failure comes at a slow probe
			fast, fast, // falling from up
			slow, slow, slow, // down
		}
		if diff := cmp.Diff(wantStatuses, statuses); diff != "" {
			t.Errorf("statuses after each probe (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantGaps, gaps); diff != "" {
			t.Errorf("time between probes (-want +got):\n%s", diff)
		}
	})
}

func TestRunnerOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		checker CheckerFunc
		kind    Kind
		err     string
	}{
		{"pass", func(context.Context) error { return nil }, KindPass, ""},
		{"fail", func(context.Context) error { return errProbe }, KindFail, "probe failed"},
		{"timeout", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, KindTimeout, "timeout after 5ms"},
		{"cannot run", func(context.Context) error { return fmt.Errorf("%w: no such thing", ErrCannotRun) },
			KindError, "cannot run: no such thing"},
		{"panic", func(context.Context) error { panic("boom") }, KindError, "checker panicked: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				results := make(chan Result, 1000)
				r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), tc.checker, nil, nil)
				r.OnResult(func(res Result) { results <- res })
				stop := startRunner(t, r)
				res := <-results
				stop()
				if res.Kind != tc.kind || res.Outcome() != tc.kind.String() || res.Err != tc.err || res.Passed() != (tc.kind == KindPass) {
					t.Errorf("result %+v: outcome %q, want %q with %q", res, res.Outcome(), tc.kind, tc.err)
				}
				if h := r.State().History; len(h) != 1+len(results) || h[0] != res {
					t.Errorf("history %+v, first observed %+v", h, res)
				}
			})
		})
	}
	// Results made elsewhere (no Kind) still have an outcome.
	if o := (Result{Err: "x"}).Outcome(); o != "fail" {
		t.Errorf("Outcome of a bare failure = %q", o)
	}
	if o := (Result{}).Outcome(); o != "pass" {
		t.Errorf("Outcome of a bare pass = %q", o)
	}
}

func TestManagerOnResult(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	type key struct {
		check string
		typ   config.CheckType
		kind  Kind
	}
	var mu sync.Mutex
	seen := map[key]uint64{}
	m := NewManager(nil, nil)
	m.OnResult(func(check string, typ config.CheckType, r Result) {
		mu.Lock()
		defer mu.Unlock()
		seen[key{check, typ, r.Kind}]++
	})
	// A timeout far above the interval (config.Load would refuse it) so
	// that no probe of "tcp" times out on a slow machine.
	const every, timeout = 10 * time.Millisecond, 5 * time.Second
	checks := []config.Check{
		// Guards no VIP: runs all the same.
		{Name: "tcp", Type: config.CheckTCP, Interval: every, FastInterval: every, Timeout: timeout, Rise: 1, Fall: 1,
			TCP: &config.TCPCheck{Address: ln.Addr().String()}},
		// Its checker cannot be built: the ca_file is missing.
		{Name: "bad", Type: config.CheckTCP, Interval: every, FastInterval: every, Timeout: timeout, Rise: 1, Fall: 1,
			TCP: &config.TCPCheck{Address: ln.Addr().String(),
				TLS: &config.TLSClient{CAFile: filepath.Join(t.TempDir(), "ca.pem")}}},
	}
	if err := m.Start(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitFor(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[key{"tcp", config.CheckTCP, KindPass}] >= 3 && seen[key{"bad", config.CheckTCP, KindError}] >= 3
	})
	m.Stop()

	want := map[key]uint64{}
	for _, st := range m.States() {
		kind := KindPass
		if st.Name == "bad" {
			kind = KindError
		}
		want[key{st.Name, st.Type, kind}] = st.TotalPasses + st.TotalFailures
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("observed results per check (-probes +observed):\n%s", diff)
	}
}

// A check whose checker cannot be built fails with KindError, and passes
// once the missing file is there.
func TestManagerRetriesChecker(t *testing.T) {
	pki := newTestPKI(t)
	addr := bannerServer(t, tls.NewListener(listen(t), pki.serverConfig(false)), smtpish)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	m := NewManager(nil, nil)
	// A timeout far above the interval: no timeout on a slow machine.
	err := m.Start(context.Background(), []config.Check{{Name: "tls", Type: config.CheckTCP,
		Interval: 10 * time.Millisecond, FastInterval: 10 * time.Millisecond, Timeout: 5 * time.Second, Rise: 1, Fall: 1,
		TCP: &config.TCPCheck{Address: addr, TLS: &config.TLSClient{CAFile: caFile}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitFor(t, 5*time.Second, func() bool { s, _ := m.Status("tls"); return s == StatusDown })
	last := m.States()[0].History[0]
	if last.Kind != KindError || !strings.HasPrefix(last.Err, "cannot run: ca_file: open "+caFile) {
		t.Errorf("result %+v, want KindError", last)
	}
	ca, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { s, _ := m.Status("tls"); return s == StatusUp })
}
