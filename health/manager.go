package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/anycastd/anycastd/config"
)

// Manager owns the Runners of a configuration's checks and schedules their
// probes.
//
// A check's first probe runs after a random jitter in [0, min(interval,
// 1s)), so that checks started together do not probe together. Each later
// probe is due one period after the previous one was due, so lateness does
// not accumulate. The period is fast_interval while a state change is in
// doubt (up with at least one failure; down or unknown with at least one
// pass), else interval. At most one probe per check is in flight: periods
// that pass while a probe is still running are skipped. A Watcher's wake
// makes a probe due at once (and the schedule continues from it); a wake
// during a probe makes another follow it.
//
// One scheduler goroutine keeps the due times of all checks; probes run on
// a pool of worker goroutines. Each runner has its own cancel func and is
// kept by name, so single checks can be replaced, added or removed on reload
// (Update) without touching the others. Checks run whether or not a VIP uses
// them.
type Manager struct {
	logger   *slog.Logger
	publish  func(Event)
	observer atomic.Pointer[ResultObserver]

	mu      sync.Mutex
	ctx     context.Context // parent of all runner contexts; nil before Start
	cancel  context.CancelFunc
	sched   *scheduler
	order   []string // check names in config order
	runners map[string]*managedRunner
	wg      sync.WaitGroup // the scheduler's goroutine
}

// managedRunner is one running Runner. A reload can stop it alone with
// cancel and wait for done.
type managedRunner struct {
	runner *Runner
	cancel context.CancelFunc
	done   <-chan struct{} // closed once stopped, with no probe in flight
}

// NewManager returns a Manager that logs to logger (nil: discard) and calls
// publish on every Status transition of any check.
//
// publish is called from the probes' goroutines, concurrently for different
// checks, in transition order for any one check. It may block briefly (a
// channel send that also selects on the caller's own context is the intended
// use): while it blocks, that check is not probed. It must not call back into
// the Manager's Stop. publish may be nil.
func NewManager(logger *slog.Logger, publish func(Event)) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{logger: logger, publish: publish, runners: make(map[string]*managedRunner)}
}

// ResultObserver is told about every probe result of every check: the
// check's name and type, and the Result.
type ResultObserver func(check string, typ config.CheckType, r Result)

// OnResult sets f (nil: none) to be called after every probe of every check,
// for metrics. It is called from the probes' goroutines, concurrently for
// different checks, in probe order for any one check, once the check's state
// has been updated. f must be cheap and must not block (no channel send that
// can wait, no I/O): while it runs, that check is not probed. OnResult may be
// called before or after Start.
func (m *Manager) OnResult(f ResultObserver) {
	if f == nil {
		m.observer.Store(nil)
		return
	}
	m.observer.Store(&f)
}

// Start builds a Checker and a Runner for every check and schedules them.
// checks must be as config.Load returns them, defaulted and validated:
// Start fills in no defaults, and panics (in NewRunner) on a check without
// valid timing. A check whose Checker cannot be built (a TLS file that went
// away since the config was loaded, say) still gets a runner: its probes try
// again to build it and fail, with KindError, until that works. Start fails
// only on duplicate names, naming the check (`check "web": ...`), and then
// starts nothing. Runners stop when ctx is done or on Stop. Start may be
// called only once.
func (m *Manager) Start(ctx context.Context, checks []config.Check) error {
	checkers := make([]Checker, len(checks))
	seen := make(map[string]bool, len(checks))
	for _, c := range checks {
		if seen[c.Name] {
			return fmt.Errorf("check %q: duplicate name", c.Name)
		}
		seen[c.Name] = true
	}
	for i, c := range checks {
		ch, err := NewChecker(c)
		if err != nil {
			m.logger.Error("health check cannot start; it fails until it can", "check", c.Name, "err", err)
			ch = newRetryChecker(c)
		}
		checkers[i] = ch
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx != nil {
		return errors.New("health manager already started")
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.sched = newScheduler()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sched.run(m.ctx)
	}()
	for i, c := range checks {
		m.startLocked(c, checkers[i])
	}
	return nil
}

// startLocked starts a runner for c and records it. m.mu must be held.
func (m *Manager) startLocked(c config.Check, checker Checker) {
	rctx, cancel := context.WithCancel(m.ctx)
	mr := &managedRunner{
		runner: NewRunner(c, checker, m.logger, m.publish),
		cancel: cancel,
	}
	name, typ := c.Name, c.Type
	mr.runner.OnResult(func(r Result) {
		if f := m.observer.Load(); f != nil {
			(*f)(name, typ, r)
		}
	})
	m.order = append(m.order, c.Name)
	m.runners[c.Name] = mr
	mr.done = m.sched.add(rctx, mr.runner)
}

// Stop cancels all runners and waits until they have returned, including
// any probe in flight. It is safe to call more than once, and before Start.
func (m *Manager) Stop() {
	m.mu.Lock()
	for _, mr := range m.runners {
		mr.cancel()
	}
	if m.cancel != nil {
		m.cancel()
	}
	runners := slices.Collect(maps.Values(m.runners))
	m.mu.Unlock()
	for _, mr := range runners {
		<-mr.done
	}
	m.wg.Wait()
}

// States returns a snapshot of every check, in config order.
func (m *Manager) States() []CheckState {
	m.mu.Lock()
	defer m.mu.Unlock()
	states := make([]CheckState, 0, len(m.order))
	for _, name := range m.order {
		states = append(states, m.runners[name].runner.State())
	}
	return states
}

// Status returns the Status of the check named name, and false if there is
// no such check.
func (m *Manager) Status(name string) (Status, bool) {
	m.mu.Lock()
	mr, ok := m.runners[name]
	m.mu.Unlock()
	if !ok {
		return StatusUnknown, false
	}
	return mr.runner.Status(), true
}

// Report records a report of the service guarded by the ttl check named
// check: healthy or failing, with a message (kept in the probe's Output, or
// in its error when failing; at most 1 KiB). A healthy report keeps the
// check passing for its ttl; a failing one, or a missed deadline, takes it
// down at once. Rise applies on the way back. The error wraps
// ErrUnknownCheck or ErrNotTTL.
func (m *Manager) Report(check string, healthy bool, message string) error {
	m.mu.Lock()
	mr, ok := m.runners[check]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownCheck, check)
	}
	t, ok := mr.runner.checker.(*ttlChecker)
	if !ok {
		return fmt.Errorf("check %q is of type %s: %w", check, mr.runner.check.Type, ErrNotTTL)
	}
	t.report(healthy, message)
	m.logger.Debug("health report", "check", check, "healthy", healthy, "message", message)
	return nil
}
