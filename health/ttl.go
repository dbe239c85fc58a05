package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/anycastd/anycastd/config"
)

// maxTTLMessage is how much of a report's message is kept (more is cut at
// a rune boundary and marked with "...").
const maxTTLMessage = 1 << 10

// ttlChecker is a push check: it passes while the service's last report
// (Manager.Report) said healthy and came less than ttl ago. A "failing"
// report, or a healthy one that is more than ttl old, is a definite failure;
// before the first report the check fails plainly ("no report yet"). Watch
// wakes the runner when a report changes the outcome and when the deadline
// of the last healthy report passes, so neither waits for the interval.
type ttlChecker struct {
	ttl time.Duration

	mu       sync.Mutex
	reported bool
	healthy  bool
	message  string
	at       time.Time   // of the last report
	timer    *time.Timer // fires at the deadline of a healthy report
	wake     func()      // while Watch runs
	stopped  bool        // Watch has returned: no more timers
}

func newTTLChecker(c config.TTLCheck) *ttlChecker {
	return &ttlChecker{ttl: c.TTL}
}

// Check implements Checker.
func (t *ttlChecker) Check(ctx context.Context) error {
	_, err := t.CheckOutput(ctx)
	return err
}

// CheckOutput implements OutputChecker: the output is the last report's
// message.
func (t *ttlChecker) CheckOutput(context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evalLocked(time.Now())
}

// ttlOutcome classes the outcome of a probe: pass, plain or definite failure.
type ttlOutcome int

const (
	ttlPass ttlOutcome = iota
	ttlFail
	ttlDefinite
)

func (t *ttlChecker) outcomeLocked(now time.Time) ttlOutcome {
	switch {
	case !t.reported:
		return ttlFail
	case !t.healthy || now.Sub(t.at) >= t.ttl:
		return ttlDefinite
	}
	return ttlPass
}

// evalLocked is a probe at now; t.mu must be held.
func (t *ttlChecker) evalLocked(now time.Time) (string, error) {
	switch {
	case !t.reported:
		return "", errors.New("no report yet")
	case !t.healthy && t.message == "":
		return "", Definite(errors.New("reported failing"))
	case !t.healthy:
		return "", Definite(fmt.Errorf("reported failing: %s", t.message))
	case now.Sub(t.at) >= t.ttl:
		return t.message, Definite(fmt.Errorf("no report for %s (ttl %s)",
			now.Sub(t.at).Round(time.Millisecond), t.ttl))
	}
	return t.message, nil
}

// report records a report of the service. It wakes the runner when the
// outcome changes (a failing report always fails the check at once).
func (t *ttlChecker) report(healthy bool, message string) {
	now := time.Now()
	t.mu.Lock()
	before := t.outcomeLocked(now)
	t.reported, t.healthy, t.message, t.at = true, healthy, truncate(message, maxTTLMessage), now
	switch {
	case !healthy && t.timer != nil:
		t.timer.Stop()
	case healthy && !t.stopped && t.timer == nil:
		t.timer = time.AfterFunc(t.ttl, t.expired)
	case healthy && !t.stopped:
		t.timer.Reset(t.ttl)
	}
	wake := t.wake
	changed := t.outcomeLocked(now) != before
	t.mu.Unlock()
	if changed && wake != nil {
		wake()
	}
}

// expired runs when the deadline of a healthy report has passed (or, after
// a race with a new report, a little early: the probe then passes).
func (t *ttlChecker) expired() {
	t.mu.Lock()
	wake := t.wake
	t.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// Watch implements Watcher.
func (t *ttlChecker) Watch(ctx context.Context, wake func()) {
	t.mu.Lock()
	t.wake = wake
	early := t.reported // a report, or its deadline, may have come before Watch
	t.mu.Unlock()
	if early {
		wake()
	}
	<-ctx.Done()
	t.mu.Lock()
	t.wake = nil
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
}
