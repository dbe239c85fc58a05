package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// WithdrawResult is one withdrawal run: the web VIP withdrawn and announced
// again Reps times over Peers sessions. Every duration starts at the
// completion of the check that crossed fall (anycastd's "health check
// changed state" line, logged right after the probe returned).
type WithdrawResult struct {
	Peers, Reps int

	Logged  Sample // anycastd logged "withdrawn" (DeletePath returned)
	Wire1   Sample // the first session's UPDATE arrived at the router
	WireAll Sample // every session's UPDATE arrived at the router
	Parsed  Sample // bgpd parsed the last session's withdrawal
	RIB     Sample // bgpd's best path run dropped the route (handed to zebra)
	RIBPoll Sample // a vty poll (every ~1 ms) first saw no path
	FIB     Sample // the kernel FIB's RTM_DELROUTE

	// Parts of FIB: UPDATE on the link → parsed; parsed → RIB; RIB → FIB.
	WireToParsed, ParsedToRIB, RIBToFIB Sample

	UpFIB Sample // the way back: check passed → route in the kernel FIB

	Load Load // over the repetitions
}

// runWithdraw measures the withdrawal overhead over peers sessions: the web
// check (http, interval 100ms, rise 1, fall 1) fails because siteweb is told
// to answer 503 (SIGUSR1), then passes again (SIGUSR2).
func runWithdraw(ctx context.Context, env *Env, peers, reps int) (*WithdrawResult, error) {
	rc := RouterConfig{Peers: peers, Debug: true}
	ec := EdgeConfig{Peers: peers, Interval: 100 * time.Millisecond, Rise: 1, Fall: 1}
	s, err := start(ctx, env, rc, ec, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	wire, err := WatchWire(s.lab.Namespace(routerNode), "eth1")
	if err != nil {
		return nil, err
	}
	defer wire.Close()
	if err := s.settle(ctx, webVIP); err != nil {
		return nil, err
	}
	res := &WithdrawResult{Peers: peers, Reps: reps}
	load, err := startLoad(s.labPids())
	if err != nil {
		return nil, err
	}
	defer func() { res.Load = load.load() }()
	for i := range reps {
		if err := s.withdrawOnce(ctx, wire, res); err != nil {
			return nil, fmt.Errorf("repetition %d: %w", i+1, err)
		}
		if i%10 == 9 {
			env.logf("%d sessions: %d/%d withdrawals", peers, i+1, reps)
		}
	}
	return res, nil
}

// settle waits until every session is up and the router has the VIP from
// each.
func (s *setup) settle(ctx context.Context, p netip.Prefix) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.waitEstablished(wctx); err != nil {
		return err
	}
	if err := s.waitPaths(wctx, p, s.peers); err != nil {
		return err
	}
	_, err := s.fib.Wait(wctx, 0, func(e FIBEvent) bool { return e.Prefix == p && !e.Delete })
	return err
}

