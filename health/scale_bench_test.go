package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// BenchmarkManager10kTCP runs 10,000 tcp checks at a 1s interval against a
// few local listeners and reports what the health manager costs: CPU as a
// percentage of one core (user+sys from getrusage over wall time), resident
// memory (VmRSS at the end, VmHWM the peak) and the probe rate.
//
// The listeners (accept and close) run in a child process, as the checked
// services would, so that their cost is not counted; it is reported apart
// (listener-cpu-%). The kernel's work for the loopback handshakes is still
// partly charged to whichever side runs it.
//
// It runs once, whatever b.N, for ANYCASTD_BENCH_DURATION (default 20s)
// after a warm-up of two intervals:
//
//	ANYCASTD_BENCH_DURATION=60s go test -run '^$' -bench Manager10kTCP -benchtime 1x ./health/
func BenchmarkManager10kTCP(b *testing.B) {
	const nChecks, nListeners = 10_000, 10
	duration := 20 * time.Second
	if s := os.Getenv("ANYCASTD_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("ANYCASTD_BENCH_DURATION: %v", err)
		}
		duration = d
	}
	if err := raiseNoFile(nChecks + 1000); err != nil {
		b.Fatal(err)
	}
	addrs, stopListeners := startListenerProcess(b, nListeners)

	checks := make([]config.Check, nChecks)
	for i := range checks {
		checks[i] = config.Check{
			Name: fmt.Sprintf("c%05d", i), Type: config.CheckTCP,
			Interval: time.Second, FastInterval: time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 3,
			TCP: &config.TCPCheck{Address: addrs[i%len(addrs)]},
		}
	}
	var probes, failures atomic.Int64
	var firstErr atomic.Value
	m := NewManager(nil, nil)
	m.OnResult(func(_ string, _ config.CheckType, r Result) {
		probes.Add(1)
		if !r.Passed() {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, r.Err)
		}
	})
	b.ResetTimer()
	if err := m.Start(context.Background(), checks); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // warm-up: every check has probed, stacks have grown

	ru0, wall0, probes0 := rusage(b), time.Now(), probes.Load()
	time.Sleep(duration)
	ru1, wall1, probes1 := rusage(b), time.Now(), probes.Load()
	rss, hwm := procStatusKB(b, "VmRSS"), procStatusKB(b, "VmHWM")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if f := os.Getenv("ANYCASTD_BENCH_HEAPPROFILE"); f != "" {
		writeHeapProfile(b, f)
	}
	m.Stop()
	b.StopTimer()
	listenerCPU, listenerWall := stopListeners()

	wall := wall1.Sub(wall0)
	cpu := ru1 - ru0
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(float64(hwm)/1024, "peak-rss-MB")
	b.ReportMetric(float64(ms.StackInuse)/(1<<20), "stack-MB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(probes1-probes0)/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(failures.Load()), "failures")
	b.ReportMetric(100*listenerCPU.Seconds()/listenerWall.Seconds(), "listener-cpu-%")
	if n := failures.Load(); n > 0 {
		b.Logf("%d probes failed, the first with: %v", n, firstErr.Load())
	}
}

// writeHeapProfile writes a heap profile of the running checks to file.
func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// raiseNoFile raises RLIMIT_NOFILE to at least n open files.
func raiseNoFile(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = max(n, lim.Cur)
	if lim.Max < lim.Cur {
		lim.Max = lim.Cur // needs CAP_SYS_RESOURCE
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", n, err)
	}
	return nil
}

// rusage returns the CPU time (user+sys) the process has used.
func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusKB returns a "<field>: N kB" value of /proc/self/status.
func procStatusKB(b *testing.B, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// startListenerProcess runs TestScaleListenerHelper in a child process and
// returns its listeners' addresses. stop ends it and returns the CPU time
// it used and how long it ran.
func startListenerProcess(b *testing.B, n int) (addrs []string, stop func() (cpu, wall time.Duration)) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestScaleListenerHelper$")
	cmd.Env = append(os.Environ(), "ANYCASTD_SCALE_LISTENERS="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for len(addrs) < n && sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listen "); ok {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) < n {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("listener process gave %d addresses, want %d", len(addrs), n)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return addrs, func() (time.Duration, time.Duration) {
		stdin.Close() // the helper exits at EOF
		if err := cmd.Wait(); err != nil {
			b.Errorf("listener process: %v", err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Since(start)
	}
}

// TestScaleListenerHelper is the child process of BenchmarkManager10kTCP:
// it opens ANYCASTD_SCALE_LISTENERS listeners on 127.0.0.1, prints
// "listen <addr>" for each, accepts and closes connections, and returns
// when its stdin ends. Without that variable it does nothing.
func TestScaleListenerHelper(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ANYCASTD_SCALE_LISTENERS"))
	if n == 0 {
		t.Skip("helper process for BenchmarkManager10kTCP")
	}
	if err := raiseNoFile(10_000); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		fmt.Printf("listen %s\n", ln.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
}
