//go:build linux

package health

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anycastd/anycastd/config"
)

// BenchmarkProcessExitDetection measures how long after SIGKILL of a
// service's main process its process check has taken it down: the pidfd
// wakes the check's Watch, which makes a probe due at once; the probe
// reports the exit as a definite failure, which skips fall, and the Down
// event is published as that probe ends. It kills at least 20 processes
// (b.N if more) and reports percentiles of that latency, and of the part of
// it that is anycastd's own: from the moment the kernel makes the pidfd
// readable (seen by a separate pidfd, blocked in poll) to the Down.
//
//	go test -run '^$' -bench ProcessExitDetection -benchtime 200x ./health/
func BenchmarkProcessExitDetection(b *testing.B) {
	runs := max(b.N, 20)
	pidFile := filepath.Join(b.TempDir(), "svc.pid")
	svc := startService(b, pidFile, true) // the first one, before the check starts
	// The interval (200ms) only matters for picking up each new process;
	// polling alone would see a kill after fall (3) × 200ms.
	check := processCheck("svc", config.ProcessCheck{PIDFile: pidFile}, 200*time.Millisecond)
	check.Rise = 1
	_, tl := startManager(b, check)
	total := make([]time.Duration, 0, runs)
	own := make([]time.Duration, 0, runs)
	for i := range runs {
		if i > 0 {
			svc = startService(b, pidFile, true)
		}
		tl.next(b, StatusUp, 5*time.Second)
		exited := exitTime(b, svc.pid())
		start := time.Now()
		svc.kill(b)
		ev := tl.next(b, StatusDown, 5*time.Second)
		if !ev.Last.Definite {
			b.Fatalf("down without a definite failure: %+v", ev.Last)
		}
		down := ev.Last.Time.Add(ev.Last.Latency)
		total = append(total, down.Sub(start))
		own = append(own, down.Sub(<-exited))
	}
	if testing.Verbose() {
		b.Logf("SIGKILL -> down: %v", total)
		b.Logf("pidfd readable -> down: %v", own)
	}
	pct := func(d []time.Duration, p float64) float64 {
		d = slices.Sorted(slices.Values(d))
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds())
	}
	b.ReportMetric(pct(total, 0.50), "p50-µs")
	b.ReportMetric(pct(total, 0.99), "p99-µs")
	b.ReportMetric(pct(own, 0.50), "own-p50-µs")
	b.ReportMetric(pct(own, 0.99), "own-p99-µs")
	b.ReportMetric(float64(runs), "kills")
	b.ReportMetric(0, "ns/op")
}

// exitTime returns when the kernel makes a pidfd of pid readable: the
// process has exited.
func exitTime(b *testing.B, pid int) <-chan time.Time {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan time.Time, 1)
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				ch <- time.Now()
				return
			}
		}
	}()
	return ch
}
