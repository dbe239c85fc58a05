package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anycastd/anycastd/config"
)

// historySize is how many recent Results a Runner keeps.
const historySize = 16

// CheckState is a snapshot of one check as seen by its Runner.
type CheckState struct {
	Name                string
	Type                config.CheckType
	Status              Status
	Since               time.Time // when Status was entered (runner creation for StatusUnknown)
	ConsecutivePasses   int
	ConsecutiveFailures int
	// TotalPasses and TotalFailures count all recorded probes since the
	// runner was created (monotonic, for metrics).
	TotalPasses, TotalFailures uint64
	History                    []Result // the last probes, oldest first, at most 16
}

// Runner drives one Checker for one config.Check: it probes on the check's
// interval with its timeout, counts rise and fall, and publishes an Event on
// every Status transition.
//
// Scheduling: the first probe runs after a random jitter in
// [0, min(Interval, 1s)); later probes run on a fixed grid of Interval from
// the first one, so lateness does not accumulate. At most one probe is in
// flight: grid slots that pass while a probe is still running are skipped.
type Runner struct {
	check    config.Check
	checker  Checker
	logger   *slog.Logger
	publish  func(Event)
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int

	mu      sync.Mutex // guards the fields below; Run is the only writer
	status  Status
	since   time.Time
	passes  int
	fails   int
	lastErr string    // the last failing probe's Err
	total   [2]uint64 // passes, failures
	ring    [historySize]Result
	next    int // index in ring of the next Result
	count   int // Results in ring
}

// NewRunner returns a Runner for c using checker. logger may be nil (nothing
// is logged). publish may be nil; otherwise it is called from the Run
// goroutine on every transition, with no lock held.
//
// Zero or negative values in c fall back to the config defaults: Interval 1s,
// Timeout min(Interval/2, 1s), Rise 3, Fall 3. A Timeout not below Interval
// is used as is; probes then simply skip grid slots.
func NewRunner(c config.Check, checker Checker, logger *slog.Logger, publish func(Event)) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		check:    c,
		checker:  checker,
		logger:   logger,
		publish:  publish,
		interval: c.Interval,
		timeout:  c.Timeout,
		rise:     c.Rise,
		fall:     c.Fall,
		status:   StatusUnknown,
		since:    time.Now(),
	}
	if r.interval <= 0 {
		r.interval = time.Second
	}
	if r.timeout <= 0 {
		r.timeout = min(r.interval/2, time.Second)
	}
	if r.rise <= 0 {
		r.rise = 3
	}
	if r.fall <= 0 {
		r.fall = 3
	}
	return r
}

// Name returns the name of the check.
func (r *Runner) Name() string { return r.check.Name }

// Run probes until ctx is done and returns then, once the probe in flight
// (if any) has returned; its result is discarded. Call Run once.
func (r *Runner) Run(ctx context.Context) {
	jitter := rand.N(min(r.interval, time.Second))
	timer := time.NewTimer(jitter)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}

	// Probe n runs at base + n*interval (the grid); slot is the current n.
	base := time.Now()
	var slot int64
	for {
		if !r.probeOnce(ctx) {
			return
		}
		now := time.Now()
		next := int64(now.Sub(base)/r.interval) + 1 // first grid slot after now
		if skipped := next - slot - 1; skipped > 0 {
			r.logger.Debug("health probe overran its interval, skipping slots",
				"check", r.check.Name, "skipped", skipped)
		}
		slot = next
		timer.Reset(base.Add(time.Duration(slot) * r.interval).Sub(now))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// probeOnce runs one probe and records it. It reports false when ctx ended
// during the probe (the result is then discarded).
func (r *Runner) probeOnce(ctx context.Context) bool {
	res, ok := r.probe(ctx)
	if !ok {
		return false
	}
	r.record(res)
	return true
}

// probe runs the checker once under the check's timeout. ok is false when
// ctx (not the probe timeout) ended meanwhile. A probe that ran into its
// timeout fails with "timeout after <Timeout>" whatever the checker returned:
// a pass that came too late is not a pass.
func (r *Runner) probe(ctx context.Context) (res Result, ok bool) {
	res.Time = time.Now()
	pctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	out, err := r.call(pctx)
	end := time.Now()
	res.Latency = end.Sub(res.Time)
	if ctx.Err() != nil {
		return Result{}, false
	}
	res.Output = out
	deadline, _ := pctx.Deadline()
	switch {
	// Checkers that put the deadline on a socket (net.Dialer) can fail with
	// their own "i/o timeout" just before pctx itself reports it.
	case !end.Before(deadline) || (err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded)):
		res.Err = "timeout after " + r.timeout.String()
	case err != nil:
		res.Err = err.Error()
		if res.Err == "" {
			res.Err = "check failed"
		}
	}
	return res, true
}

// call invokes the checker, turning a panic into a failure.
func (r *Runner) call(ctx context.Context) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("checker panicked: %v", p)
		}
	}()
	if oc, ok := r.checker.(OutputChecker); ok {
		return oc.CheckOutput(ctx)
	}
	return "", r.checker.Check(ctx)
}

// record adds res to the history, updates the counters and, on a
// transition, logs and publishes it.
func (r *Runner) record(res Result) {
	r.mu.Lock()
	r.ring[r.next] = res
	r.next = (r.next + 1) % historySize
	r.count = min(r.count+1, historySize)

	from := r.status
	to := from
	if res.Passed() {
		r.total[0]++
		r.passes++
		r.fails = 0
		if r.passes >= r.rise {
			to = StatusUp
		}
	} else {
		r.total[1]++
		r.fails++
		r.passes = 0
		r.lastErr = res.Err
		if r.fails >= r.fall {
			to = StatusDown
		}
	}
	if to != from {
		r.status = to
		r.since = res.Time.Add(res.Latency)
	}
	lastErr := r.lastErr
	r.mu.Unlock()

	if to == from {
		if res.Passed() {
			r.logger.Debug("health probe passed", "check", r.check.Name,
				"latency", res.Latency)
		} else {
			r.logger.Debug("health probe failed", "check", r.check.Name,
				"latency", res.Latency, "err", res.Err)
		}
		return
	}
	r.logger.Info("health check changed state", "check", r.check.Name,
		"from", from.String(), "to", to.String(), "err", lastErr)
	if r.publish != nil {
		r.publish(Event{Check: r.check.Name, Status: to, Last: res})
	}
}

// Status returns the current Status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// State returns a snapshot of the check's state.
func (r *Runner) State() CheckState {
	r.mu.Lock()
	defer r.mu.Unlock()
	hist := make([]Result, 0, r.count)
	for i := range r.count {
		hist = append(hist, r.ring[(r.next-r.count+i+historySize)%historySize])
	}
	return CheckState{
		Name:                r.check.Name,
		Type:                r.check.Type,
		Status:              r.status,
		Since:               r.since,
		ConsecutivePasses:   r.passes,
		ConsecutiveFailures: r.fails,
		TotalPasses:         r.total[0],
		TotalFailures:       r.total[1],
		History:             hist,
	}
}
