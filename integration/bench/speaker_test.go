package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// BenchmarkSpeakerWithdraw measures what one withdrawal costs the embedded
// GoBGP speaker as the number of announced routes grows (no session: this is
// the speaker's own work, the part that scales with the table). Each
// iteration withdraws one of n announced routes and announces it again;
// withdraw-µs and announce-µs split the time.
//
//	go test -run '^$' -bench SpeakerWithdraw ./integration/bench/
//
// The scale runs of `make bench` showed withdrawals at 100-250 a second
// with 10,000 VIPs (SIGTERM took about a minute): this isolates the cause.
func BenchmarkSpeakerWithdraw(b *testing.B) {
	for _, n := range []int{100, 1000, 10_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			ctx := context.Background()
			g := announcer.NewGoBGP(slog.New(slog.DiscardHandler))
			cfg := &config.Config{BGP: config.BGP{ASN: 65100, RouterID: netip.MustParseAddr("192.0.2.1")}}
			if err := g.Start(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = g.Stop(ctx) })
			rs := make([]routes.Route, n)
			for i := range rs {
				rs[i] = routes.Route{Prefix: scaleVIP(i, true), VIP: fmt.Sprintf("v%05d", i)}
				if err := g.Announce(ctx, rs[i]); err != nil {
					b.Fatal(err)
				}
			}
			var wd, an time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := rs[i%n]
				t0 := time.Now()
				if err := g.Withdraw(ctx, r.Prefix); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := g.Announce(ctx, r); err != nil {
					b.Fatal(err)
				}
				wd += t1.Sub(t0)
				an += time.Since(t1)
			}
			b.ReportMetric(float64(wd.Microseconds())/float64(b.N), "withdraw-µs")
			b.ReportMetric(float64(an.Microseconds())/float64(b.N), "announce-µs")
		})
	}
}
