package health

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// every Status transition. A definite failure (ErrDefinite) takes the check
// down at once, whatever fall; rise always applies.
//
// Scheduling: the first probe runs after a random jitter in
// [0, min(Interval, 1s)); each later probe is due one period after the
// previous one was due, so lateness does not accumulate. The period is
// FastInterval while a state change is pending (up with at least one
// failure; down or unknown with at least one pass), else Interval. At most
// one probe is in flight: periods that pass while a probe is still running
// are skipped. A Watcher's wake makes a probe due at once (and the schedule
// continues from it); a wake during a probe makes another follow it.
type Runner struct {
	check    config.Check
	checker  Checker
	logger   *slog.Logger
	publish  func(Event)
	observe  func(Result)
	interval time.Duration
	fast     time.Duration
	timeout  time.Duration
	rise     int
	fall     int

	pending bool // a state change is pending; only the probing goroutine uses it

	mu      sync.Mutex // guards the fields below; only the probing goroutine writes them
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
// is logged). publish may be nil; otherwise it is called from the probing
// goroutine (Run's, or a Manager's worker) on every transition, with no lock
// held.
//
// Zero or negative values in c fall back to the config defaults: Interval 1s,
// FastInterval Interval, Timeout min(FastInterval/2, 1s), Rise 3, Fall 3. A
// FastInterval above Interval is cut to Interval. A Timeout not below the
// period is used as is; probes then simply skip periods.
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
		fast:     c.FastInterval,
		timeout:  c.Timeout,
		rise:     c.Rise,
		fall:     c.Fall,
		status:   StatusUnknown,
		since:    time.Now(),
	}
	if r.interval <= 0 {
		r.interval = time.Second
	}
	if r.fast <= 0 || r.fast > r.interval {
		r.fast = r.interval
	}
	if r.timeout <= 0 {
		r.timeout = min(r.fast/2, time.Second)
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

// OnResult sets f to be called from the probing goroutine after every
// recorded probe (not for a probe cut short by a stop), once the state has
// been updated and before a transition is published. f must be cheap and
// must not block: while it runs the check is not probed. Call OnResult
// before Run (or before a Manager schedules the runner).
func (r *Runner) OnResult(f func(Result)) { r.observe = f }

// Run probes until ctx is done and returns then, once the probe in flight
// (if any) has returned; its result is discarded. A Watcher's Watch runs
// alongside and has returned too, and a checker that is an io.Closer has
// been closed. Call Run once. (A Manager does not call Run: its scheduler
// drives all its runners from one goroutine, with the same timing.)
func (r *Runner) Run(ctx context.Context) {
	defer r.closeChecker()
	var woken chan struct{} // nil (never ready) without a Watcher
	if w, ok := r.checker.(Watcher); ok {
		woken = make(chan struct{}, 1)
		wctx, cancel := context.WithCancel(ctx)
		watching := make(chan struct{})
		go func() {
			defer close(watching)
			w.Watch(wctx, func() {
				select {
				case woken <- struct{}{}:
				default:
				}
			})
		}()
		defer func() { cancel(); <-watching }()
	}
	due := r.firstDue(time.Now())
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	for first := true; ; first = false {
		if !first {
			if !r.probeOnce(ctx) {
				return
			}
			now := time.Now()
			due = r.nextDue(due, now)
			timer.Reset(due.Sub(now))
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-woken:
			due = time.Now() // the schedule continues from the woken probe
		}
	}
}

// closeChecker closes the checker if it is an io.Closer. It is called once
// the runner has stopped, with no probe in flight.
func (r *Runner) closeChecker() {
	if c, ok := r.checker.(io.Closer); ok {
		if err := c.Close(); err != nil {
			r.logger.Debug("closing health checker", "check", r.check.Name, "err", err)
		}
	}
}

// firstDue returns when the first probe is due: after a random jitter in
// [0, min(Interval, 1s)) from now.
func (r *Runner) firstDue(now time.Time) time.Time {
	return now.Add(rand.N(min(r.interval, time.Second)))
}

// nextDue returns when the probe after the one due at due is, the probe
// having ended at now: one period later, skipping periods that have passed.
// Only the goroutine that runs the probes may call it.
func (r *Runner) nextDue(due, now time.Time) time.Time {
	period := r.interval
	if r.pending {
		period = r.fast
	}
	due = due.Add(period)
	if !due.After(now) {
		skipped := now.Sub(due)/period + 1
		due = due.Add(skipped * period)
		r.logger.Debug("health probe overran its interval, skipping slots",
			"check", r.check.Name, "skipped", int64(skipped))
	}
	return due
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
	var pe *panicError
	switch {
	// Checkers that put the deadline on a socket (net.Dialer) can fail with
	// their own "i/o timeout" just before pctx itself reports it.
	case !end.Before(deadline) || (err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded)):
		res.Err = "timeout after " + r.timeout.String()
		res.Kind = KindTimeout
	case err != nil:
		res.Err = err.Error()
		if res.Err == "" {
			res.Err = "check failed"
		}
		res.Kind = KindFail
		if errors.Is(err, ErrCannotRun) || errors.As(err, &pe) {
			res.Kind = KindError
		}
		res.Definite = errors.Is(err, ErrDefinite)
	default:
		res.Kind = KindPass
	}
	return res, true
}

// panicError is a checker's panic, turned into an error.
type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("checker panicked: %v", p.v) }

// call invokes the checker, turning a panic into a failure.
func (r *Runner) call(ctx context.Context) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = "", &panicError{p}
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
		if r.fails >= r.fall || res.Definite {
			to = StatusDown
		}
	}
	if to != from {
		r.status = to
		r.since = res.Time.Add(res.Latency)
	}
	r.pending = (to == StatusUp && r.fails > 0) || (to != StatusUp && r.passes > 0)
	lastErr := r.lastErr
	r.mu.Unlock()

	if r.observe != nil {
		r.observe(res)
	}

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
	if res.Definite && to == StatusDown {
		r.logger.Info("health check changed state", "check", r.check.Name,
			"from", from.String(), "to", to.String(), "err", lastErr, "definite", true)
	} else {
		r.logger.Info("health check changed state", "check", r.check.Name,
			"from", from.String(), "to", to.String(), "err", lastErr)
	}
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
