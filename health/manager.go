package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/anycastd/anycastd/config"
)

// Manager owns the Runners of a configuration's checks.
//
// Each runner has its own goroutine and cancel func and is kept by name, so
// single checks can later be replaced, added or removed on reload without
// touching the others.
type Manager struct {
	logger  *slog.Logger
	publish func(Event)

	mu      sync.Mutex
	ctx     context.Context // parent of all runner contexts; nil before Start
	cancel  context.CancelFunc
	order   []string // check names in config order
	runners map[string]*managedRunner
	wg      sync.WaitGroup
}

// managedRunner is one running Runner. A reload can stop it alone with
// cancel and wait for done.
type managedRunner struct {
	runner *Runner
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
}

// NewManager returns a Manager that logs to logger (nil: discard) and calls
// publish on every Status transition of any check.
//
// publish is called from the runners' goroutines, concurrently for different
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

// Start builds a Checker for every check, then starts one Runner goroutine
// per check. If any checker cannot be built, nothing is started and the
// error names the check (`check "web": ...`). Runners stop when ctx is done
// or on Stop. Start may be called only once.
func (m *Manager) Start(ctx context.Context, checks []config.Check) error {
	checkers := make([]Checker, len(checks))
	seen := make(map[string]bool, len(checks))
	for i, c := range checks {
		if seen[c.Name] {
			return fmt.Errorf("check %q: duplicate name", c.Name)
		}
		seen[c.Name] = true
		ch, err := NewChecker(c)
		if err != nil {
			return fmt.Errorf("check %q: %w", c.Name, err)
		}
		checkers[i] = ch
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx != nil {
		return errors.New("health manager already started")
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
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
		done:   make(chan struct{}),
	}
	m.order = append(m.order, c.Name)
	m.runners[c.Name] = mr
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(mr.done)
		mr.runner.Run(rctx)
	}()
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
	m.mu.Unlock()
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
