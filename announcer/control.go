package announcer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// ErrUnknownVIP is returned for a VIP name that is not configured.
var ErrUnknownVIP = errors.New("no such VIP")

// Sources of a drain; each is set and cleared on its own.
const (
	drainAPI         = "api"
	drainMaintenance = "maintenance"
	drainShutdown    = "shutdown"
)

// Drain takes vip out of service gently (RFC 8326): its routes are
// re-announced with the GRACEFUL_SHUTDOWN community (and local-pref 0 to iBGP
// peers), then withdrawn after the drain time. vip "" drains the whole node.
// The VIP stays drained until Undrain, or for d when d > 0. reason is shown
// in its state. It returns once the drain is in effect (the routes carry
// GRACEFUL_SHUTDOWN or are withdrawn).
func (a *Announcer) Drain(ctx context.Context, vip, reason string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("drain duration %s is negative", d)
	}
	return a.control(ctx, controlReq{drain: true, source: drainAPI, vip: vip, reason: reason, dur: d})
}

// Undrain returns vip ("" for the node) to service after Drain: it is
// announced again as soon as its checks pass (a maintenance file still
// present keeps it drained).
func (a *Announcer) Undrain(ctx context.Context, vip string) error {
	return a.control(ctx, controlReq{source: drainAPI, vip: vip})
}

// DrainForShutdown drains the whole node before anycastd stops.
func (a *Announcer) DrainForShutdown(ctx context.Context) error {
	return a.control(ctx, controlReq{drain: true, source: drainShutdown, reason: "anycastd is stopping"})
}

// WaitDrained returns nil once no VIP is draining any more (their drain
// time is over and they are withdrawn) and no drain waits for a fleet
// drain slot, or the loop has ended, and ctx's
// error when ctx is done first.
func (a *Announcer) WaitDrained(ctx context.Context) error {
	for {
		snap, changed := a.watchSnapshot()
		if !snap.Draining() && snap.DrainWaiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.done:
			return nil
		case <-changed:
		}
	}
}

type controlReq struct {
	reload *config.Config // not nil: a reload to this configuration
	drain  bool           // false: undrain
	source string
	vip    string
	reason string
	dur    time.Duration
	resp   chan error
}

