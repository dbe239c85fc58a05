package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// BenchmarkProbeCost reports what one probe costs the process in CPU time
// (user+sys from getrusage, "cpu-µs/probe"), per check type, with probes
// run one after the other by a Runner as the scheduler's workers run them
// (timeout, result, history; no scheduling). The sub-benchmarks: tcp, a
// plain tcp check (the batched prober on Linux) against a listener in a
// child process, whose accepting is not counted; tcp-netdial, the same
// check dialled with net.Dialer, the path of tcp checks with TLS, send or
// expect (and of all of them before the batched prober); http, a GET
// against an httptest.Server in this process, whose CPU is counted too;
// listen, the kernel's socket table over sock_diag, no connection opened;
// process, a pid file naming a sleeping child.
//
//	go test -run '^$' -bench ProbeCost -benchtime 20000x ./health/
func BenchmarkProbeCost(b *testing.B) {
	addrs, stopListeners := startListenerProcess(b, 1)
	defer stopListeners()
	ctx := context.Background()

	tcp := func(b *testing.B) (config.Check, Checker) {
		c := costCheck(config.CheckTCP)
		c.TCP = &config.TCPCheck{Address: addrs[0]}
		ch, err := NewChecker(c)
		if err != nil {
			b.Fatal(err)
		}
		return c, ch
	}
	b.Run("tcp", func(b *testing.B) {
		c, ch := tcp(b)
		benchProbes(b, ctx, c, ch)
	})
	b.Run("tcp-netdial", func(b *testing.B) {
		c, ch := tcp(b)
		ch.(*tcpChecker).plain = nil
		benchProbes(b, ctx, c, ch)
	})
	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}))
		defer srv.Close()
		c := parseCheck(b, "type = 'http'\nurl = %q", srv.URL+"/")
		c.Timeout = costCheck("").Timeout
		ch, err := NewChecker(c)
		if err != nil {
			b.Fatal(err)
		}
		benchProbes(b, ctx, c, ch)
	})
	b.Run("listen", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		ap := netip.MustParseAddrPort(ln.Addr().String())
		c := costCheck(config.CheckListen)
		c.Listen = &config.ListenCheck{Addr: ap.Addr(), Port: ap.Port(), Protocol: "tcp"}
		ch, err := NewChecker(c)
		if err != nil {
			b.Fatal(err)
		}
		benchProbes(b, ctx, c, ch)
	})
	b.Run("process", func(b *testing.B) {
		cmd := exec.Command("sleep", "3600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
		pidFile := filepath.Join(b.TempDir(), "svc.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		c := costCheck(config.CheckProcess)
		c.Process = &config.ProcessCheck{PIDFile: pidFile}
		ch, err := NewChecker(c)
		if err != nil {
			b.Fatal(err)
		}
		benchProbes(b, ctx, c, ch)
	})
}

// costCheck returns a check of type typ with BenchmarkProbeCost's timing.
func costCheck(typ config.CheckType) config.Check {
	return config.Check{Name: "cost", Type: typ, Interval: time.Second, FastInterval: time.Second,
		Timeout: 500 * time.Millisecond, Rise: 3, Fall: 3}
}

// benchProbes runs b.N probes of ch through a Runner and reports their CPU
// time per probe, and how many failed (towards a listener, the accept
// queue overflows when its process is not scheduled for a while on a busy
// machine: the SYN is dropped and the probe times out).
func benchProbes(b *testing.B, ctx context.Context, c config.Check, ch Checker) {
	r := NewRunner(c, ch, nil, nil)
	var firstErr string
	r.OnResult(func(res Result) {
		if firstErr == "" && res.Err != "" {
			firstErr = res.Err
		}
	})
	defer r.closeChecker()
	r.probeOnce(ctx) // warm-up: connections, caches
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := rusage(b)
	for range b.N {
		r.probeOnce(ctx)
	}
	cpu := rusage(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/probe")
	st := r.State()
	b.ReportMetric(float64(st.TotalFailures), "failures")
	if st.TotalFailures > 0 {
		b.Logf("%d of %d probes failed, the first with %q", st.TotalFailures, b.N+1, firstErr)
	}
}
