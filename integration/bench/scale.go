package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scaleListeners is how many ports the edge's listener process serves the
// tcp checks on (round robin).
const scaleListeners = 16

// ScaleResult is one scale run: VIPs IPv6 /128s, each with its own tcp
// check at 1 s, announced over Peers sessions.
type ScaleResult struct {
	Peers, VIPs int

	// anycastd started → it had announced every VIP (rise 3 at 1 s, plus up
	// to 1 s of start jitter: the checks, not BGP).
	AllUp time.Duration
	// Session established (anycastd's log) → the router holds every VIP
	// from that session (pfxRcd, polled every 10 ms over the vty). The
	// slowest session; and the first session up → every VIP in the FIB.
	SessionToRIB time.Duration
	FirstUpToFIB time.Duration
	// CPU time each process used from enabling the sessions until the FIB
	// held everything (UpWall).
	UpCPU  map[string]time.Duration
	UpWall time.Duration
	// UpErr: the router did not get everything within upLimit.
	UpErr string
	// UpFlaps: check state changes meanwhile (false failures); UpResets:
	// sessions lost meanwhile.
	UpFlaps, UpResets int

	// Over the steady window: anycastd's CPU as a fraction of one core,
	// its RSS (mean and max of 1 s samples) and peak RSS (VmHWM), the
	// probes the listener answered per second, check state changes (any
	// is a false failure), and the other processes' CPU.
	Steady            time.Duration
	CPU               float64
	RSSMean, RSSMax   int64
	HWM               int64
	ProbesPerSec      float64
	Flaps             int
	ListenerCPU       float64
	SteadyLoad        Load
	BgpdCPU, ZebraCPU float64

	// SIGTERM → the router's RIB has no VIP left from any session, the
	// kernel FIB has none, anycastd has exited. ByUpdates: every session was
	// still established when the RIB became empty (the withdrawals did it,
	// not the sessions closing). FlushWarn: anycastd logged that
	// withdrawals may not all have left in its flush timeout.
	TermRIB, TermFIB, TermExit time.Duration
	ByUpdates, FlushWarn       bool
	// TermErr: the withdrawal did not finish within termLimit; TermLeft
	// routes were still at the router, TermWithdrawn "withdrawn" lines
	// logged by then.
	TermErr                 string
	TermLeft, TermWithdrawn int
}

