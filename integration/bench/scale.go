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

// scaleCase says what one scale run does.
type scaleCase struct {
	// Binary names the anycastd binary ("this tree", "baseline").
	Binary      string
	Peers, VIPs int
	V6          bool   // IPv6 /128 VIPs over IPv6 sessions; else IPv4 /32s over IPv4
	Check       string // "tcp" or "listen"
	// Open: the router's neighbors are not shut, so the sessions come up
	// while the checks decide (process start → the router holds all);
	// else they are enabled once anycastd announced every VIP (session
	// up → the router holds all).
	Open   bool
	Steady time.Duration // the CPU/memory window; 0: none
	Term   bool          // time SIGTERM → every VIP withdrawn
	Method string        // [interface] method, managing the VIPs on lo; "": unmanaged
}

func (c scaleCase) family() string {
	if c.V6 {
		return "ipv6"
	}
	return "ipv4"
}

func (c scaleCase) String() string {
	how := "sessions enabled once all is announced"
	if c.Open {
		how = "sessions up from the start"
	}
	m := ""
	if c.Method != "" {
		m = ", method " + c.Method
	}
	return fmt.Sprintf("%s: %d VIPs (%s), %s checks, %d session(s), %s%s",
		c.Binary, c.VIPs, c.family(), c.Check, c.Peers, how, m)
}

