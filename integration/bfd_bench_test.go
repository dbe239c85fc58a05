//go:build integration

package integration

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// The BFD benchmark (make bench-bfd, issue #20): on the sessions-frr lab,
// how long after anycastd freezes (SIGSTOP: the node looks dead, nothing is
// withdrawn) its VIP leaves FRR's BGP table (RIB) and the router's kernel
// FIB, at 3 × 100 ms and 3 × 300 ms, and with BFD off (BGP hold time 9 s).
// Skipped unless ANYCASTD_BENCH_BFD is set; BENCH_BFD_RUNS (default 20)
// and BENCH_BFD_HOLD_RUNS (default 5) give the runs per setting.
//
// Between runs anycastd is killed (still frozen) and started again, and
// the lab is left to settle (BGP up for 3 s, the VIP at FRR, BFD up): the
// same process, merely continued, would hold its BGP session down for a
// hold-down that doubles with each flap (internal/daemon/bfd.go), 2 min
// after seven runs.

// benchSetting is one row of the table: BFD at minTx × 3 (on both ends),
// or BFD off when minTx is "".
type benchSetting struct {
	name  string
	minTx string // "100ms", "300ms"; "" for BFD off
	runs  int
}

// benchRun is one freeze: when the VIP left the RIB and the FIB, counted
// from the SIGSTOP, and how long the polls that saw it gone took (the
// resolution of each figure).
type benchRun struct{ rib, fib, ribPoll, fibPoll time.Duration }

func benchEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of runs", name, s)
	}
	return n
}

func TestBenchBFD(t *testing.T) {
	if os.Getenv("ANYCASTD_BENCH_BFD") == "" {
		t.Skip("benchmark: set ANYCASTD_BENCH_BFD=1 (make bench-bfd) to measure frozen node → VIP gone from FRR's RIB and FIB")
	}
	runs := benchEnvInt(t, "BENCH_BFD_RUNS", 20)
	holdRuns := benchEnvInt(t, "BENCH_BFD_HOLD_RUNS", 5)
	settings := []benchSetting{
		{name: "BFD 3 × 100 ms", minTx: "100ms", runs: runs},
		{name: "BFD 3 × 300 ms", minTx: "300ms", runs: runs},
		{name: "BFD off (hold 9 s)", runs: holdRuns},
	}
	start := time.Now()
	results := make([][]benchRun, len(settings))
	for i, s := range settings {
		t.Run(strings.NewReplacer(" ", "", "×", "x").Replace(s.name), func(t *testing.T) {
			benchSettingRuns(t, s, &results[i])
		})
	}
	table := benchTable(settings, results)
	t.Logf("frozen node → VIP gone (ms), IPv4 single hop, FRR 8.4.4; %v in all\n%s", time.Since(start).Round(time.Second), table)
	fmt.Printf("\nBFD benchmark: frozen node → VIP gone from FRR's BGP table (RIB) and the router's kernel FIB, ms (%v in all)\n%s",
		time.Since(start).Round(time.Second), table)
}

// benchSettingRuns starts one lab for s and freezes anycastd s.runs times,
// appending each run to out as it is done.
func benchSettingRuns(t *testing.T, s benchSetting, out *[]benchRun) {
	side := bfdV4
	start := time.Now()
	var l *lab.Lab
	if s.minTx == "" {
		peer := fmt.Sprintf("address = %q\nfamilies = [%q]\n", side.router, side.family)
		site := strings.Replace(siteConfFRR(peer, side.vip), `hold_time = "3s"`, `hold_time = "9s"`, 1)
		if !strings.Contains(site, `hold_time = "9s"`) {
			t.Fatalf("site config without the 9s hold time:\n%s", site)
		}
		l = startBFDFRR(t, side, site)
		if out, err := l.Vtysh("router", "configure terminal", "router bgp 65010", "no neighbor "+side.site+" bfd"); err != nil {
			t.Fatalf("turning BFD off on the router: %v\n%s", err, out)
		}
	} else {
		l = startBFDFRR(t, side, bfdSiteConf(side, s.minTx))
		msec := strings.TrimSuffix(s.minTx, "ms")
		if out, err := l.Vtysh("router", "configure terminal", "bfd", "profile fast",
			"transmit-interval "+msec, "receive-interval "+msec); err != nil {
			t.Fatalf("setting the router's BFD profile to %s: %v\n%s", s.minTx, err, out)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := l.Log("site", "anycastd")
			t.Logf("site log:\n%s", log)
		}
	})

	for i := range s.runs {
		benchSettled(t, l, side, s.minTx)
		r := benchFreeze(t, l, side)
		t.Logf("%s run %d: RIB %v, FIB %v (last polls took %v, %v)", s.name, i+1, ms(r.rib), ms(r.fib), ms(r.ribPoll), ms(r.fibPoll))
		*out = append(*out, r)
		// Still frozen: a fresh anycastd, so no flap history holds BGP down.
		if err := l.KillProcess("site", "anycastd", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := l.StartProcess("site", "anycastd"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %d runs in %v (one lab)", s.name, s.runs, time.Since(start).Round(time.Second))
}

// benchSettled waits until the lab is settled: BGP up for 3 s with the VIP
// at FRR, in the kernel, and (with BFD) both BFD sessions up at minTx.
func benchSettled(t *testing.T, l *lab.Lab, side bfdSide, minTx string) {
	t.Helper()
	if minTx != "" {
		settled(t, l, side)
		want, err := time.ParseDuration(minTx)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, 50*time.Millisecond, "FRR's BFD session at the site's "+minTx, func() error {
			ps, err := frrBFDPeers(l)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Peer == side.site && p.Status == "up" && p.RxInterval == int(want.Milliseconds()) {
					return nil
				}
			}
			return fmt.Errorf("not yet: %+v", ps)
		})
	} else {
		eventually(t, 60*time.Second, 50*time.Millisecond, "BGP up for 3s with the VIP at FRR", bgpSteady(l, side))
	}
	eventually(t, 10*time.Second, 20*time.Millisecond, "the VIP in the router's kernel", kernelHas(l, "router", side.vip))
}

