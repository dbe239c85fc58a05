package health

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

func execCheck(name string, interval time.Duration) config.Check {
	return config.Check{Name: name, Type: config.CheckExec, Interval: interval, FastInterval: interval,
		Timeout: interval / 2, Rise: 1, Fall: 1, Exec: &config.ExecCheck{Command: []string{"/bin/true"}}}
}

// A reload restarts only the checks that changed; the others keep their
// state and history.
func TestManagerUpdate(t *testing.T) {
	m := NewManager(nil, nil)
	defer m.Stop()
	a, b, c := execCheck("a", 20*time.Millisecond), execCheck("b", 20*time.Millisecond), execCheck("c", 20*time.Millisecond)
	if err := m.Start(context.Background(), []config.Check{a, b}); err != nil {
		t.Fatal(err)
	}
	history := func(name string) int {
		for _, s := range m.States() {
			if s.Name == name {
				return len(s.History)
			}
		}
		return -1
	}
	waitFor(t, 5*time.Second, func() bool { return history("a") >= 5 && history("b") >= 5 })

	b2 := b
	b2.Interval, b2.FastInterval = 30*time.Millisecond, 30*time.Millisecond
	a.Line = 42 // moved in the file: not a change
	started, stopped, restarted := m.Update([]config.Check{c, a, b2})
	if !slices.Equal(started, []string{"c"}) || stopped != nil || !slices.Equal(restarted, []string{"b"}) {
		t.Errorf("Update: started %v, stopped %v, restarted %v; want [c], [], [b]", started, stopped, restarted)
	}
	if h := history("a"); h < 5 {
		t.Errorf("unchanged check a lost its history (%d results)", h)
	}
	if h := history("b"); h >= 5 {
		t.Errorf("changed check b kept its history (%d results); want a fresh start", h)
	}
	var names []string
	for _, s := range m.States() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"c", "a", "b"}) {
		t.Errorf("checks after reload %v, want the new order [c a b]", names)
	}

	_, stopped, _ = m.Update([]config.Check{c})
	slices.Sort(stopped)
	if !slices.Equal(stopped, []string{"a", "b"}) {
		t.Errorf("stopped %v, want [a b]", stopped)
	}
}
