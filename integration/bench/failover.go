package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// FailoverResult is the end-to-end run: the service process is killed and
// started again, Reps times; check interval 100ms, fall 3, rise 3.
type FailoverResult struct {
	Reps int
	// From the SIGKILL of the service: the check crossed fall (anycastd's
	// log), the route left bgpd's RIB, the route left the kernel FIB.
	Detect, RIB, FIB Sample
	// Overhead: check crossed fall → route gone from the FIB.
	Overhead Sample
	// From the start of the service process: the check crossed rise, the
	// route is back in the kernel FIB.
	UpDetect, UpFIB Sample

	Load Load // over the repetitions
}

func runFailover(ctx context.Context, env *Env, reps int) (*FailoverResult, error) {
	rc := RouterConfig{Peers: 1, Debug: true}
	ec := EdgeConfig{Peers: 1, Interval: 100 * time.Millisecond, Rise: 3, Fall: 3}
	s, err := start(ctx, env, rc, ec, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.settle(ctx, webVIP); err != nil {
		return nil, err
	}
	res := &FailoverResult{Reps: reps}
	load, err := startLoad(s.labPids())
	if err != nil {
		return nil, err
	}
	defer func() { res.Load = load.load() }()
	for i := range reps {
		// Kill at a random phase of the check's 100 ms period.
		time.Sleep(rand.N(100 * time.Millisecond))
		if err := s.failoverOnce(ctx, res); err != nil {
			return nil, fmt.Errorf("repetition %d: %w", i+1, err)
		}
		if i%10 == 9 {
			env.logf("failover: %d/%d", i+1, reps)
		}
	}
	return res, nil
}

func (s *setup) failoverOnce(ctx context.Context, res *FailoverResult) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	am, bm, fm := s.anyLog.Mark(), s.bgpdLog.Mark(), s.fib.Mark()
	killed := time.Now()
	if err := s.lab.KillProcess(edgeNode, "siteweb", syscall.SIGKILL); err != nil {
		return err
	}
	fib, err := s.fib.WaitRoute(ctx, fm, webVIP, true)
	if err != nil {
		return fmt.Errorf("waiting for the FIB to lose %s: %w", webVIP, err)
	}
	check, err := s.anyLog.Wait(ctx, am, msg("health check changed state", "check", "web", "to", "down"))
	if err != nil {
		return fmt.Errorf("anycastd's check log line: %w", err)
	}
	rib, err := s.bgpdLog.Wait(ctx, bm, contains("Tx route delete", " "+webVIP.String()))
	if err != nil {
		return fmt.Errorf("bgpd's route delete line: %w", err)
	}
	res.Detect = append(res.Detect, check.Time.Sub(killed))
	res.RIB = append(res.RIB, rib.Time.Sub(killed))
	res.FIB = append(res.FIB, fib.Time.Sub(killed))
	res.Overhead = append(res.Overhead, fib.Time.Sub(check.Time))

	am, fm = s.anyLog.Mark(), s.fib.Mark()
	started := time.Now()
	if err := s.lab.StartProcess(edgeNode, "siteweb"); err != nil {
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
	res.UpDetect = append(res.UpDetect, upCheck.Time.Sub(started))
	res.UpFIB = append(res.UpFIB, up.Time.Sub(started))
	return s.waitPaths(ctx, webVIP, 1)
}