func (s *setup) withdrawOnce(ctx context.Context, wire *Wire, res *WithdrawResult) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	am, bm, fm, wm := s.anyLog.Mark(), s.bgpdLog.Mark(), s.fib.Mark(), wire.Mark()
	poll := s.pollGone(ctx, webVIP)
	if err := s.lab.SignalProcess(edgeNode, "siteweb", syscall.SIGUSR1); err != nil {
		return err
	}
	fib, err := s.fib.WaitRoute(ctx, fm, webVIP, true)
	if err != nil {
		return fmt.Errorf("waiting for the FIB to lose %s: %w", webVIP, err)
	}
	ribPoll := <-poll
	check, err := s.anyLog.Wait(ctx, am, msg("health check changed state", "check", "web", "to", "down"))
	if err != nil {
		return fmt.Errorf("anycastd's check log line: %w", err)
	}
	logged, err := s.anyLog.Wait(ctx, am, msg("withdrawn", "prefix", webVIP.String()))
	if err != nil {
		return fmt.Errorf("anycastd's withdrawn line: %w", err)
	}
	rib, err := s.bgpdLog.Wait(ctx, bm, contains("Tx route delete", " "+webVIP.String()))
	if err != nil {
		return fmt.Errorf("bgpd's route delete line: %w", err)
	}
	// One withdrawal per session, on the link and in bgpd's log.
	var wires []time.Time
	from := map[netip.Addr]bool{}
	captured, captureErr := wire.Since(wm)
	for _, e := range captured {
		if slices.Contains(e.Withdrawn, webVIP) && !from[e.From] {
			from[e.From] = true
			wires = append(wires, e.Time)
		}
	}
	var parsed []time.Time
	for _, e := range s.bgpdLog.Since(bm) {
		if contains("rcvd UPDATE about "+webVIP.String(), "withdrawn")(e) {
			parsed = append(parsed, e.Time)
		}
	}
	if len(wires) != s.peers || len(parsed) != s.peers {
		err := fmt.Errorf("saw %d withdrawals on the link and %d in bgpd's log, want %d each", len(wires), len(parsed), s.peers)
		if captureErr != nil {
			err = fmt.Errorf("%w (the capture on the link stopped: %w)", err, captureErr)
		}
		return err
	}
	t0 := check.Time
	res.Logged = append(res.Logged, logged.Time.Sub(t0))
	res.Wire1 = append(res.Wire1, slices.MinFunc(wires, time.Time.Compare).Sub(t0))
	lastWire := slices.MaxFunc(wires, time.Time.Compare)
	lastParsed := slices.MaxFunc(parsed, time.Time.Compare)
	res.WireAll = append(res.WireAll, lastWire.Sub(t0))
	res.Parsed = append(res.Parsed, lastParsed.Sub(t0))
	res.RIB = append(res.RIB, rib.Time.Sub(t0))
	if !ribPoll.IsZero() {
		res.RIBPoll = append(res.RIBPoll, ribPoll.Sub(t0))
	}
	res.FIB = append(res.FIB, fib.Time.Sub(t0))
	res.WireToParsed = append(res.WireToParsed, lastParsed.Sub(lastWire))
	res.ParsedToRIB = append(res.ParsedToRIB, rib.Time.Sub(lastParsed))
	res.RIBToFIB = append(res.RIBToFIB, fib.Time.Sub(rib.Time))

	// Back up, and wait until every session has the route again.
	am, fm = s.anyLog.Mark(), s.fib.Mark()
	if err := s.lab.SignalProcess(edgeNode, "siteweb", syscall.SIGUSR2); err != nil {
		return err
	}
	up, err := s.fib.WaitRoute(ctx, fm, webVIP, false)
	if err != nil {
		return fmt.Errorf("waiting for the FIB to get %s back: %w", webVIP, err)
	}
	upCheck, err := s.anyLog.Wait(ctx, am, msg("health check changed state", "check", "web", "to", "up"))
	if err != nil {
		return fmt.Errorf("anycastd's check log line: %w", err)
	}
	res.UpFIB = append(res.UpFIB, up.Time.Sub(upCheck.Time))
	return s.waitPaths(ctx, webVIP, s.peers)
}

// labPids are the lab's long-running processes.
func (s *setup) labPids() map[string]int {
	return map[string]int{
		"anycastd": s.lab.Pid(edgeNode, "anycastd"),
		"siteweb":  s.lab.Pid(edgeNode, "siteweb"),
		"bgpd":     s.lab.Pid(routerNode, "bgpd"),
		"zebra":    s.lab.Pid(routerNode, "zebra"),
	}
}

// pollGone polls bgpd over its vty, about every millisecond, until it holds
// no path to p, and sends the time of the first such answer (the zero time
// if ctx ends first).
func (s *setup) pollGone(ctx context.Context, p netip.Prefix) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			n, err := s.vty.paths(s.afi(), p.String())
			if err == nil && n == 0 {
				ch <- time.Now()
				return
			}
			select {
			case <-ctx.Done():
				ch <- time.Time{}
				return
			case <-t.C:
			}
		}
	}()
	return ch
}
