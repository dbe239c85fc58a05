package health

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/google/go-cmp/cmp"
)

func TestManager(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var events eventLog
	m := NewManager(nil, events.publish)
	// Timeouts far above the interval (config.Load would refuse them) so
	// that a slow machine fails no probe, and "slow" stays in flight.
	const every = 20 * time.Millisecond
	checks := []config.Check{
		{Name: "web", Type: config.CheckTCP, Interval: every, FastInterval: every, Timeout: 5 * time.Second,
			Rise: 1, Fall: 1, TCP: &config.TCPCheck{Address: ln.Addr().String()}},
		{Name: "script", Type: config.CheckExec, Interval: every, FastInterval: every, Timeout: 10 * time.Second,
			Rise: 1, Fall: 2, Exec: &config.ExecCheck{Command: []string{"/bin/false"}}},
		{Name: "slow", Type: config.CheckExec, Interval: every, FastInterval: every, Timeout: time.Minute,
			Rise: 1, Fall: 1, Exec: &config.ExecCheck{Command: []string{"/bin/sleep", "30"}}},
	}
	if err := m.Start(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Start(context.Background(), checks); err == nil {
		t.Error("second Start succeeded")
	}

	waitFor(t, 5*time.Second, func() bool {
		web, _ := m.Status("web")
		script, _ := m.Status("script")
		return web == StatusUp && script == StatusDown
	})
	if s, ok := m.Status("slow"); !ok || s != StatusUnknown {
		t.Errorf("Status(slow) = %v, %v; want unknown, true", s, ok)
	}
	if _, ok := m.Status("nope"); ok {
		t.Error("Status(nope) found")
	}

	var names []string
	for _, st := range m.States() {
		names = append(names, st.Name)
	}
	if diff := cmp.Diff([]string{"web", "script", "slow"}, names); diff != "" {
		t.Errorf("States order (-want +got):\n%s", diff)
	}
	got := map[string]Status{}
	for _, e := range events.get() {
		if _, dup := got[e.Check]; dup {
			t.Errorf("second event for %s: %+v", e.Check, e)
		}
		got[e.Check] = e.Status
	}
	if diff := cmp.Diff(map[string]Status{"web": StatusUp, "script": StatusDown}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Stop returns promptly although "slow" has a probe in flight.
	start := time.Now()
	m.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	m.Stop() // idempotent
	if len(m.States()) != 3 {
		t.Error("States after Stop lost checks")
	}
}

func TestManagerStartError(t *testing.T) {
	// A checker that cannot be built (its ca_file is gone) does not stop
	// the others: its check fails with KindError.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	m := NewManager(nil, nil)
	const every, timeout = 10 * time.Millisecond, 5 * time.Second // no timeout on a slow machine
	err := m.Start(context.Background(), []config.Check{
		{Name: "ok", Type: config.CheckExec, Interval: every, FastInterval: every, Timeout: timeout, Rise: 1, Fall: 1,
			Exec: &config.ExecCheck{Command: []string{"/bin/true"}}},
		{Name: "web", Type: config.CheckTCP, Interval: every, FastInterval: every, Timeout: timeout, Rise: 1, Fall: 1,
			TCP: &config.TCPCheck{Address: "127.0.0.1:1", TLS: &config.TLSClient{CAFile: caFile}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		ok, _ := m.Status("ok")
		web, _ := m.Status("web")
		return ok == StatusUp && web == StatusDown
	})
	m.Stop()
	if res := m.States()[1].History[0]; res.Kind != KindError ||
		res.Err != "cannot run: ca_file: open "+caFile+": no such file or directory" {
		t.Errorf("result %+v", res)
	}

	err = NewManager(nil, nil).Start(context.Background(), []config.Check{
		{Name: "a", Type: config.CheckExec, Exec: &config.ExecCheck{Command: []string{"/bin/true"}}},
		{Name: "a", Type: config.CheckExec, Exec: &config.ExecCheck{Command: []string{"/bin/true"}}},
	})
	if err == nil || err.Error() != `check "a": duplicate name` {
		t.Fatalf("Start error = %v, want duplicate name", err)
	}
}

func TestManagerStopsWithContext(t *testing.T) {
	m := NewManager(nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	err := m.Start(ctx, []config.Check{withDefaults(config.Check{Name: "x", Type: config.CheckExec,
		Interval: 10 * time.Millisecond, Exec: &config.ExecCheck{Command: []string{"/bin/true"}}})})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	m.Stop() // waits for the runners, which have already been told to stop
}