func (a *Announcer) control(ctx context.Context, req controlReq) error {
	req.resp = make(chan error, 1)
	select {
	case a.controls <- req:
	case <-a.done:
		return errors.New("anycastd is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.resp:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drainEntry is one source's drain of a VIP or the node.
type drainEntry struct {
	reason string
	since  time.Time
	until  time.Time // zero: until undrained
	// waiting: not in effect yet, waiting for a fleet drain slot
	// (fleet_drain.go); a stop's drain goes ahead anyway at forceAt.
	waiting bool
	forceAt time.Time
}

func (e drainEntry) active(now time.Time) bool { return e.until.IsZero() || now.Before(e.until) }

// control applies a drain or undrain request in the loop.
func (l *loop) control(req controlReq) error {
	if req.reload != nil {
		return l.reload(req.reload)
	}
	if _, ok := l.vips[req.vip]; req.vip != "" && !ok {
		return fmt.Errorf("%w: %q", ErrUnknownVIP, req.vip)
	}
	what := "node"
	if req.vip != "" {
		what = fmt.Sprintf("VIP %q", req.vip)
	}
	if !req.drain {
		if _, ok := l.drains[req.vip][req.source]; ok {
			delete(l.drains[req.vip], req.source)
			l.markAll()
			l.log.Info("undrained: back in service once its checks pass", "vip", req.vip, "what", what)
		}
		return nil
	}
	now := time.Now()
	e := drainEntry{reason: req.reason, since: now}
	if e.reason == "" {
		e.reason = "drained by operator"
	}
	if old, ok := l.drains[req.vip][req.source]; ok && old.active(now) {
		e.since = old.since // draining again does not restart the drain time
	}
	if req.dur > 0 {
		e.until = now.Add(req.dur)
	}
	if req.source == drainShutdown {
		// A stop waits for a fleet drain slot at most the drain time.
		e.forceAt = now.Add(l.cfg.Node.DrainTime)
	}
	e = l.setDrain(req.vip, req.source, e)
	args := []any{"vip", req.vip, "what", what, "reason", e.reason}
	if req.dur > 0 {
		args = append(args, "for", req.dur) // then back in service
	}
	if e.waiting {
		l.log.Info("drain requested: taking a fleet drain slot first ([fleet] max_drained)", args...)
		return nil
	}
	l.log.Info("draining: announcing with GRACEFUL_SHUTDOWN, then withdrawing", args...)
	return nil
}

// setDrain records drain e of vip ("" the node) by source and returns it as
// recorded: a new drain waits for a fleet drain slot when it needs one and
// the node holds none; a drain again by the same source keeps its wait.
func (l *loop) setDrain(vip, source string, e drainEntry) drainEntry {
	l.markAll()
	if l.drains[vip] == nil {
		l.drains[vip] = make(map[string]drainEntry)
	}
	if old, ok := l.drains[vip][source]; ok && old.waiting {
		e.waiting, e.forceAt = true, old.forceAt
	} else if !ok {
		// A stop with nothing announced takes no traffic away: no slot.
		e.waiting = l.needsSlot() && !l.slot.granted && (source != drainShutdown || len(l.announced) > 0)
	}
	if !e.waiting {
		e.forceAt = time.Time{}
	}
	l.drains[vip][source] = e
	l.syncSlot(time.Now())
	return e
}

// merged returns the active drains of vip and of the node as one: the
// earliest start and every reason.
func (l *loop) merged(vip string, now time.Time) (routes.Drain, bool) {
	var d routes.Drain
	var reasons []string
	for _, key := range []string{"", vip} {
		for _, src := range []string{drainShutdown, drainMaintenance, drainAPI} {
			e, ok := l.drains[key][src]
			if !ok || !e.active(now) || !l.inEffect(e, now) {
				continue
			}
			if d.Since.IsZero() || e.since.Before(d.Since) {
				d.Since = e.since
			}
			if !slices.Contains(reasons, e.reason) {
				reasons = append(reasons, e.reason)
			}
		}
	}
	d.Reason = strings.Join(reasons, "; ")
	return d, len(reasons) > 0
}

// nodeDrain reports whether the node itself is drained, and why.
func (l *loop) nodeDrain() (string, bool) {
	d, ok := l.merged("", time.Now())
	return d.Reason, ok
}

// expire forgets drains and hold-downs that are over at now, and reports
// whether there were any (every VIP must then be computed again).
func (l *loop) expire(now time.Time) bool {
	expired := false
	for key, srcs := range l.drains {
		for src, e := range srcs {
			if !e.active(now) {
				delete(srcs, src)
				expired = true
				l.log.Info("drain time span over: back in service once its checks pass", "vip", key, "reason", e.reason)
			}
		}
	}
	for name, until := range l.held {
		if !now.Before(until) {
			delete(l.held, name)
			delete(l.flaps, name)
			expired = true
			l.log.Info("hold-down over: the VIP follows its checks again", "vip", name)
		}
	}
	return expired
}

// overrides builds Compute's inputs other than the checks at now, for vips.
func (l *loop) overrides(now time.Time, vips []config.VIP) routes.Overrides {
	ov := routes.Overrides{
		Now:              now,
		MissingAddresses: l.missing,
		HeldUntil:        l.held,
		Drained:          make(map[string]routes.Drain),
		Guarded:          l.guardedVIPs(),
	}
	if len(l.drains) > 0 {
		for _, v := range vips {
			if d, ok := l.merged(v.Name, now); ok {
				ov.Drained[v.Name] = d
			}
		}
	}
	if delay := l.cfg.Node.StartupDelay; delay > 0 {
		switch {
		case l.firstUp.IsZero():
			ov.HoldAll = "startup delay: waiting for the first BGP session"
		case now.Before(l.firstUp.Add(delay)):
			ov.HoldAll = fmt.Sprintf("startup delay until %s", l.firstUp.Add(delay).Format(time.TimeOnly))
		}
	}
	return ov
}

// nextChange is when the loop must run again by itself: computeNext (a drain
// time or hold-down ending), a timed drain expiring, or the startup delay
// ending. Far in the future when nothing is pending.
func (l *loop) nextChange(computeNext, now time.Time) time.Time {
	next := now.Add(time.Hour)
	consider := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	consider(computeNext)
	for _, srcs := range l.drains {
		for _, e := range srcs {
			if !e.until.IsZero() {
				consider(e.until)
			}
			if e.waiting && !e.forceAt.IsZero() {
				consider(e.forceAt)
			}
		}
	}
	if len(l.slot.replies) > 0 {
		consider(l.slot.replyBy)
	}
	if !l.firstUp.IsZero() && l.cfg.Node.StartupDelay > 0 {
		consider(l.firstUp.Add(l.cfg.Node.StartupDelay))
	}
	return next
}

func (l *loop) peerCameUp() {
	if l.firstUp.IsZero() {
		l.firstUp = time.Now()
		l.markAll()
		if d := l.cfg.Node.StartupDelay; d > 0 {
			l.log.Info("first BGP session up: announcements start after the startup delay", "startup_delay", d)
		}
	}
}

// holdFlapping records check-driven transitions and holds a VIP that changed
// state more than max_flaps times within flap_window. It reports whether a
// hold started (Compute must run again).
func (l *loop) holdFlapping(d routes.Desired, now time.Time) bool {
	started := false
	for _, st := range d.VIPs {
		old, seen := l.states[st.Name]
		v := l.vips[st.Name]
		if !seen || old.State == st.State || v.FlapHoldDown.MaxFlaps == 0 ||
			!checkDriven(old.State) || !checkDriven(st.State) {
			continue
		}
		cut := now.Add(-v.FlapHoldDown.Window)
		fl := slices.DeleteFunc(append(l.flaps[st.Name], now), func(t time.Time) bool { return t.Before(cut) })
		l.flaps[st.Name] = fl
		if len(fl) > v.FlapHoldDown.MaxFlaps {
			l.held[st.Name] = now.Add(v.FlapHoldDown.HoldDown)
			l.log.Warn("VIP is flapping: holding it down", "vip", st.Name, "changes", len(fl),
				"window", v.FlapHoldDown.Window, "hold_down", v.FlapHoldDown.HoldDown)
			started = true
		}
	}
	return started
}

func checkDriven(s routes.State) bool {
	return s == routes.StateUp || s == routes.StateDegraded || s == routes.StateDown
}

// pollMaintenance drains the node or a VIP while its maintenance file
// exists, and undrains it once the file is gone. It reports whether any
// drain started or ended.
func (l *loop) pollMaintenance() bool {
	changed := false
	check := func(key, file string) {
		if file == "" {
			return
		}
		_, err := os.Stat(file)
		_, drained := l.drains[key][drainMaintenance]
		switch {
		case err == nil && !drained:
			l.setDrain(key, drainMaintenance, drainEntry{reason: "maintenance file " + file + " exists", since: time.Now()})
			l.log.Info("maintenance file found: draining", "vip", key, "file", file)
			changed = true
		case err != nil && drained:
			delete(l.drains[key], drainMaintenance)
			l.log.Info("maintenance file gone: back in service once checks pass", "vip", key, "file", file)
			changed = true
		}
	}
	check("", l.cfg.Node.MaintenanceFile)
	for name, v := range l.vips {
		check(name, v.MaintenanceFile)
	}
	return changed
}