func runScale(ctx context.Context, env *Env, peers, vips int, steady time.Duration) (*ScaleResult, error) {
	var listeners []string
	for i := range scaleListeners {
		listeners = append(listeners, fmt.Sprintf("127.0.0.1:%d", 21000+i))
	}
	// anycastd's default hold time (9s): the lab's 3s expires while 8
	// sessions take in 10,000 routes each on 2 busy cores.
	rc := RouterConfig{Peers: peers, IPv6: true, Shutdown: true, HoldTime: 9 * time.Second}
	ec := EdgeConfig{Peers: peers, IPv6: true, ScaleVIPs: vips, ScaleInterval: time.Second, Listeners: listeners, HoldTime: 9 * time.Second}
	s, err := start(ctx, env, rc, ec, listeners)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &ScaleResult{Peers: peers, VIPs: vips, Steady: steady}
	pid := s.lab.Pid(edgeNode, "anycastd")
	prof := env.startPerf(pid, fmt.Sprintf("scale-%dpeers-1-startup", peers))

	// 1. Every VIP announced by anycastd, the sessions still down.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	started, err := s.anyLog.Wait(wctx, 0, msg("anycastd starting"))
	if err != nil {
		return nil, fmt.Errorf("anycastd's start line: %w", err)
	}
	last, err := s.waitCount(wctx, 0, vips, msg("announced"))
	if err != nil {
		return nil, fmt.Errorf("waiting for anycastd to announce %d VIPs: %w", vips, err)
	}
	res.AllUp = last.Time.Sub(started.Time)
	prof.stop(env)
	env.logf("%d sessions: %d VIPs up in anycastd after %s; enabling the sessions", peers, vips, fmtDur(res.AllUp))

	// 2. Sessions up: time until the router holds everything.
	am, fm := s.anyLog.Mark(), s.fib.Mark()
	prof = env.startPerf(pid, fmt.Sprintf("scale-%dpeers-2-sessionup", peers))
	upMeter, err := startCPU(s.pids(pid))
	if err != nil {
		return nil, err
	}
	cmds := []string{"configure terminal", fmt.Sprintf("router bgp %d", routerASN)}
	for k := range peers {
		cmds = append(cmds, fmt.Sprintf("no neighbor %s shutdown", edgeAddr(k, true)))
	}
	if _, err := s.lab.Vtysh(routerNode, cmds...); err != nil {
		return nil, err
	}
	full := map[string]time.Time{}
	var sum bgpSummary
	uctx, ucancel := context.WithTimeout(ctx, upLimit)
	defer ucancel()
	for len(full) < peers && res.UpErr == "" {
		sum, err = s.vty.summary("ipv6")
		now := time.Now()
		if err == nil {
			for addr, p := range sum.Peers {
				if _, ok := full[addr]; !ok && p.State == "Established" && p.PfxRcd >= vips {
					full[addr] = now
				}
			}
		}
		select {
		case <-uctx.Done():
			var state []string
			for addr, p := range sum.Peers {
				state = append(state, fmt.Sprintf("%s %s %d", addr, p.State, p.PfxRcd))
			}
			slices.Sort(state)
			res.UpErr = fmt.Sprintf("not every session had all %d VIPs within %v (%d did; now: %s)",
				vips, upLimit, len(full), strings.Join(state, ", "))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if res.UpErr == "" {
		if fib, err := s.fib.WaitCount(uctx, fm, vips); err != nil {
			res.UpErr = fmt.Sprintf("the FIB did not get all %d routes: %v", vips, err)
		} else {
			res.FirstUpToFIB = fib.Time.Sub(s.firstEstablished(am, full, res))
		}
	}
	res.UpFlaps = s.anyLog.Count(am, msg("health check changed state"))
	res.UpResets = s.anyLog.Count(am, sessionLost)
	res.UpCPU, res.UpWall, err = upMeter.seconds()
	if err != nil {
		return nil, err
	}
	prof.stop(env)
	if res.UpErr != "" {
		env.logf("%d sessions: %s; measuring for %v anyway", peers, res.UpErr, steady)
	} else {
		env.logf("%d sessions: the router holds %d VIPs from each; measuring for %v", peers, vips, steady)
	}

	// 3. The steady window.
	prof = env.startPerf(pid, fmt.Sprintf("scale-%dpeers-3-steady", peers))
	if err := s.steady(ctx, pid, res); err != nil {
		return nil, err
	}
	prof.stop(env)

	// 4. SIGTERM: everything withdrawn (or the sessions closed), within
	// termLimit; past it the lab's teardown kills anycastd.
	s.terminate(ctx, env, pid, res)
	return res, nil
}

// termLimit bounds how long a scale run waits for anycastd to withdraw
// everything after SIGTERM.
const termLimit = 30 * time.Second

// terminate sends anycastd SIGTERM and times the withdrawal of every VIP.
func (s *setup) terminate(ctx context.Context, env *Env, pid int, res *ScaleResult) {
	am, fm := s.anyLog.Mark(), s.fib.Mark()
	prof := env.startPerf(pid, fmt.Sprintf("scale-%dpeers-4-sigterm", res.Peers))
	defer prof.stop(env)
	term := time.Now()
	if err := s.lab.SignalProcess(edgeNode, "anycastd", syscall.SIGTERM); err != nil {
		res.TermErr = err.Error()
		return
	}
	tctx, cancel := context.WithTimeout(ctx, termLimit)
	defer cancel()
	for res.TermRIB == 0 || res.TermExit == 0 {
		now := time.Now()
		if res.TermExit == 0 && !s.lab.Running(edgeNode, "anycastd") {
			res.TermExit = now.Sub(term)
		}
		if res.TermRIB == 0 {
			if sum, err := s.vty.summary("ipv6"); err == nil {
				pfx, est := 0, 0
				for _, p := range sum.Peers {
					if p.State == "Established" {
						est++
						pfx += p.PfxRcd
					}
				}
				res.TermLeft = pfx
				if pfx == 0 {
					res.TermRIB = now.Sub(term)
					res.ByUpdates = est == res.Peers
				}
			}
		}
		select {
		case <-tctx.Done():
			res.TermErr = fmt.Sprintf("not done %v after SIGTERM: %d routes still at the router", termLimit, res.TermLeft)
			res.FlushWarn = s.anyLog.Count(am, msg("withdrawals may not all have left before the sessions close")) > 0
			res.TermWithdrawn = s.anyLog.Count(am, msg("withdrawn"))
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	if ev, err := s.fib.WaitCount(tctx, fm, 0); err == nil {
		res.TermFIB = ev.Time.Sub(term)
	} else {
		res.TermErr = fmt.Sprintf("FIB: %v (%d routes left)", err, s.fib.Count())
	}
	res.FlushWarn = s.anyLog.Count(am, msg("withdrawals may not all have left before the sessions close")) > 0
	res.TermWithdrawn = s.anyLog.Count(am, msg("withdrawn"))
}

// upLimit bounds how long a scale run waits for the router to hold every
// VIP after enabling the sessions.
const upLimit = time.Minute

// firstEstablished returns when the first session came up (anycastd's
// log, from mark on) and sets res.SessionToRIB: for each session, from its
// first establishment to the time the router held every VIP from it
// (full, keyed by the router's name for the session), the slowest.
func (s *setup) firstEstablished(mark int, full map[string]time.Time, res *ScaleResult) time.Time {
	neighborOf := map[string]string{}
	for k := range res.Peers {
		neighborOf[routerAddr(k, true).String()] = edgeAddr(k, true).String()
	}
	var first time.Time
	seen := map[string]bool{}
	for _, e := range s.anyLog.Since(mark) {
		if e.Msg != "BGP session established" {
			continue
		}
		if first.IsZero() {
			first = e.Time
		}
		// anycastd names the router's address, the router the edge's.
		n := neighborOf[e.Attr("peer")]
		if t, ok := full[n]; ok && !seen[n] {
			seen[n] = true
			res.SessionToRIB = max(res.SessionToRIB, t.Sub(e.Time))
		}
	}
	return first
}

// sessionLost matches anycastd's line for a session that went down.
func sessionLost(e Entry) bool { return strings.HasPrefix(e.Msg, "BGP session lost") }

// waitCount waits until n lines from mark on match, and returns the n-th.
func (s *setup) waitCount(ctx context.Context, mark, n int, match func(Entry) bool) (Entry, error) {
	seen := 0
	for {
		for _, e := range s.anyLog.Since(mark) {
			mark++
			if match(e) {
				seen++
				if seen == n {
					return e, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return Entry{}, fmt.Errorf("%d of %d: %w", seen, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// steady measures CPU, memory, probes and flaps over res.Steady.
func (s *setup) steady(ctx context.Context, pid int, res *ScaleResult) error {
	pids := s.pids(pid)
	am := s.anyLog.Mark()
	acc0, err := s.accepted()
	if err != nil {
		return err
	}
	meter, err := startCPU(pids)
	if err != nil {
		return err
	}
	load, err := startLoad(pids)
	if err != nil {
		return err
	}
	var rssSum int64
	var n int
	t := time.NewTicker(time.Second)
	defer t.Stop()
	end := time.After(res.Steady)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			done = true
		case <-t.C:
		}
		st, err := statusKB(pid, "VmRSS", "VmHWM")
		if err != nil {
			return fmt.Errorf("anycastd: %w", err)
		}
		rssSum += st["VmRSS"]
		n++
		res.RSSMax = max(res.RSSMax, st["VmRSS"])
		res.HWM = st["VmHWM"]
	}
	shares, wall, err := meter.shares()
	if err != nil {
		return err
	}
	res.SteadyLoad = load.load()
	acc1, err := s.accepted()
	if err != nil {
		return err
	}
	res.CPU, res.ListenerCPU = shares["anycastd"], shares["listener"]
	res.BgpdCPU, res.ZebraCPU = shares["bgpd"], shares["zebra"]
	res.RSSMean = rssSum / int64(max(n, 1))
	res.ProbesPerSec = float64(acc1-acc0) / wall.Seconds()
	res.Flaps = s.anyLog.Count(am, msg("health check changed state"))
	return nil
}

// pids are the processes whose CPU the scale runs measure.
func (s *setup) pids(anycastd int) map[string]int {
	return map[string]int{
		"anycastd": anycastd,
		"listener": s.lab.Pid(edgeNode, "benchlisten"),
		"bgpd":     s.lab.Pid(routerNode, "bgpd"),
		"zebra":    s.lab.Pid(routerNode, "zebra"),
	}
}

var acceptedLine = regexp.MustCompile(`(?m)^accepted (\d+)$`)

// accepted asks the listener process how many connections it has accepted.
func (s *setup) accepted() (int64, error) {
	path := filepath.Join(s.lab.NodeDir(edgeNode), "benchlisten.log")
	before, _ := os.ReadFile(path)
	if err := s.lab.SignalProcess(edgeNode, "benchlisten", syscall.SIGUSR1); err != nil {
		return 0, err
	}
	for range 500 {
		data, _ := os.ReadFile(path)
		if len(data) > len(before) {
			if m := acceptedLine.FindAllSubmatch(data[len(before):], -1); len(m) > 0 {
				return strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, errors.New("the listener process did not report its count")
}
