package health

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// BenchmarkManager10kListen runs 10,000 listen checks at a 1s interval
// through a Manager and reports what they cost: CPU as a percentage of one
// core (user+sys from getrusage over wall time), the probe rate, and the
// machine's load over the same window, since a busy machine makes every
// figure worse: machine-cpu-% (all processes, from /proc/stat; one core is
// 100), others-cpu-% (that minus this process) and load1 (the 1-minute
// load average at the end).
//
// This process holds 100 sockets, which cost nothing while the checks run
// (nothing connects): 50 TCP on 127.0.0.1, 20 TCP on [::1] (IPV6_V6ONLY),
// 10 dual-stack TCP on [::], 20 UDP on 127.0.0.1 (without IPv6, all 80 TCP
// ones on 127.0.0.1). Checks take the sockets in turn, with the address
// (three of four) or the port alone (one of four); every 50th check (2 %)
// is on a port nothing is bound to, so the failure path runs too. A pass
// of a check on a closed port, or a failure of any other, fails the
// benchmark (a timeout does not: see runListenManagerBench).
//
// It runs once, whatever b.N, for ANYCASTD_BENCH_DURATION (default 20s)
// after a warm-up of two intervals:
//
//	ANYCASTD_BENCH_DURATION=60s go test -run '^$' -bench Manager10kListen -benchtime 1x ./health/
func BenchmarkManager10kListen(b *testing.B) {
	const nChecks, closedEvery = 10_000, 50
	duration := listenBenchDuration(b)
	targets := listenBenchSockets(b)
	closed := listenClosedPorts(b, 4)

	checks := make([]config.Check, nChecks)
	for i := range checks {
		var lc config.ListenCheck
		kind := "open"
		if i%closedEvery == closedEvery-1 {
			kind = "closed"
			lc = config.ListenCheck{Addr: netip.MustParseAddr("127.0.0.1"), Port: closed[i%len(closed)], Protocol: "tcp"}
			if i%(2*closedEvery) == closedEvery-1 {
				lc.Addr = netip.Addr{} // port alone: every family, every address
			}
		} else {
			lc = targets[i%len(targets)]
			if i%4 == 3 {
				lc.Addr = netip.Addr{}
			}
		}
		checks[i] = config.Check{
			Name: fmt.Sprintf("c%05d-%s", i, kind), Type: config.CheckListen,
			Interval: time.Second, FastInterval: time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 3,
			Listen: &lc,
		}
	}
	runListenManagerBench(b, checks, duration, nil)
}

