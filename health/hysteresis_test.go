package health

import (
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

func TestHysteresis(t *testing.T) {
	const slow, fast = time.Second, 100 * time.Millisecond
	const (
		pass hysteresisInput = iota
		fail
		definite // a failure with ErrDefinite
	)
	// step is one probe outcome and what the state machine must say after it.
	type step struct {
		in      hysteresisInput
		status  Status
		changed bool
		period  time.Duration
	}
	var (
		unknown, up, down = StatusUnknown, StatusUp, StatusDown
		// Three passes take a rise-3 check up from unknown.
		riseFromUnknown = []step{
			{pass, unknown, false, fast},
			{pass, unknown, false, fast},
			{pass, up, true, slow},
		}
	)
	for _, tc := range []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"rise from unknown", 3, 3, riseFromUnknown},
		{"fall from unknown", 3, 3, []step{
			// Unknown already counts as failing: no doubt, no fast_interval.
			{fail, unknown, false, slow},
			{fail, unknown, false, slow},
			{fail, down, true, slow},
			{fail, down, false, slow},
		}},
		{"fall from up, fast_interval until the transition", 3, 3, append(riseFromUnknown[:3:3],
			step{pass, up, false, slow},
			step{fail, up, false, fast},
			step{fail, up, false, fast},
			step{fail, down, true, slow},
			step{fail, down, false, slow},
		)},
		{"rise from down, fast_interval until the transition", 2, 1, []step{
			{fail, down, true, slow},
			{pass, down, false, fast},
			{pass, up, true, slow},
			{pass, up, false, slow},
		}},
		{"definite failure skips fall", 2, 3, []step{
			{pass, unknown, false, fast},
			{pass, up, true, slow},
			{fail, up, false, fast},
			{definite, down, true, slow},
			{definite, down, false, slow},
		}},
		{"definite failure from unknown", 3, 3, []step{
			{pass, unknown, false, fast},
			{definite, down, true, slow},
		}},
		{"rise applies again after a definite failure", 3, 3, []step{
			{definite, down, true, slow},
			{pass, down, false, fast},
			{pass, down, false, fast},
			{pass, up, true, slow},
		}},
		{"a pass resets the failures", 3, 3, append(riseFromUnknown[:3:3],
			step{fail, up, false, fast},
			step{fail, up, false, fast},
			step{pass, up, false, slow}, // no longer in doubt
			step{fail, up, false, fast},
			step{fail, up, false, fast},
			step{fail, down, true, slow},
		)},
		{"a failure resets the passes", 3, 3, []step{
			{pass, unknown, false, fast},
			{pass, unknown, false, fast},
			{fail, unknown, false, slow},
			{pass, unknown, false, fast},
			{pass, unknown, false, fast},
			{pass, up, true, slow},
		}},
		{"rise 1, fall 1", 1, 1, []step{
			{pass, up, true, slow},
			{pass, up, false, slow},
			{fail, down, true, slow},
			{fail, down, false, slow},
			{pass, up, true, slow},
			{definite, down, true, slow},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHysteresis(config.Check{Interval: slow, FastInterval: fast, Rise: tc.rise, Fall: tc.fall})
			if h.status != StatusUnknown || h.period() != slow {
				t.Fatalf("new: %v with period %v, want unknown with %v", h.status, h.period(), slow)
			}
			for i, s := range tc.steps {
				status, changed := h.observe(s.in == pass, s.in == definite)
				if status != s.status || changed != s.changed || h.period() != s.period {
					t.Fatalf("step %d (%v): %v, changed %v, period %v; want %v, changed %v, period %v",
						i+1, s.in, status, changed, h.period(), s.status, s.changed, s.period)
				}
			}
		})
	}
}

// hysteresisInput is a probe outcome in TestHysteresis.
type hysteresisInput int

func (in hysteresisInput) String() string {
	return [...]string{"pass", "fail", "definite failure"}[in]
}
