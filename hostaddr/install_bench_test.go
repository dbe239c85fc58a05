//go:build linux

package hostaddr

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// benchVIPs is how many VIPs BenchmarkInstall adds.
const benchVIPs = 10_000

// BenchmarkInstall adds 10,000 VIPs to lo with each [interface] method, in a
// fresh network namespace each time (journal records included, as in
// anycastd), then removes them with Close. It reports the time per add, the
// time of all adds (s/10k) and of the removal (close-s/10k). The kernel's
// address insert is O(addresses on the link); a local route's is not:
//
//	go test -run '^$' -bench Install ./hostaddr/
//
// The two methods run side by side for each family. Needs root.
func BenchmarkInstall(b *testing.B) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		prefixes := benchPrefixes(fam, benchVIPs)
		for _, method := range []config.InterfaceMethod{config.InterfaceMethodAddress, config.InterfaceMethodLocalRoute} {
			b.Run(fmt.Sprintf("%s/method=%s", fam, method), func(b *testing.B) {
				var adds, closes time.Duration
				for range b.N {
					b.StopTimer()
					n := newTestNS(b)
					cfg := hostConfig("lo", b.TempDir(), prefixes...)
					cfg.Interface.Method = method
					h, err := New(cfg, Options{Namespace: &n.h})
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					for _, p := range prefixes {
						if err := h.Add(p, "bench"); err != nil {
							b.Fatalf("Add(%s): %v", p, err)
						}
					}
					adds += time.Since(start)
					b.StopTimer()
					start = time.Now()
					if err := h.Close(); err != nil {
						b.Fatal(err)
					}
					closes += time.Since(start)
				}
				b.ReportMetric(float64(adds.Nanoseconds())/float64(b.N*len(prefixes)), "ns/add")
				b.ReportMetric(adds.Seconds()/float64(b.N), "s/10k")
				b.ReportMetric(closes.Seconds()/float64(b.N), "close-s/10k")
				b.ReportMetric(0, "ns/op") // one op is 10,000 adds: see s/10k
			})
		}
	}
}

// benchPrefixes returns n VIP host prefixes: 10.x.y.z/32 or
// 2001:db8:ac::x:y/128.
func benchPrefixes(fam string, n int) []netip.Prefix {
	ps := make([]netip.Prefix, 0, n)
	for i := range n {
		if fam == "ipv4" {
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i >> 8), byte(i)}), 32))
			continue
		}
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xac, 14: byte(i >> 8), 15: byte(i)}
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom16(a), 128))
	}
	return ps
}
