package lab

import (
	"fmt"
	"time"
)

// WaitFor calls cond every interval until it returns nil or timeout has
// passed, and returns how long it waited. The error is cond's last one.
func WaitFor(timeout, interval time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("after %v: %w", timeout, err)
		}
		<-t.C
	}
}
