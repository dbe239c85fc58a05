package health

import (
	"slices"

	"github.com/anycastd/anycastd/config"
)

// Update moves the manager to a new list of checks, as a reload does: a
// check that is gone stops; a new one starts; a changed one (any setting
// but its line in the file) restarts alone, from StatusUnknown; an
// unchanged one keeps running with its state and history. It returns the
// names of the checks started, stopped and restarted. Update must follow
// Start; checks must be as there (defaulted and validated by config.Load).
func (m *Manager) Update(checks []config.Check) (started, stopped, restarted []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return nil, nil, nil
	}
	want := make(map[string]config.Check, len(checks))
	for _, c := range checks {
		want[c.Name] = c
	}
	var waits []<-chan struct{}
	for name, mr := range m.runners {
		c, keep := want[name]
		switch {
		case !keep:
			stopped = append(stopped, name)
		case sameCheck(mr.runner.check, c):
			continue
		default:
			restarted = append(restarted, name)
		}
		mr.cancel()
		waits = append(waits, mr.done)
		delete(m.runners, name)
	}
	// A stopping runner may be publishing; it needs no lock of ours.
	m.mu.Unlock()
	for _, done := range waits {
		<-done
	}
	m.mu.Lock()

	m.order = m.order[:0]
	for _, c := range checks {
		if _, running := m.runners[c.Name]; running {
			m.order = append(m.order, c.Name)
			continue
		}
		ch, err := NewChecker(c)
		if err != nil {
			m.logger.Error("health check cannot start; it fails until it can", "check", c.Name, "err", err)
			ch = newRetryChecker(c)
		}
		m.startLocked(c, ch) // appends to m.order
		if !slices.Contains(restarted, c.Name) {
			started = append(started, c.Name)
		}
	}
	return started, stopped, restarted
}

// sameCheck reports whether two check definitions differ only in their
// line (config.Check.Equal).
func sameCheck(a, b config.Check) bool { return a.Equal(b) }
