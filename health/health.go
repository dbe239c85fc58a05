// Package health runs health checks and publishes their state changes.
//
// A Checker performs one probe. A Runner keeps the state of one Checker: it
// runs its probes with the check's timeout, counts rise and fall and
// publishes an Event on every state transition. A Manager owns the runners
// of a whole configuration and schedules all their probes, on each check's
// interval or fast_interval.
//
// The process, listen and ttl checks see definite failures (ErrDefinite),
// which skip fall; process and ttl checks are also Watchers, which make a
// probe due the moment the kernel or the service says something changed.
package health

import (
	"context"
	"errors"
	"time"
)

// ErrCannotRun marks an error of a probe that could not even be run: a
// missing binary, a TLS setting or a URL that cannot be used, a query that
// cannot be packed. Checkers wrap it (fmt.Errorf("%w: ...", ErrCannotRun))
// and the Runner records such a result with KindError. It still counts as a
// failure.
var ErrCannotRun = errors.New("cannot run")

// ErrDefinite marks a failure that is certain rather than suspected: the
// process has exited, the listener is gone, the service reported itself
// failing. The Runner then takes the check down at once instead of waiting
// for `fall` failures in a row (rise still applies on the way back). Wrap it
// with fmt.Errorf("%w: ...", ErrDefinite) or use Definite.
var ErrDefinite = errors.New("definite failure")

// Definite returns err marked as a definite failure: its message is err's,
// and errors.Is(Definite(err), ErrDefinite) holds. Definite(nil) is nil.
func Definite(err error) error {
	if err == nil {
		return nil
	}
	return definiteError{err}
}

type definiteError struct{ err error }

func (e definiteError) Error() string   { return e.err.Error() }
func (e definiteError) Unwrap() []error { return []error{e.err, ErrDefinite} }

// Errors of Manager.Report.
var (
	ErrUnknownCheck = errors.New("unknown check")
	ErrNotTTL       = errors.New("not a ttl check")
)

// Checker performs one probe. It returns nil when the check passes and an
// error that says why when it fails. It must return promptly once ctx is done.
// A Checker that also implements io.Closer is closed once its runner has
// stopped and no probe of it is in flight.
type Checker interface {
	Check(ctx context.Context) error
}

// OutputChecker is a Checker that also reports what the probe printed. The
// Runner prefers CheckOutput over Check when a Checker implements it, and
// keeps the output in Result.Output.
type OutputChecker interface {
	Checker
	CheckOutput(ctx context.Context) (output string, err error)
}

// Watcher is a Checker that learns between probes, from the kernel or from
// the service, that its outcome may have changed (a watched process exited,
// a deadline passed, a report arrived). The Manager runs Watch in a
// goroutine of its own for as long as it runs the check; every call of wake
// makes the next probe due at once (if a probe is in flight, another one
// follows it at once), so a failure the kernel knows of is acted on without
// waiting for the interval. wake never blocks and may be called from any
// goroutine, any number of times; a spurious call costs one probe. Watch
// must return promptly once ctx is done, and must not hold a lock that Check
// or Close takes while it calls wake.
type Watcher interface {
	Checker
	Watch(ctx context.Context, wake func())
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) error

// Check implements Checker.
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// Status is the state of a check as seen by the runner.
type Status int

const (
	// StatusUnknown: not yet risen nor fallen. Treated as failing: nothing is
	// announced before its checks have passed `rise` times.
	StatusUnknown Status = iota
	StatusUp
	StatusDown
)

func (s Status) String() string {
	switch s {
	case StatusUp:
		return "up"
	case StatusDown:
		return "down"
	default:
		return "unknown"
	}
}

// Passing reports whether s counts as passing.
func (s Status) Passing() bool { return s == StatusUp }

// Result is the outcome of one probe.
type Result struct {
	Time    time.Time     // when the probe started
	Latency time.Duration // how long it took
	Err     string        // empty when it passed; "timeout after 500ms" on timeout
	// Kind classifies the result. The Runner always sets it; a zero Kind
	// (a Result made elsewhere) is read from Err by Outcome.
	Kind Kind
	// Output is what the probe printed, if the checker reports any (exec
	// checks: the first 4 KiB of combined stdout and stderr).
	Output string
	// Definite is set on a failure the checker was certain of (ErrDefinite):
	// the check went down at once, without waiting for fall.
	Definite bool
}

// Kind classifies a probe's Result.
type Kind uint8

const (
	KindPass    Kind = iota + 1 // the check passed
	KindFail                    // the check ran and failed
	KindTimeout                 // the probe ran into its timeout
	KindError                   // the check could not even run (ErrCannotRun, a panic)
)

// String returns "pass", "fail", "timeout" or "error" ("" for the zero Kind).
func (k Kind) String() string {
	switch k {
	case KindPass:
		return "pass"
	case KindFail:
		return "fail"
	case KindTimeout:
		return "timeout"
	case KindError:
		return "error"
	}
	return ""
}

// Passed reports whether the probe passed.
func (r Result) Passed() bool { return r.Err == "" }

// Outcome returns "pass", "fail", "timeout" or "error" (the check could not
// even run). Only "pass" counts as passing.
func (r Result) Outcome() string {
	if r.Kind != 0 {
		return r.Kind.String()
	}
	if r.Passed() {
		return "pass"
	}
	return "fail"
}

// Event is published when a check changes Status: from From to Status,
// which always differ.
type Event struct {
	Check string
	// From is the Status the check left: StatusUnknown for its first
	// transition (after a start or a restart on reload), else StatusUp or
	// StatusDown.
	From   Status
	Status Status // the Status the check entered: StatusUp or StatusDown
	Last   Result // the probe that caused the transition
}