// BenchmarkManager10kFloor is BenchmarkManager10kListen's floor: 10,000
// ttl checks at a 1s interval, each reported healthy once (ttl 1h), so
// that a probe costs next to nothing (a clock reading under a lock): what
// the Manager itself costs to run 10,000 probes a second. Its metrics are
// those of BenchmarkManager10kListen; the difference between the two is
// the cost of the listen checks' own work.
func BenchmarkManager10kFloor(b *testing.B) {
	const nChecks = 10_000
	duration := listenBenchDuration(b)
	checks := make([]config.Check, nChecks)
	for i := range checks {
		checks[i] = config.Check{
			Name: fmt.Sprintf("c%05d-open", i), Type: config.CheckTTL,
			Interval: time.Second, FastInterval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 3,
			TTL: &config.TTLCheck{TTL: time.Hour},
		}
	}
	runListenManagerBench(b, checks, duration, func(m *Manager) {
		for _, c := range checks {
			if err := m.Report(c.Name, true, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// runListenManagerBench runs checks in a Manager, calls started (if not nil)
// once they have started, warms up for two seconds, measures for
// duration and reports the metrics of BenchmarkManager10kListen. After
// the warm-up a check whose name ends in "-open" should pass, any other
// fail: a probe that does otherwise fails the benchmark, unless it timed
// out (a busy machine can stall a probe past its timeout: counted in
// timeouts/s).
func runListenManagerBench(b *testing.B, checks []config.Check, duration time.Duration, started func(*Manager)) {
	var probes, failures, timeouts, wrong atomic.Int64
	var firstWrong atomic.Value
	var warm atomic.Bool
	m := NewManager(nil, nil)
	m.OnResult(func(name string, _ config.CheckType, r Result) {
		probes.Add(1)
		if !r.Passed() {
			failures.Add(1)
		}
		switch {
		case !warm.Load():
		case r.Kind == KindTimeout:
			timeouts.Add(1)
		case r.Passed() != strings.HasSuffix(name, "-open"):
			wrong.Add(1)
			firstWrong.CompareAndSwap(nil, fmt.Sprintf("%s: %+v", name, r))
		}
	})
	b.ResetTimer()
	if err := m.Start(context.Background(), checks); err != nil {
		b.Fatal(err)
	}
	if started != nil {
		started(m)
	}
	time.Sleep(2 * time.Second) // warm-up: every check has probed
	warm.Store(true)

	ru0, sys0, wall0 := rusage(b), listenMachineCPU(b), time.Now()
	probes0, failures0, timeouts0 := probes.Load(), failures.Load(), timeouts.Load()
	time.Sleep(duration)
	ru1, sys1, wall1 := rusage(b), listenMachineCPU(b), time.Now()
	probes1, failures1, timeouts1 := probes.Load(), failures.Load(), timeouts.Load()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.Stop()
	b.StopTimer()

	wall := wall1.Sub(wall0)
	cpu := 100 * (ru1 - ru0).Seconds() / wall.Seconds()
	machine := 100 * float64(runtime.NumCPU()) * sys1.busyFraction(sys0)
	b.ReportMetric(cpu, "cpu-%")
	b.ReportMetric(float64(probes1-probes0)/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(failures1-failures0)/wall.Seconds(), "failures/s")
	b.ReportMetric(float64(timeouts1-timeouts0)/wall.Seconds(), "timeouts/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(machine, "machine-cpu-%")
	b.ReportMetric(machine-cpu, "others-cpu-%")
	b.ReportMetric(listenLoadAvg1(b), "load1")
	if n := wrong.Load(); n > 0 {
		b.Errorf("%d probes had the wrong outcome, the first: %v", n, firstWrong.Load())
	}
}

// listenBenchDuration returns ANYCASTD_BENCH_DURATION, by default 20s.
func listenBenchDuration(b *testing.B) time.Duration {
	s := os.Getenv("ANYCASTD_BENCH_DURATION")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.Fatalf("ANYCASTD_BENCH_DURATION: %v", err)
	}
	return d
}

// listenBenchSockets opens the sockets of BenchmarkManager10kListen, closed
// when b ends, and returns a check config for each.
func listenBenchSockets(b *testing.B) []config.ListenCheck {
	v6 := hasIPv6()
	var out []config.ListenCheck
	tcp := func(network, host string, addr netip.Addr) {
		ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		out = append(out, config.ListenCheck{Addr: addr, Port: portOf(b, ln.Addr()), Protocol: "tcp"})
	}
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	for i := range 80 {
		switch {
		case !v6 || i < 50:
			tcp("tcp4", "127.0.0.1", lo4)
		case i < 70:
			tcp("tcp6", "::1", lo6)
		default:
			// A dual-stack socket takes IPv4 too.
			a := lo6
			if i%2 == 0 {
				a = lo4
			}
			tcp("tcp", "", a)
		}
	}
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pc.Close() })
		out = append(out, config.ListenCheck{Addr: lo4, Port: portOf(b, pc.LocalAddr()), Protocol: "udp"})
	}
	return out
}

// listenClosedPorts returns n ports that nothing was bound to a moment ago.
func listenClosedPorts(b *testing.B, n int) []uint16 {
	var ports []uint16
	for range n {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			b.Fatal(err)
		}
		ports = append(ports, portOf(b, ln.Addr()))
		ln.Close()
	}
	return ports
}

// listenCPUTimes are the machine's CPU times from the "cpu" line of
// /proc/stat, in clock ticks.
type listenCPUTimes struct{ busy, total uint64 }

// busyFraction returns the busy share of all CPU time between t0 and t.
func (t listenCPUTimes) busyFraction(t0 listenCPUTimes) float64 {
	if t.total <= t0.total {
		return 0
	}
	return float64(t.busy-t0.busy) / float64(t.total-t0.total)
}

// listenMachineCPU reads the machine's CPU times.
func listenMachineCPU(b *testing.B) listenCPUTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: unexpected first line %q", line)
	}
	var t listenCPUTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		if i >= 8 {
			break // guest times are already in user and nice
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// listenLoadAvg1 returns the 1-minute load average.
func listenLoadAvg1(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data))
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkListenProbe measures one listen probe, called directly (no
// Manager), in CPU time per probe (cpu-µs/probe, user+sys of the whole
// process from getrusage: load from other processes changes it less than
// wall time): a check with the address of a listener on 127.0.0.1
// ("addr"), one with its port alone ("port"), one on a port nothing is
// bound to ("closed", the failure path), and "closed-burst": 64 checks on
// closed ports probed at once, over and over, as when a service with many
// checks dies.
func BenchmarkListenProbe(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	open, closed := portOf(b, ln.Addr()), listenClosedPorts(b, 1)[0]
	lo := netip.MustParseAddr("127.0.0.1")
	for _, bc := range []struct {
		name    string
		c       config.ListenCheck
		wantErr bool
		par     int // goroutines, each with its own checker; 0: one
	}{
		{"addr", config.ListenCheck{Addr: lo, Port: open, Protocol: "tcp"}, false, 0},
		{"port", config.ListenCheck{Port: open, Protocol: "tcp"}, false, 0},
		{"closed", config.ListenCheck{Addr: lo, Port: closed, Protocol: "tcp"}, true, 0},
		{"closed-burst", config.ListenCheck{Addr: lo, Port: closed, Protocol: "tcp"}, true, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			probe := func(l *listenChecker) {
				if err := l.Check(context.Background()); (err != nil) != bc.wantErr {
					b.Errorf("Check = %v", err)
				}
			}
			b.ReportAllocs()
			ru0 := rusage(b)
			if bc.par == 0 {
				l := newListenChecker(bc.c)
				defer l.Close()
				for b.Loop() {
					probe(l)
				}
			} else {
				b.SetParallelism(max(1, bc.par/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					l := newListenChecker(bc.c)
					defer l.Close()
					for pb.Next() {
						probe(l)
					}
				})
			}
			b.ReportMetric(float64((rusage(b)-ru0).Microseconds())/float64(b.N), "cpu-µs/probe")
		})
	}
}
