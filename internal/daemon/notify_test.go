package daemon

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycastd/anycastd/internal/testutil"
)

// TestWatchdogFedOnlyWhileTheLoopBeats: WATCHDOG=1 is sent while the
// announcer loop's heartbeat moves, stops once it is stuck (so systemd
// restarts a wedged loop), with one warning in the log, and resumes if the
// loop runs again.
func TestWatchdogFedOnlyWhileTheLoopBeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var fed []time.Time // when WATCHDOG=1 was sent
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(fed)
		}
		var beat atomic.Int64
		var wedged atomic.Bool
		loop := time.NewTicker(time.Second) // the loop's maintenance tick
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer loop.Stop()
			for {
				select {
				case <-stop:
					return
				case now := <-loop.C:
					if !wedged.Load() {
						beat.Store(now.UnixNano())
					}
				}
			}
		}()
		beat.Store(time.Now().UnixNano())
		var logs testutil.SyncBuffer
		n := &notifier{
			send: func(s string) error {
				mu.Lock()
				defer mu.Unlock()
				if s == "WATCHDOG=1" {
					fed = append(fed, time.Now())
				}
				return nil
			},
			log:      slog.New(slog.NewTextHandler(&logs, nil)),
			watchdog: 4 * time.Second,
			status:   func() serviceState { return serviceState{text: "ok"} },
			beat:     func() time.Time { return time.Unix(0, beat.Load()) },
		}
		start := time.Now()
		n.ready()
		defer n.close()

		time.Sleep(10 * time.Second)
		mu.Lock()
		last := start
		for _, at := range fed {
			if gap := at.Sub(last); gap > n.watchdog/2 {
				t.Errorf("the watchdog went unfed for %v of a loop beating every second; want at most %v", gap, n.watchdog/2)
			}
			last = at
		}
		mu.Unlock()
		wedged.Store(true)
		time.Sleep(2 * time.Second) // what was fed before the wedge
		before := count()
		time.Sleep(30 * time.Second)
		if got := count(); got != before {
			t.Errorf("%d WATCHDOG=1 sent while the loop was wedged, want none", got-before)
		}
		if c := strings.Count(logs.String(), "has not run for a while"); c != 1 {
			t.Errorf("%d warnings of the stuck loop, want 1:\n%s", c, logs.String())
		}
		wedged.Store(false)
		time.Sleep(3 * time.Second)
		if count() == before {
			t.Error("no WATCHDOG=1 once the loop runs again")
		}
	})
}