// benchFreeze freezes anycastd and polls the RIB and the FIB, each in its
// own goroutine, until the VIP is gone from both (at most 15 s). A time is
// taken when the poll that first saw the VIP gone returned, so it includes
// that poll's own latency.
func benchFreeze(t *testing.T, l *lab.Lab, side bfdSide) benchRun {
	t.Helper()
	const timeout, interval = 15 * time.Second, 5 * time.Millisecond
	var wg sync.WaitGroup
	var r benchRun
	var ribErr, fibErr error
	t0 := time.Now()
	if err := l.SignalProcess("site", "anycastd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	poll := func(d, took *time.Duration, errp *error, gone func() error) {
		defer wg.Done()
		for {
			before := time.Now()
			err := gone()
			now := time.Now()
			if err == nil {
				*d, *took = now.Sub(t0), now.Sub(before)
				return
			}
			if now.Sub(t0) > timeout {
				*errp = err
				return
			}
			time.Sleep(interval)
		}
	}
	wg.Add(2)
	go poll(&r.rib, &r.ribPoll, &ribErr, noBGPPath(l, side.vip))
	go poll(&r.fib, &r.fibPoll, &fibErr, func() error {
		route, err := kernelRoute(l, "router", side.vip)
		if err != nil {
			return err
		}
		if route != "" {
			return fmt.Errorf("router's kernel still has %q", route)
		}
		return nil
	})
	wg.Wait()
	if ribErr != nil || fibErr != nil {
		t.Fatalf("frozen node's VIP not gone from the router within %v: RIB: %v; FIB: %v", timeout, ribErr, fibErr)
	}
	return r
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// benchTable gives the plain table: per setting and per table (RIB, FIB),
// the runs and p50/p90/p99/min/max in ms, and "poll": the median time the
// poll that saw the VIP gone took (vtysh for the RIB, ip route for the
// FIB), included in each figure.
func benchTable(settings []benchSetting, results [][]benchRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %-4s %5s %7s %7s %7s %7s %7s %7s\n", "setting", "", "runs", "p50", "p90", "p99", "min", "max", "poll")
	for i, s := range settings {
		for _, which := range []string{"RIB", "FIB"} {
			var ds, polls []time.Duration
			for _, r := range results[i] {
				if which == "RIB" {
					ds, polls = append(ds, r.rib), append(polls, r.ribPoll)
				} else {
					ds, polls = append(ds, r.fib), append(polls, r.fibPoll)
				}
			}
			if len(ds) == 0 {
				fmt.Fprintf(&b, "%-20s %-4s %5d\n", s.name, which, 0)
				continue
			}
			slices.Sort(ds)
			slices.Sort(polls)
			msf := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
			fmt.Fprintf(&b, "%-20s %-4s %5d %7s %7s %7s %7s %7s %7s\n", s.name, which, len(ds),
				msf(percentile(ds, 50)), msf(percentile(ds, 90)), msf(percentile(ds, 99)), msf(ds[0]), msf(ds[len(ds)-1]),
				msf(percentile(polls, 50)))
		}
	}
	return b.String()
}
