package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
)

func ttlCheck(name string, ttl time.Duration) config.Check {
	// An interval far above the ttl: only reports and deadlines drive it.
	return config.Check{Name: name, Type: config.CheckTTL, Interval: time.Minute, FastInterval: 20 * time.Millisecond,
		Timeout: 10 * time.Millisecond, Rise: 2, Fall: 3, TTL: &config.TTLCheck{TTL: ttl}}
}

func TestTTLCheck(t *testing.T) {
	const ttl = 300 * time.Millisecond
	m, tl := startManager(t, ttlCheck("hb", ttl))

	if err := m.Report("hb", true, "all good"); err != nil {
		t.Fatal(err)
	}
	ev := tl.next(t, StatusUp, 2*time.Second)
	if ev.Last.Output != "all good" {
		t.Errorf("output %q", ev.Last.Output)
	}

	// Reports within the ttl keep it up.
	for range 10 {
		time.Sleep(ttl / 4)
		if err := m.Report("hb", true, ""); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-tl.events:
		t.Fatalf("event %+v while reports kept coming", ev)
	default:
	}

	// Silence: down once the deadline of the last report passes.
	last := time.Now()
	if err := m.Report("hb", true, ""); err != nil {
		t.Fatal(err)
	}
	mark := tl.mark()
	ev = tl.next(t, StatusDown, 2*time.Second)
	if d := time.Since(last); d < ttl || d > ttl+200*time.Millisecond {
		t.Errorf("down %v after the last report, want just after the ttl %v", d, ttl)
	}
	if !ev.Last.Definite || !strings.HasPrefix(ev.Last.Err, "no report for 3") ||
		!strings.HasSuffix(ev.Last.Err, "ms (ttl 300ms)") {
		t.Errorf("down event result %+v", ev.Last)
	}
	if diff := cmp.Diff([]string{"fail!", "down"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after silence (-want +got):\n%s", diff)
	}

	// Back up after rise (2) probes; "failing" takes it down at once.
	mark = tl.mark()
	if err := m.Report("hb", true, ""); err != nil {
		t.Fatal(err)
	}
	tl.next(t, StatusUp, 2*time.Second)
	if diff := cmp.Diff([]string{"pass", "pass", "up"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after a report (-want +got):\n%s", diff)
	}
	mark = tl.mark()
	start := time.Now()
	if err := m.Report("hb", false, "database unreachable"); err != nil {
		t.Fatal(err)
	}
	ev = tl.next(t, StatusDown, time.Second)
	t.Logf("failing report -> down event: %v", time.Since(start))
	if ev.Last.Err != "reported failing: database unreachable" || !ev.Last.Definite {
		t.Errorf("down event result %+v", ev.Last)
	}
	if diff := cmp.Diff([]string{"fail!", "down"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after failing (-want +got):\n%s", diff)
	}
}

func TestTTLCheckBeforeFirstReport(t *testing.T) {
	c := ttlCheck("hb", time.Second)
	c.Interval, c.FastInterval = 20*time.Millisecond, 20*time.Millisecond
	_, tl := startManager(t, c)
	// Not definite: down after fall (3) failures.
	ev := tl.next(t, StatusDown, 2*time.Second)
	if ev.Last.Err != "no report yet" || ev.Last.Definite {
		t.Errorf("down event result %+v", ev.Last)
	}
	if diff := cmp.Diff([]string{"fail", "fail", "fail", "down"}, tl.since(0)); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestReportErrors(t *testing.T) {
	m, _ := startManager(t, ttlCheck("hb", time.Second),
		config.Check{Name: "script", Type: config.CheckExec, Interval: time.Minute, FastInterval: time.Minute,
			Timeout: time.Second, Rise: 3, Fall: 3, Exec: &config.ExecCheck{Command: []string{"/bin/true"}}})
	err := m.Report("nope", true, "")
	if !errors.Is(err, ErrUnknownCheck) || err.Error() != `unknown check "nope"` {
		t.Errorf("Report(nope) = %v", err)
	}
	err = m.Report("script", true, "")
	if !errors.Is(err, ErrNotTTL) || err.Error() != `check "script" is of type exec: not a ttl check` {
		t.Errorf("Report(script) = %v", err)
	}
	if err := m.Report("hb", false, strings.Repeat("é", 1000)); err != nil {
		t.Errorf("Report(hb) = %v", err)
	}
	if err := NewManager(nil, nil).Report("hb", true, ""); !errors.Is(err, ErrUnknownCheck) {
		t.Errorf("Report before Start = %v", err)
	}
}

// A report's message is kept up to maxTTLMessage bytes.
func TestTTLMessageCapped(t *testing.T) {
	c := newTTLChecker(config.TTLCheck{TTL: time.Minute})
	c.report(true, "short")
	if out, err := c.CheckOutput(context.Background()); out != "short" || err != nil {
		t.Errorf("output %q, %v", out, err)
	}
	c.report(true, strings.Repeat("é", 1000)) // 2000 bytes
	out, err := c.CheckOutput(context.Background())
	if want := strings.Repeat("é", maxTTLMessage/2) + "..."; out != want || err != nil {
		t.Errorf("output of %d bytes (%v), want %d", len(out), err, len(want))
	}
}
