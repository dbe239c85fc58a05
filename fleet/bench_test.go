package fleet

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/anycastd/anycastd/routes"
)

// BenchmarkDecision measures a floor decision (lock, read, write, unlock)
// against an embedded etcd, with another site announcing the VIP.
func BenchmarkDecision(b *testing.B) {
	s := startEtcd(b)
	other := startNode(b, s.fleetCfg("ams2", "edge1"))
	other.g.Report(vip, routes.StateUp, time.Now(), "")

	cfg := s.fleetCfg("ams1", "edge1")
	st, err := NewEtcdStore(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	verdicts := make(chan Verdict, 1)
	g := New(cfg, st, Options{OnVerdict: func(v Verdict) { verdicts <- v }, OnDrainSlot: func(DrainSlotEvent) {}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(b, 10*time.Second, "the other site seen", func() bool { n, _ := g.View().Sites(vip); return n == 1 })

	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		seq := g.Engage(vip, 1)
		for v := range verdicts {
			if v.Seq == seq {
				if v.Guarded {
					b.Fatalf("guarded: %+v", v)
				}
				took = append(took, v.Took)
				break
			}
		}
		g.Disengage(vip)
	}
	b.StopTimer()
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*99/100]), "p99-ms")
}
