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
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/google/go-cmp/cmp"
)

// probeLog records, for every probe, when it was recorded and whether a
// state change was pending after it.
type probeLog struct {
	mu      sync.Mutex
	times   []time.Time
	pending []bool
}

func (l *probeLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.times)
}

func TestRunnerFastInterval(t *testing.T) {
	const interval, fast = 500 * time.Millisecond, 10 * time.Millisecond
	var failing atomic.Bool
	var probes probeLog
	c := testCheck(interval, 5*time.Millisecond, 3, 3)
	c.FastInterval = fast
	var r *Runner
	r = NewRunner(c, CheckerFunc(func(context.Context) error {
		if failing.Load() {
			return errProbe
		}
		return nil
	}), nil, nil)
	r.OnResult(func(Result) {
		// The probing goroutine, which owns r.pending.
		probes.mu.Lock()
		defer probes.mu.Unlock()
		probes.times = append(probes.times, time.Now())
		probes.pending = append(probes.pending, r.pending)
	})
	stop := startRunner(t, r)

	// Rise from unknown at the fast interval, then one slow period when up.
	waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusUp })
	n := probes.len()
	waitFor(t, 5*time.Second, func() bool { return probes.len() >= n+2 })
	// Fall at the fast interval, then one slow period when down.
	failing.Store(true)
	waitFor(t, 5*time.Second, func() bool { return r.Status() == StatusDown })
	n = probes.len()
	waitFor(t, 5*time.Second, func() bool { return probes.len() >= n+2 })
	stop()

	probes.mu.Lock()
	defer probes.mu.Unlock()
	var fastGaps, slowGaps int
	for i := 1; i < len(probes.times); i++ {
		gap := probes.times[i].Sub(probes.times[i-1])
		if probes.pending[i-1] {
			fastGaps++
			if gap >= interval/2 {
				t.Errorf("probe %d came %v after the previous one although a change was pending", i, gap)
			}
		} else {
			slowGaps++
			if gap < interval/2 {
				t.Errorf("probe %d came %v after the previous one although nothing was pending", i, gap)
			}
		}
	}
	// 2 while rising (3 passes), 2 while falling (3 failures), at least 2 slow.
	if fastGaps < 4 || slowGaps < 2 {
		t.Errorf("%d fast and %d slow gaps, want at least 4 and 2: pending %v", fastGaps, slowGaps, probes.pending)
	}
}

func TestRunnerFastIntervalDefaults(t *testing.T) {
	c := testCheck(time.Second, 0, 0, 0)
	if r := NewRunner(c, nil, nil, nil); r.fast != time.Second || r.timeout != 500*time.Millisecond {
		t.Errorf("fast %v, timeout %v; want 1s, 500ms", r.fast, r.timeout)
	}
	c.FastInterval = 100 * time.Millisecond
	if r := NewRunner(c, nil, nil, nil); r.fast != 100*time.Millisecond || r.timeout != 50*time.Millisecond {
		t.Errorf("fast %v, timeout %v; want 100ms, 50ms", r.fast, r.timeout)
	}
	c.FastInterval = 2 * time.Second
	if r := NewRunner(c, nil, nil, nil); r.fast != time.Second {
		t.Errorf("fast %v above the interval, want it cut to 1s", r.fast)
	}
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
			var results []Result
			var mu sync.Mutex
			r := NewRunner(testCheck(10*time.Millisecond, 5*time.Millisecond, 1, 1), tc.checker, nil, nil)
			r.OnResult(func(res Result) {
				mu.Lock()
				defer mu.Unlock()
				results = append(results, res)
			})
			stop := startRunner(t, r)
			waitFor(t, 5*time.Second, func() bool { return r.probes() >= 1 })
			stop()
			mu.Lock()
			defer mu.Unlock()
			res := results[0]
			if res.Kind != tc.kind || res.Outcome() != tc.kind.String() || res.Err != tc.err || res.Passed() != (tc.kind == KindPass) {
				t.Errorf("result %+v: outcome %q, want %q with %q", res, res.Outcome(), tc.kind, tc.err)
			}
			if h := r.State().History; len(h) != len(results) || h[0] != res {
				t.Errorf("history %+v, observed %+v", h, results)
			}
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
	checks := []config.Check{
		// Guards no VIP: runs all the same.
		{Name: "tcp", Type: config.CheckTCP, Interval: 10 * time.Millisecond, Rise: 1, Fall: 1,
			TCP: &config.TCPCheck{Address: ln.Addr().String()}},
		{Name: "bad", Type: config.CheckTCP, Interval: 10 * time.Millisecond, Rise: 1, Fall: 1,
			TCP: &config.TCPCheck{Address: "no-port"}},
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
	err := m.Start(context.Background(), []config.Check{{Name: "tls", Type: config.CheckTCP,
		Interval: 10 * time.Millisecond, Rise: 1, Fall: 1,
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
