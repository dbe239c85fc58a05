package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// BenchmarkLoop10k is the loop's cost of one event at 10,000 VIPs (each with
// its own check, over the recording fake speaker), side by side: a check
// transition, which recomputes the one VIP it guards, and a drain and
// undrain of one VIP, which recompute all 10,000 (as every event did
// before the incremental reconcile). One op is the event and its reverse,
// each waited for.
//
//	go test -run '^$' -bench Loop10k -benchmem ./announcer/
func BenchmarkLoop10k(b *testing.B) {
	const n = 10_000
	cfg := &config.Config{BGP: config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("198.18.1.2")}}
	for i := range n {
		name := fmt.Sprintf("v%05d", i)
		cfg.Checks = append(cfg.Checks, config.Check{Name: name, Type: config.CheckTCP})
		cfg.VIPs = append(cfg.VIPs, config.VIP{
			Name:     name,
			Prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32)},
			Checks:   []string{name}, Require: 1,
		})
	}
	log := newCallLog()
	a := New(cfg, newFakeSpeaker(log), bgptest.DiscardLogger, Options{RetryInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, c := range cfg.Checks {
		a.CheckChanged(checkEvent(c.Name, health.StatusUp))
	}
	barrier := func() {
		if err := a.Undrain(ctx, ""); err != nil { // answered after the reconcile
			b.Fatal(err)
		}
	}
	barrier()
	if got := len(a.Snapshot().Announced); got != n {
		b.Fatalf("%d announced, want %d", got, n)
	}
	b.Run("check-transition", func(b *testing.B) {
		for b.Loop() {
			log.take()
			a.CheckChanged(checkEvent("v00042", health.StatusDown))
			barrier()
			a.CheckChanged(checkEvent("v00042", health.StatusUp))
			barrier()
		}
	})
	b.Run("drain-all-recomputed", func(b *testing.B) {
		for b.Loop() {
			log.take()
			if err := a.Drain(ctx, "v00042", "bench", 0); err != nil {
				b.Fatal(err)
			}
			if err := a.Undrain(ctx, "v00042"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
