package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/anycastd/anycastd/routes"
)

// What the daemon tells a service manager (sd_notify(3); systemd.service(5)
// Type=notify), when the environment names one (NOTIFY_SOCKET); nothing
// otherwise:
//
//   - READY=1 with STATUS= once Start has returned: the configuration is
//     loaded and the listeners are up (BGP sessions may still be opening).
//   - STATUS= whenever the VIP or session counts change, checked every
//     second: "4 of 4 VIPs announced (…), 2 of 2 BGP sessions established".
//   - WATCHDOG=1 (with WatchdogSec, i.e. WATCHDOG_USEC) only while the
//     announcer loop keeps beating (announcer.Heartbeat): a wedged loop
//     stops feeding the watchdog and the service manager restarts the
//     process; a loop silent for stallWarning is logged once.
//   - RELOADING=1 with MONOTONIC_USEC= when a reload starts, READY=1 when
//     it ends (whatever its outcome).
//   - STOPPING=1 with EXTEND_TIMEOUT_USEC= when the drain starts, covering
//     the drain time and stopAllowance; once the drain is over, another
//     EXTEND_TIMEOUT_USEC= of stopAllowance for the withdrawal's flush,
//     stopping BGP and removing the VIP addresses. A stop timeout shorter
//     than these is thereby extended; a longer one stays.
//
// The same tick keeps the API's grpc.health.v1 statuses (for Kubernetes
// probes) current, with or without a service manager: see setHealth.

// stopAllowance is what stopping may take after the drain: the flush of
// the withdrawals (2 s at most), stopping GoBGP and removing the VIP
// addresses (about 12 s for 10,000 IPv6 addresses on a small machine).
const stopAllowance = 30 * time.Second

// stallWarning is how long the announcer loop may be silent before it is
// logged as blocked.
const stallWarning = 5 * time.Second

// notifier sends the daemon's state to the service manager and the API's
// health statuses. Its methods are safe for concurrent use; a nil notifier
// does nothing, and without a manager (send nil) only the health statuses
// are kept.
type notifier struct {
	send     func(state string) error // nil: no service manager
	log      *slog.Logger
	watchdog time.Duration // WATCHDOG_USEC; 0: no watchdog
	status   func() serviceState
	beat     func() time.Time
	// setHealth is told every tick whether the announcer loop is alive
	// (it beat within stallWarning) and whether the node is ready (alive,
	// at least one BGP session established, not stopping); nil: nobody.
	setHealth func(live, ready bool)

	started  time.Time  // when ready was called: the loop counts as live from there
	mu       sync.Mutex // orders the messages; guards lastSent and phase
	lastSent string     // the last STATUS= sent
	phase    string     // put before the status while stopping; "": running
	stop     context.CancelFunc
	done     chan struct{}
}

// serviceState is what the daemon reports: STATUS='s line, and whether
// at least one BGP session is established.
type serviceState struct {
	text        string
	established int
}

// newNotifier returns a notifier that sends through send, or through
// sd_notify when send is nil and NOTIFY_SOCKET is set (else to no
// service manager).
func newNotifier(send func(string) error, log *slog.Logger, status func() serviceState, beat func() time.Time) *notifier {
	if send == nil && sdNotifyAvailable() {
		send = func(state string) error {
			_, err := sddaemon.SdNotify(false, state)
			return err
		}
	}
	n := &notifier{send: send, log: log, status: status, beat: beat}
	if send != nil {
		wd, err := sddaemon.SdWatchdogEnabled(false)
		if err != nil {
			log.Warn("the service manager's watchdog settings are not valid; not feeding a watchdog", "err", err)
		}
		n.watchdog = wd
	}
	return n
}

// sdNotifyAvailable reports whether a service manager listens.
func sdNotifyAvailable() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// notify sends the lines as one message; a failure is logged once per
// kind, never fatal.
func (n *notifier) notify(lines ...string) {
	if n == nil || n.send == nil {
		return
	}
	msg := strings.Join(lines, "\n")
	if err := n.send(msg); err != nil {
		n.log.Debug("telling the service manager", "state", msg, "err", err)
	}
}

// ready sends READY=1 with the status, then keeps status and watchdog
// current until close.
func (n *notifier) ready() {
	if n == nil {
		return
	}
	n.started = time.Now()
	st := n.status()
	n.mu.Lock()
	n.lastSent = st.text
	n.notify("READY=1", "STATUS="+n.lastSent)
	n.mu.Unlock()
	n.health(time.Now(), st)
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.done = cancel, make(chan struct{})
	go n.run(ctx)
}

