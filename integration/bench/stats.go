package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Sample is a set of durations measured over repetitions.
type Sample []time.Duration

// Quantile returns the q-quantile (0..1) by the nearest-rank method: p99 of
// 100 values is the 99th smallest, of 50 values the largest.
func (s Sample) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[min(max(i, 0), len(v)-1)]
}

// Max returns the largest value.
func (s Sample) Max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// row formats "p50 p99 max" for a table.
func (s Sample) row() string {
	if len(s) == 0 {
		return fmt.Sprintf("%9s %9s %9s", "-", "-", "-")
	}
	return fmt.Sprintf("%9s %9s %9s", fmtDur(s.Quantile(0.5)), fmtDur(s.Quantile(0.99)), fmtDur(s.Max()))
}

// fmtDur prints milliseconds with a precision that suits the value.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case math.Abs(ms) < 10:
		return fmt.Sprintf("%.2fms", ms)
	case math.Abs(ms) < 1000:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
}
