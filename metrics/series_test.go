package metrics

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// gatherText returns the text exposition of the named families of reg.
func gatherText(t testing.TB, reg prometheus.Gatherer, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() == n {
				if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return buf.String()
}

// scenario records probes and transitions whose exposition the golden
// texts below hold (captured from the client_golang vectors that the
// compact series replaced).
func scenario(m *Metrics) {
	for _, ev := range []announcer.VIPEvent{
		{VIP: "web", From: "none", To: routes.StateDown},
		{VIP: "web", From: routes.StateDown, To: routes.StateUp},
		{VIP: "web", From: routes.StateUp, To: routes.StateDown},
		{VIP: "web", From: routes.StateDown, To: routes.StateHeld},
		{VIP: "web", From: routes.StateHeld, To: routes.StateRemoved},
	} {
		m.VIPChanged(ev)
	}
	for _, r := range []health.Result{
		{Latency: 300 * time.Microsecond, Kind: health.KindPass},
		{Latency: 3 * time.Millisecond},
		{Latency: 7 * time.Millisecond, Err: "status 503, want 200-299"},
		{Latency: 250 * time.Millisecond, Err: "refused", Kind: health.KindFail},
		{Latency: time.Second, Err: "timeout after 1s", Kind: health.KindTimeout},
		{Latency: 6 * time.Second, Err: "timeout after 6s", Kind: health.KindTimeout},
		{Latency: 0, Err: "cannot run", Kind: health.KindError},
		{Latency: 5 * time.Millisecond, Kind: health.KindPass},
	} {
		m.ProbeResult("web", config.CheckHTTP, r)
	}
}

const goldenSummary = `# HELP anycastd_check_duration_seconds How long health probes took (sum and count; [metrics] check_duration_histogram = true for buckets).
# TYPE anycastd_check_duration_seconds summary
anycastd_check_duration_seconds_sum{check="web",type="http"} 7.2653
anycastd_check_duration_seconds_count{check="web",type="http"} 8
`

const goldenHistogram = `# HELP anycastd_check_duration_seconds How long health probes took.
# TYPE anycastd_check_duration_seconds histogram
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.0005"} 2
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.001"} 2
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.0025"} 2
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.005"} 4
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.01"} 5
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.025"} 5
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.05"} 5
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.1"} 5
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.25"} 6
anycastd_check_duration_seconds_bucket{check="web",type="http",le="0.5"} 6
anycastd_check_duration_seconds_bucket{check="web",type="http",le="1"} 7
anycastd_check_duration_seconds_bucket{check="web",type="http",le="2.5"} 7
anycastd_check_duration_seconds_bucket{check="web",type="http",le="5"} 7
anycastd_check_duration_seconds_bucket{check="web",type="http",le="+Inf"} 8
anycastd_check_duration_seconds_sum{check="web",type="http"} 7.2653
anycastd_check_duration_seconds_count{check="web",type="http"} 8
`

const goldenCommon = `# HELP anycastd_check_results_total Health probe results, by outcome: pass, fail, timeout, error (could not run).
# TYPE anycastd_check_results_total counter
anycastd_check_results_total{check="web",outcome="error",type="http"} 1
anycastd_check_results_total{check="web",outcome="fail",type="http"} 2
anycastd_check_results_total{check="web",outcome="pass",type="http"} 3
anycastd_check_results_total{check="web",outcome="timeout",type="http"} 2
# HELP anycastd_vip_transitions_total VIP state transitions, by the state entered.
# TYPE anycastd_vip_transitions_total counter
anycastd_vip_transitions_total{to="down",vip="web"} 2
anycastd_vip_transitions_total{to="held",vip="web"} 1
anycastd_vip_transitions_total{to="removed",vip="web"} 1
anycastd_vip_transitions_total{to="up",vip="web"} 1
`

// The text exposition is the one of the client_golang vectors, byte for
// byte, in both modes.
func TestSeriesExposition(t *testing.T) {
	for _, hist := range []bool{false, true} {
		reg, m, _ := fixture(t, Options{CheckDurationHistogram: hist})
		scenario(m)
		got := gatherText(t, reg, "anycastd_check_duration_seconds", "anycastd_check_results_total", "anycastd_vip_transitions_total")
		want := goldenSummary + goldenCommon
		if hist {
			want = goldenHistogram + goldenCommon
		}
		if got != want {
			t.Errorf("histogram=%v: exposition\n%s\nwant\n%s", hist, got, want)
		}
	}
}

// Concurrent probes of the same and of different checks are all counted.
func TestProbeResultConcurrent(t *testing.T) {
	const goroutines, probes = 8, 2000
	for _, hist := range []bool{false, true} {
		reg, m, _ := fixture(t, Options{CheckDurationHistogram: hist})
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range probes {
					r := health.Result{Latency: time.Millisecond, Kind: health.KindPass}
					if i%4 == 0 {
						r.Kind = health.KindTimeout
					}
					m.ProbeResult("web", config.CheckHTTP, r)
					m.ProbeResult("db-"+strconv.Itoa(g%2), config.CheckTCP, r)
					if i%100 == 0 {
						m.VIPChanged(announcer.VIPEvent{VIP: "web", To: routes.StateUp})
						if _, err := reg.Gather(); err != nil { // scrapes race with probes
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		const each = goroutines * probes
		if got := m.series.resultCount("web", config.CheckHTTP, "pass"); got != each*3/4 {
			t.Errorf("histogram=%v: pass = %v, want %v", hist, got, each*3/4)
		}
		if got := m.series.resultCount("web", config.CheckHTTP, "timeout"); got != each/4 {
			t.Errorf("histogram=%v: timeout = %v, want %v", hist, got, each/4)
		}
		if got := m.series.vipCount("web", routes.StateUp); got != goroutines*probes/100 {
			t.Errorf("histogram=%v: transitions = %v, want %v", hist, got, goroutines*probes/100)
		}
		want := "anycastd_check_duration_seconds_count{check=\"web\",type=\"http\"} " + strconv.Itoa(each) + "\n"
		if got := gatherText(t, reg, "anycastd_check_duration_seconds"); !strings.Contains(got, want) {
			t.Errorf("histogram=%v: exposition\n%s\nwant a line\n%s", hist, got, want)
		}
		if hist {
			want := "anycastd_check_duration_seconds_bucket{check=\"web\",type=\"http\",le=\"0.001\"} " + strconv.Itoa(each) + "\n"
			if got := gatherText(t, reg, "anycastd_check_duration_seconds"); !strings.Contains(got, want) {
				t.Errorf("histogram=%v: exposition\n%s\nwant a line\n%s", hist, got, want)
			}
		}
	}
}

// The series of a check the health manager no longer runs, or of a VIP no
// longer configured, go at the next scrape; those of a check or VIP added
// during a scrape stay.
func TestSeriesSwept(t *testing.T) {
	reg, m, _ := fixture(t)
	scenario(m)
	m.ProbeResult("gone", config.CheckTCP, health.Result{Kind: health.KindPass})
	m.ProbeResult("web", config.CheckTCP, health.Result{Kind: health.KindPass}) // type changed by a reload
	m.VIPChanged(announcer.VIPEvent{VIP: "gone", To: routes.StateUp})
	m.VIPChanged(announcer.VIPEvent{VIP: "gone", To: "other"})
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	got := gatherText(t, reg, "anycastd_check_duration_seconds", "anycastd_check_results_total", "anycastd_vip_transitions_total")
	if want := goldenSummary + goldenCommon; got != want {
		t.Errorf("exposition\n%s\nwant\n%s", got, want)
	}
	if len(m.series.vipOther) != 0 {
		t.Errorf("vipOther %v, want none", m.series.vipOther)
	}

	// Born during the sweep (after the states were read): kept.
	m.series.sweep(&config.Config{}, func() []health.CheckState {
		m.ProbeResult("new", config.CheckTCP, health.Result{Kind: health.KindPass})
		m.VIPChanged(announcer.VIPEvent{VIP: "new", To: routes.StateUp})
		return nil
	})
	if m.series.resultCount("new", config.CheckTCP, "pass") != 1 || m.series.vipCount("new", routes.StateUp) != 1 {
		t.Error("series born during a sweep were dropped")
	}
	if m.series.resultCount("web", config.CheckHTTP, "pass") != 0 || m.series.vipCount("web", routes.StateUp) != 0 {
		t.Error("series not listed were kept")
	}
}

// BenchmarkLiveHeap reports the live heap (HeapAlloc after a GC) that
// 10,000 checks and 10,000 VIPs cost once each has recorded one probe and
// one transition, in both duration modes: live-B in all, B/check+vip per
// pair.
func BenchmarkLiveHeap(b *testing.B) {
	const n = 10_000
	checks := make([]string, n)
	vips := make([]string, n)
	states := make([]health.CheckState, n)
	for i := range n {
		checks[i] = "check-" + strconv.Itoa(i)
		vips[i] = "vip-" + strconv.Itoa(i)
		states[i] = health.CheckState{Name: checks[i], Type: config.CheckTCP}
	}
	for _, hist := range []bool{false, true} {
		b.Run(fmt.Sprintf("histogram=%v", hist), func(b *testing.B) {
			var live uint64
			for range b.N {
				reg := prometheus.NewRegistry()
				m := New(reg, "test", Sources{
					Config:   func() *config.Config { return &config.Config{} },
					Snapshot: func() announcer.Snapshot { return announcer.Snapshot{} },
					Checks:   func() []health.CheckState { return states },
				}, Options{CheckDurationHistogram: hist})
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				for i := range n {
					m.ProbeResult(checks[i], config.CheckTCP, health.Result{Latency: time.Duration(i) * time.Microsecond, Kind: health.KindPass})
					m.VIPChanged(announcer.VIPEvent{VIP: vips[i], From: routes.StateDown, To: routes.StateUp})
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live = ms.HeapAlloc - before
				runtime.KeepAlive(m)
				runtime.KeepAlive(reg)
			}
			b.ReportMetric(float64(live), "live-B")
			b.ReportMetric(float64(live)/n, "B/check+vip")
		})
	}
}

// BenchmarkProbeResult records probes of 1,000 checks from parallel
// goroutines, once each check's series exist.
func BenchmarkProbeResult(b *testing.B) {
	const n = 1000
	checks := make([]string, n)
	for i := range checks {
		checks[i] = "check-" + strconv.Itoa(i)
	}
	for _, hist := range []bool{false, true} {
		b.Run(fmt.Sprintf("histogram=%v", hist), func(b *testing.B) {
			states := make([]health.CheckState, n)
			for i, c := range checks {
				states[i] = health.CheckState{Name: c, Type: config.CheckTCP}
			}
			m := New(prometheus.NewRegistry(), "test", Sources{
				Config:   func() *config.Config { return &config.Config{} },
				Snapshot: func() announcer.Snapshot { return announcer.Snapshot{} },
				Checks:   func() []health.CheckState { return states },
			}, Options{CheckDurationHistogram: hist})
			for _, c := range checks {
				m.ProbeResult(c, config.CheckTCP, health.Result{Kind: health.KindPass})
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					m.ProbeResult(checks[i%n], config.CheckTCP, health.Result{Latency: time.Duration(i) * time.Microsecond, Kind: health.KindPass})
					i++
				}
			})
		})
	}
}

// BenchmarkGather scrapes 10,000 checks and VIPs that each recorded one
// probe and one transition (the per-check and per-VIP series are built at
// scrape time).
func BenchmarkGather(b *testing.B) {
	const n = 10_000
	states := make([]health.CheckState, n)
	cfg := &config.Config{VIPs: make([]config.VIP, n)}
	for i := range n {
		states[i] = health.CheckState{Name: "check-" + strconv.Itoa(i), Type: config.CheckTCP}
		cfg.VIPs[i].Name = "vip-" + strconv.Itoa(i)
	}
	for _, hist := range []bool{false, true} {
		b.Run(fmt.Sprintf("histogram=%v", hist), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			m := New(reg, "test", Sources{
				Config:   func() *config.Config { return cfg },
				Snapshot: func() announcer.Snapshot { return announcer.Snapshot{} },
				Checks:   func() []health.CheckState { return states },
			}, Options{CheckDurationHistogram: hist})
			for i := range n {
				m.ProbeResult(states[i].Name, config.CheckTCP, health.Result{Latency: time.Duration(i) * time.Microsecond, Kind: health.KindPass})
				m.VIPChanged(announcer.VIPEvent{VIP: cfg.VIPs[i].Name, From: routes.StateDown, To: routes.StateUp})
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