// run sends STATUS= on change and feeds the watchdog while the loop
// beats; see the package comment above.
func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	tick := time.Second
	if n.watchdog > 0 && n.watchdog/4 < tick {
		tick = max(n.watchdog/4, 10*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	statusEvery := int(time.Second / tick) // ticks between status checks
	var fed time.Time                      // the heartbeat the watchdog was last fed for
	var stalled bool                       // the stall was logged
	for ticks := 1; ; ticks++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			beat := n.beat()
			if beat.After(fed) {
				if n.watchdog > 0 {
					n.notify("WATCHDOG=1")
				}
				fed = beat
				if stalled {
					n.log.Info("the announcer loop runs again")
					stalled = false
				}
			} else if !stalled && !beat.IsZero() && now.Sub(beat) > stallWarning {
				stalled = true
				n.log.Warn("the announcer loop has not run for a while: it is blocked in a speaker or address call, or wedged; the watchdog is no longer fed",
					"since", beat.Format(time.RFC3339Nano), "watchdog", n.watchdog)
			}
			if ticks%statusEvery == 0 {
				st := n.status()
				n.sendStatus(st.text)
				n.health(now, st)
			}
		}
	}
}

// health tells setHealth whether the loop is alive and the node ready.
func (n *notifier) health(now time.Time, st serviceState) {
	if n.setHealth == nil {
		return
	}
	// Before its first beat the loop counts from ready (it may still be
	// starting the speaker).
	live := now.Sub(later(n.beat(), n.started)) <= stallWarning
	n.mu.Lock()
	stopping := n.phase != ""
	n.mu.Unlock()
	n.setHealth(live, live && !stopping && st.established > 0)
}

// sendStatus sends STATUS=s (after the phase, if any) unless it was the
// last one sent.
func (n *notifier) sendStatus(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s = n.phase + s
	if s != n.lastSent {
		n.lastSent = s
		n.notify("STATUS=" + s)
	}
}

// reloading and reloaded frame a reload.
func (n *notifier) reloading() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notify("RELOADING=1", strings.TrimSpace(sddaemon.SdNotifyMonotonicUsec()), "STATUS=reloading the configuration")
	n.lastSent = "reloading the configuration"
}

func (n *notifier) reloaded() {
	if n == nil {
		return
	}
	st := n.status()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastSent = st.text
	n.notify("READY=1", "STATUS="+n.lastSent)
}

// stopping says the daemon is stopping and may take extend from now; what
// says why: STATUS= is what, and later statuses start with it.
func (n *notifier) stopping(what string, extend time.Duration) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.phase, n.lastSent = what+": ", what
	n.notify("STOPPING=1", fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", extend.Microseconds()), "STATUS="+what)
	if n.setHealth != nil {
		n.setHealth(true, false) // not ready from the drain on
	}
}

// close stops the status and watchdog updates.
func (n *notifier) close() {
	if n == nil || n.stop == nil {
		return
	}
	n.stop()
	<-n.done
}

// serviceStatus is the one-line STATUS=: how many VIPs are announced (and
// in which other states), how many sessions are established, and whether
// the node is drained.
func (d *Daemon) serviceStatus() serviceState {
	snap := d.ann.Snapshot()
	counts := make(map[routes.State]int)
	announced := 0
	for _, v := range snap.VIPs {
		counts[v.State]++
		if v.State.Announced() {
			announced++
		}
	}
	var b strings.Builder
	// Until the loop's first snapshot (at READY=1) the VIPs are those of
	// the configuration, none announced yet.
	fmt.Fprintf(&b, "%d of %d VIPs announced", announced, max(len(snap.VIPs), len(snap.Config.VIPs)))
	var others []string
	for _, s := range routes.States {
		if s != routes.StateUp && counts[s] > 0 {
			others = append(others, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(others, ", "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	up := 0
	if peers, err := d.speaker.Peers(ctx); err == nil {
		for _, p := range peers {
			if p.State == "established" {
				up++
			}
		}
		// Before the speaker has started, the sessions configured.
		fmt.Fprintf(&b, ", %d of %d BGP sessions established", up, max(len(peers), len(snap.Config.BGP.Peers)))
	}
	if snap.NodeDrained {
		fmt.Fprintf(&b, "; node drained: %s", snap.NodeReason)
	}
	if snap.DrainWaiting != "" {
		fmt.Fprintf(&b, "; drain %s", snap.DrainWaiting)
	}
	if d.fleet != nil && !d.fleet.guard.Coordinator().Connected {
		b.WriteString("; fleet coordinator (etcd) cannot be reached")
	}
	return serviceState{text: b.String(), established: up}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