// ScaleResult is one scale run: VIPs (IPv6 /128s or IPv4 /32s), each with
// its own check at 1 s, rise 1, announced over Peers sessions.
type ScaleResult struct {
	scaleCase

	// From the process start (the lab's exec of anycastd, ms precision):
	// to its "anycastd starting" line (the config loaded), to the last
	// "announced" line (the checks, not BGP: rise 1 at 1 s plus up to 1 s
	// of start jitter), and (Open) to the router holding every VIP from
	// every session and to its FIB holding all.
	ExecToLog, AllUp       time.Duration
	StartToRIB, StartToFIB time.Duration
	// AnnErr: anycastd never had every VIP announced at once.
	AnnErr string
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

func runScale(ctx context.Context, env *Env, c scaleCase) (*ScaleResult, error) {
	var listeners []string
	for i := range scaleListeners {
		listeners = append(listeners, fmt.Sprintf("127.0.0.1:%d", 21000+i))
	}
	// anycastd's default hold time (9s): the lab's 3s expires while 8
	// sessions take in 10,000 routes each on 2 busy cores.
	rc := RouterConfig{Peers: c.Peers, IPv6: c.V6, Shutdown: !c.Open, HoldTime: 9 * time.Second}
	ec := EdgeConfig{Peers: c.Peers, IPv6: c.V6, ScaleVIPs: c.VIPs, ScaleV4: !c.V6, ScaleCheck: c.Check,
		ScaleInterval: time.Second, ScaleRise: 1, Listeners: listeners, HoldTime: 9 * time.Second, Method: c.Method}
	if c.Method != "" {
		dir, err := os.MkdirTemp("", "anycastd-bench-state-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		ec.StateDir = dir
	}
	s, err := start(ctx, env, rc, ec, listeners)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &ScaleResult{scaleCase: c}
	pid := s.lab.Pid(edgeNode, "anycastd")
	name := fmt.Sprintf("scale-%s-%s-%s-%dpeers", strings.ReplaceAll(c.Binary, " ", ""), c.family(), c.Check, c.Peers)
	if c.Open {
		name += "-open"
	}
	prof := env.startPerf(pid, name+"-1-startup")

	// 1. Every VIP announced by anycastd (and, Open, at the router).
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	exec, err := s.execTime()
	if err != nil {
		return nil, err
	}
	started, err := s.anyLog.Wait(wctx, 0, msg("anycastd starting"))
	if err != nil {
		return nil, fmt.Errorf("anycastd's start line: %w", err)
	}
	res.ExecToLog = started.Time.Sub(exec)
	if c.Open {
		full, upErr := s.pollFull(ctx, c.Peers, c.VIPs)
		res.UpErr = upErr
		for _, t := range full {
			res.StartToRIB = max(res.StartToRIB, t.Sub(exec))
		}
		if upErr == "" {
			// From the watcher's start: the lab was up before anything
			// was announced.
			if ev, err := s.fib.WaitCount(wctx, 0, c.VIPs); err == nil {
				res.StartToFIB = ev.Time.Sub(exec)
			} else {
				res.UpErr = fmt.Sprintf("the FIB did not get all %d routes: %v", c.VIPs, err)
			}
		}
	}
	if last, err := s.waitAnnounced(wctx, c.VIPs); err != nil {
		// Checks that flap (a starved machine) may never have all up at
		// once: measure the rest anyway.
		res.AnnErr = fmt.Sprintf("not all announced at once within 2m: %v", err)
		env.logf("%s", res.AnnErr)
	} else {
		res.AllUp = last.Time.Sub(exec)
	}
	prof.stop(env)
	if c.Open {
		if res.UpErr != "" {
			env.logf("%d VIPs announced %s after the process start; %s", c.VIPs, fmtDur(res.AllUp), res.UpErr)
		} else {
			env.logf("%d VIPs announced %s after the process start, at the router after %s", c.VIPs, fmtDur(res.AllUp), fmtDur(res.StartToRIB))
		}
	} else {
		env.logf("%d VIPs announced %s after the process start; enabling the sessions", c.VIPs, fmtDur(res.AllUp))
		// 2. Sessions up: time until the router holds everything.
		prof = env.startPerf(pid, name+"-2-sessionup")
		if err := s.sessionsUp(ctx, pid, res); err != nil {
			return nil, err
		}
		prof.stop(env)
		if res.UpErr != "" {
			env.logf("%s", res.UpErr)
		} else {
			env.logf("the router holds %d VIPs from each session %s after it came up", c.VIPs, fmtDur(res.SessionToRIB))
		}
	}

	// 3. The steady window.
	if c.Steady > 0 {
		env.logf("measuring for %v", c.Steady)
		prof = env.startPerf(pid, name+"-3-steady")
		if err := s.steady(ctx, pid, res); err != nil {
			return nil, err
		}
		prof.stop(env)
	}

	// 4. SIGTERM: everything withdrawn (or the sessions closed), within
	// termLimit; past it the lab's teardown kills anycastd.
	if c.Term {
		prof = env.startPerf(pid, name+"-4-sigterm")
		s.terminate(ctx, res)
		prof.stop(env)
	}
	return res, nil
}

// sessionsUp enables the router's neighbors and times the router taking in
// every VIP.
func (s *setup) sessionsUp(ctx context.Context, pid int, res *ScaleResult) error {
	am, fm := s.anyLog.Mark(), s.fib.Mark()
	upMeter, err := startCPU(s.pids(pid))
	if err != nil {
		return err
	}
	cmds := []string{"configure terminal", fmt.Sprintf("router bgp %d", routerASN)}
	for k := range res.Peers {
		cmds = append(cmds, fmt.Sprintf("no neighbor %s shutdown", edgeAddr(k, res.V6)))
	}
	if _, err := s.lab.Vtysh(routerNode, cmds...); err != nil {
		return err
	}
	full, upErr := s.pollFull(ctx, res.Peers, res.VIPs)
	res.UpErr = upErr
	if res.UpErr == "" {
		uctx, cancel := context.WithTimeout(ctx, upLimit)
		defer cancel()
		if fib, err := s.fib.WaitCount(uctx, fm, res.VIPs); err != nil {
			res.UpErr = fmt.Sprintf("the FIB did not get all %d routes: %v", res.VIPs, err)
		} else {
			res.FirstUpToFIB = fib.Time.Sub(s.firstEstablished(am, full, res))
		}
	}
	res.UpFlaps = s.anyLog.Count(am, msg("health check changed state"))
	res.UpResets = s.anyLog.Count(am, sessionLost)
	res.UpCPU, res.UpWall, err = upMeter.seconds()
	return err
}

// pollFull polls the router's sessions every 10 ms until each is
// established with at least vips prefixes received, for upLimit; it
// returns when each got there (keyed by the router's name for the
// session), and what was missing if not all did.
func (s *setup) pollFull(ctx context.Context, peers, vips int) (map[string]time.Time, string) {
	full := map[string]time.Time{}
	var sum bgpSummary
	uctx, cancel := context.WithTimeout(ctx, upLimit)
	defer cancel()
	for len(full) < peers {
		var err error
		sum, err = s.vty.summary(s.afi())
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
			return full, fmt.Sprintf("not every session had all %d VIPs within %v (%d did; now: %s)",
				vips, upLimit, len(full), strings.Join(state, ", "))
		case <-time.After(10 * time.Millisecond):
		}
	}
	return full, ""
}

// execTime returns when the lab started anycastd: its "=== lab: starting
// anycastd at 15:04:05.000" line (local time, ms precision), on the day
// that puts it within the last 12 hours.
func (s *setup) execTime() (time.Time, error) {
	path := filepath.Join(s.lab.NodeDir(edgeNode), "anycastd.log")
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	return parseExecLine(data, time.Now())
}

const execPrefix = "=== lab: starting anycastd at "

func parseExecLine(log []byte, now time.Time) (time.Time, error) {
	for line := range strings.SplitSeq(string(log), "\n") {
		rest, ok := strings.CutPrefix(line, execPrefix)
		if !ok || len(rest) < len("15:04:05.000") {
			continue
		}
		tod, err := time.ParseInLocation("15:04:05.000", rest[:len("15:04:05.000")], now.Location())
		if err != nil {
			return time.Time{}, fmt.Errorf("lab's start line %q: %w", line, err)
		}
		y, m, d := now.Date()
		t := time.Date(y, m, d, tod.Hour(), tod.Minute(), tod.Second(), tod.Nanosecond(), now.Location())
		if t.Sub(now) > 12*time.Hour {
			t = t.AddDate(0, 0, -1)
		} else if now.Sub(t) > 12*time.Hour {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, errors.New("no lab start line in anycastd's log")
}

// termLimit bounds how long a scale run waits for anycastd to withdraw
// everything after SIGTERM.
const termLimit = 30 * time.Second

// terminate sends anycastd SIGTERM and times the withdrawal of every VIP.
func (s *setup) terminate(ctx context.Context, res *ScaleResult) {
	am, fm := s.anyLog.Mark(), s.fib.Mark()
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
			if sum, err := s.vty.summary(s.afi()); err == nil {
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
	// An empty FIB without any change since SIGTERM never had the routes.
	if s.fib.Count() > 0 || s.fib.Mark() > fm {
		if ev, err := s.fib.WaitCount(tctx, fm, 0); err == nil {
			res.TermFIB = ev.Time.Sub(term)
		} else {
			res.TermErr = fmt.Sprintf("FIB: %v (%d routes left)", err, s.fib.Count())
		}
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
		neighborOf[routerAddr(k, res.V6).String()] = edgeAddr(k, res.V6).String()
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

// waitAnnounced waits until anycastd's log says n prefixes are announced at
// once (each "announced" line adds its prefix, each "withdrawn" line takes
// it away: a check that flaps does not count twice), and returns the line
// that made it n.
func (s *setup) waitAnnounced(ctx context.Context, n int) (Entry, error) {
	up := map[string]bool{}
	mark := 0
	for {
		for _, e := range s.anyLog.Since(mark) {
			mark++
			switch e.Msg {
			case "announced":
				up[e.Attr("prefix")] = true
				if len(up) == n {
					return e, nil
				}
			case "withdrawn":
				delete(up, e.Attr("prefix"))
			}
		}
		select {
		case <-ctx.Done():
			return Entry{}, fmt.Errorf("%d of %d announced: %w", len(up), n, ctx.Err())
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
