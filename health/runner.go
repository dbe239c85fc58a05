package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/anycastd/anycastd/config"
)

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

// Runner keeps the state of one Checker for one config.Check: it runs
// probes with the check's timeout, counts rise and fall (see hysteresis),
// keeps the last results and publishes an Event on every Status transition.
// A definite failure (ErrDefinite) takes the check down at once, whatever
// fall; rise always applies.
//
// A Runner does not schedule its own probes: a Manager's scheduler does, on
// the check's interval or fast_interval (see Manager), one probe at a time.
type Runner struct {
	check   config.Check
	checker Checker
	logger  *slog.Logger
	publish func(Event)
	observe func(Result)

	// byDeadline is checker as a deadlineChecker when it takes the probe's
	// deadline as an argument; nil otherwise.
	byDeadline deadlineChecker

	mu    sync.Mutex // guards the fields below; only the probing goroutine writes them
	hyst  hysteresis // status, consecutive passes and failures
	since time.Time
	total [2]uint64 // passes, failures
	hist  history
}

// deadlineChecker is a Checker that takes the probe's deadline as an
// argument instead of from its context: the Runner then calls checkBy with
// the runner's own context (whose end must still stop the probe), which
// saves a context.WithTimeout and its timer on every probe.
type deadlineChecker interface {
	Checker
	// takesDeadline reports whether checkBy is to be used; when false, the
	// Runner calls Check under a context with the timeout.
	takesDeadline() bool
	// checkBy runs one probe that must end by deadline (zero: none). A
	// probe cut short by the deadline returns an error that wraps
	// os.ErrDeadlineExceeded.
	checkBy(ctx context.Context, deadline time.Time) error
}

// NewRunner returns a Runner for c using checker, in StatusUnknown. logger
// may be nil (nothing is logged). publish may be nil; otherwise it is called
// from the probing goroutine (a Manager's worker) on every transition, with
// no lock held.
//
// c's timing is used as it is, as config.Load defaults and validates it
// (Interval ≥ FastInterval > Timeout > 0; Rise and Fall ≥ 1): NewRunner
// fills in no defaults. It panics if Interval, FastInterval or Timeout is
// not positive, or Rise or Fall is below 1, naming the check.
func NewRunner(c config.Check, checker Checker, logger *slog.Logger, publish func(Event)) *Runner {
	if c.Interval <= 0 || c.FastInterval <= 0 || c.Timeout <= 0 || c.Rise < 1 || c.Fall < 1 {
		panic(fmt.Sprintf("health: check %q has no valid timing (interval %v, fast_interval %v, "+
			"timeout %v, rise %d, fall %d): config.Load sets and validates them",
			c.Name, c.Interval, c.FastInterval, c.Timeout, c.Rise, c.Fall))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		check:   c,
		checker: checker,
		logger:  logger,
		publish: publish,
		hyst:    newHysteresis(c),
		since:   time.Now(),
	}
	if dc, ok := checker.(deadlineChecker); ok && dc.takesDeadline() {
		r.byDeadline = dc
	}
	return r
}

// Name returns the name of the check.
func (r *Runner) Name() string { return r.check.Name }

// OnResult sets f to be called from the probing goroutine after every
// recorded probe (not for a probe cut short by a stop), once the state has
// been updated and before a transition is published. f must be cheap and
// must not block: while it runs the check is not probed. Call OnResult
// before the runner is scheduled.
func (r *Runner) OnResult(f func(Result)) { r.observe = f }

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
	return now.Add(rand.N(min(r.check.Interval, time.Second)))
}

// nextDue returns when the probe after the one due at due is, the probe
// having ended at now: one period (FastInterval while a state change is in
// doubt, else Interval) after due, skipping periods that have passed.
func (r *Runner) nextDue(due, now time.Time) time.Time {
	r.mu.Lock()
	period := r.hyst.period()
	r.mu.Unlock()
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
//
// Result.Time carries no monotonic clock reading and Result.Latency is
// truncated to the microsecond, as the history keeps them (see history).
func (r *Runner) probe(ctx context.Context) (res Result, ok bool) {
	start := time.Now()
	deadline := start.Add(r.check.Timeout)
	var out string
	var err error
	var timedOut bool
	if r.byDeadline != nil {
		err = r.callBy(ctx, deadline)
		timedOut = err != nil && errors.Is(err, os.ErrDeadlineExceeded)
	} else {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		out, err = r.call(pctx)
		cancel()
		// Checkers that put the deadline on a socket (net.Dialer) can fail with
		// their own "i/o timeout" just before pctx itself reports it.
		timedOut = err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded)
	}
	end := time.Now()
	if ctx.Err() != nil {
		return Result{}, false
	}
	res.Time = start.Round(0)
	res.Latency = end.Sub(start).Truncate(time.Microsecond)
	res.Output = out
	switch {
	case timedOut || !end.Before(deadline):
		res.Err = "timeout after " + r.check.Timeout.String()
		res.Kind = KindTimeout
	case err != nil:
		res.Err = err.Error()
		if res.Err == "" {
			res.Err = "check failed"
		}
		res.Kind = KindFail
		if pe := (*panicError)(nil); errors.Is(err, ErrCannotRun) || errors.As(err, &pe) {
			res.Kind = KindError
		}
		res.Definite = errors.Is(err, ErrDefinite)
	default:
		res.Kind = KindPass
	}
	return res, true
}

// callBy invokes r.byDeadline, turning a panic into a failure.
func (r *Runner) callBy(ctx context.Context, deadline time.Time) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{p}
		}
	}()
	return r.byDeadline.checkBy(ctx, deadline)
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
	r.hist.add(res)

	from := r.hyst.status
	to, changed := r.hyst.observe(res.Passed(), res.Definite)
	if res.Passed() {
		r.total[0]++
	} else {
		r.total[1]++
	}
	if changed {
		r.since = res.Time.Add(res.Latency)
	}
	r.mu.Unlock()

	if r.observe != nil {
		r.observe(res)
	}

	if !changed {
		if !r.logger.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		if res.Passed() {
			r.logger.Debug("health probe passed", "check", r.check.Name,
				"latency", res.Latency)
		} else {
			r.logger.Debug("health probe failed", "check", r.check.Name,
				"latency", res.Latency, "err", res.Err)
		}
		return
	}
	attrs := []any{"check", r.check.Name, "from", from.String(), "to", to.String()}
	switch {
	case to == StatusUp:
		// Risen: the failure before it is history, not the reason.
	case res.Definite:
		attrs = append(attrs, "err", res.Err, "definite", true)
	default:
		attrs = append(attrs, "err", res.Err)
	}
	r.logger.Info("health check changed state", attrs...)
	if r.publish != nil {
		r.publish(Event{Check: r.check.Name, From: from, Status: to, Last: res})
	}
}

// Status returns the current Status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hyst.status
}

// State returns a snapshot of the check's state.
func (r *Runner) State() CheckState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return CheckState{
		Name:                r.check.Name,
		Type:                r.check.Type,
		Status:              r.hyst.status,
		Since:               r.since,
		ConsecutivePasses:   r.hyst.passes,
		ConsecutiveFailures: r.hyst.fails,
		TotalPasses:         r.total[0],
		TotalFailures:       r.total[1],
		History:             r.hist.results(),
	}
}
