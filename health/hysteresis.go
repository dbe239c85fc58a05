package health

import (
	"time"

	"github.com/anycastd/anycastd/config"
)

// hysteresis is the rise/fall state machine of one check, a pure value: it
// reads no clock and starts no goroutine. Feed it every probe's outcome with
// observe; it says which Status the check is in, whether that outcome was a
// transition, and how long to wait before the next probe (period).
//
// The rules, in the terms of the [[check]] table:
//   - rise passes in a row take the check up (from unknown or down);
//   - fall failures in a row take it down (from unknown or up);
//   - a definite failure takes it down at once, whatever fall; rise still
//     applies on the way back;
//   - a pass resets the run of failures, a failure the run of passes;
//   - the period is fast_interval while a state change is in doubt (up with
//     at least one failure; down or unknown with at least one pass), else
//     interval. Failures while unknown are not in doubt: unknown already
//     counts as failing.
//
// The zero value is not usable; make one with newHysteresis.
type hysteresis struct {
	rise, fall             int           // ≥ 1
	interval, fastInterval time.Duration // > 0

	status Status
	passes int // consecutive passes; 0 after a failure
	fails  int // consecutive failures; 0 after a pass
}

// newHysteresis returns the state machine of c, in StatusUnknown with no
// probe seen. It takes c's Rise, Fall, Interval and FastInterval as they are:
// config.Load has defaulted and validated them.
func newHysteresis(c config.Check) hysteresis {
	return hysteresis{rise: c.Rise, fall: c.Fall, interval: c.Interval, fastInterval: c.FastInterval}
}

// observe records one probe outcome: passed, or failed (definite: with
// ErrDefinite; ignored when passed). It returns the Status after it, and
// changed when that differs from the Status before it.
func (h *hysteresis) observe(passed, definite bool) (status Status, changed bool) {
	from := h.status
	if passed {
		h.passes++
		h.fails = 0
		if h.passes >= h.rise {
			h.status = StatusUp
		}
	} else {
		h.fails++
		h.passes = 0
		if h.fails >= h.fall || definite {
			h.status = StatusDown
		}
	}
	return h.status, h.status != from
}

// inDoubt reports whether the probes since the last transition point to a
// change that has not happened yet: up with at least one failure, down or
// unknown with at least one pass.
func (h *hysteresis) inDoubt() bool {
	if h.status == StatusUp {
		return h.fails > 0
	}
	return h.passes > 0
}

// period returns how long after the last probe was due the next one is:
// fastInterval while a change is in doubt, else interval.
func (h *hysteresis) period() time.Duration {
	if h.inDoubt() {
		return h.fastInterval
	}
	return h.interval
}
