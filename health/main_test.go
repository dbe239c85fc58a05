package health

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/anycastd/anycastd/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it is true, failing the test after timeout. For
// tests on real time (sockets, processes); a synctest bubble uses
// synctest.Wait instead.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// withDefaults returns c with its zero timing fields set as config.Load sets
// them when the file leaves them out: interval 1s, fast_interval interval,
// timeout min(fast_interval/2, 1s), rise 3, fall 3. NewRunner fills in
// nothing, so tests that build a config.Check by hand and leave some of
// them out pass it through here.
func withDefaults(c config.Check) config.Check {
	if c.Interval == 0 {
		c.Interval = config.DefaultCheckInterval
	}
	if c.FastInterval == 0 {
		c.FastInterval = c.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = min(c.FastInterval/2, config.DefaultCheckTimeoutMax)
	}
	if c.Rise == 0 {
		c.Rise = config.DefaultCheckRise
	}
	if c.Fall == 0 {
		c.Fall = config.DefaultCheckFall
	}
	return c
}

// eventLog collects published Events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) publish(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// transitions returns every event as "from>to" ("unknown>up"), in order.
func (l *eventLog) transitions() []string {
	var s []string
	for _, e := range l.get() {
		s = append(s, e.From.String()+">"+e.Status.String())
	}
	return s
}
