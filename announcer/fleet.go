package announcer

import (
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/routes"
)

// FleetGuard is the fleet guard as the loop sees it (*fleet.Guard; a
// recording fake in tests). Its methods never block on the store; its
// verdicts and drain slots come back through Announcer.FleetVerdict and
// Announcer.DrainSlotChanged.
type FleetGuard interface {
	// Engage asks whether vip may be withdrawn (health-driven) without
	// leaving fewer than minSites sites announcing it; the verdicts carry
	// the returned sequence number.
	Engage(vip string, minSites int) uint64
	// Disengage: vip no longer wants a health-driven withdrawal.
	Disengage(vip string)
	// Report publishes vip's state at this node.
	Report(vip string, st routes.State, since time.Time, reason string)
	// Forget removes this node's entry of a VIP no longer configured.
	Forget(vip string)
	// RequestDrainSlot and ReleaseDrainSlot take and give back one of the
	// fleet's max_drained slots for a voluntary drain.
	RequestDrainSlot(reason string)
	ReleaseDrainSlot()
}

// floorState is the loop's side of one engaged VIP: its checks want it
// withdrawn for a health-driven reason, and the fleet guard has the word.
type floorState struct {
	seq      uint64
	minSites int
	verdict  *fleet.Verdict // nil: asked, no answer yet
}

// FleetVerdict hands a verdict of the fleet guard to the loop. It blocks
// until the loop takes it, or returns at once when the loop has ended.
func (a *Announcer) FleetVerdict(v fleet.Verdict) {
	select {
	case a.verdicts <- v:
	case <-a.done:
	}
}

// DrainSlotChanged hands the fleet guard's word on this node's drain slot
// to the loop (as FleetVerdict).
func (a *Announcer) DrainSlotChanged(ev fleet.DrainSlotEvent) {
	select {
	case a.slots <- ev:
	case <-a.done:
	}
}

// applyFloor runs after a computation of vips (d.VIPs in the same order):
// a VIP that wants a health-driven withdrawal while announced is engaged
// with the fleet guard, and until the guard's first verdict it stays as it
// is (its old status and routes are put back into d); a VIP that no longer
// wants one is disengaged. VIPs without a floor (no [fleet], min_sites 0)
// and definite failures never wait: their withdrawal costs nothing extra.
func (l *loop) applyFloor(vips []config.VIP, d *routes.Desired, now time.Time) {
	g := l.opts.Fleet
	if g == nil {
		return
	}
	for i := range d.VIPs {
		st := &d.VIPs[i]
		v := vips[i]
		f := l.floor[v.Name]
		if v.MinSites == 0 || !st.Guardable {
			if old, ok := l.states[v.Name]; ok && v.MinSites > 0 && old.State.Announced() && st.State == routes.StateDown {
				l.log.Info("withdrawing without asking the fleet guard: not a withdrawal it may hold (a definite failure, a lost address, a check not decided yet)",
					"vip", v.Name, "reason", st.Reason)
			}
			if f != nil {
				g.Disengage(v.Name)
				delete(l.floor, v.Name)
				if st.State == routes.StateGuarded {
					// Guarded by a verdict that no longer applies (a
					// reload set min_sites = 0): computed again without it.
					l.recompute(v, i, d, now)
				}
			}
			continue
		}
		if f == nil || f.minSites != v.MinSites {
			if old, ok := l.states[v.Name]; f == nil && (!ok || !old.State.Announced()) {
				// Not announced by this node: withdrawn as without a
				// guard (the floor keeps announcements, it never makes
				// a VIP that has not risen here announced).
				continue
			}
			f = &floorState{seq: g.Engage(v.Name, v.MinSites), minSites: v.MinSites}
			l.floor[v.Name] = f
			l.log.Info("checks want the VIP withdrawn: asking the fleet guard first", "vip", v.Name, "min_sites", v.MinSites)
		}
		if f.verdict == nil {
			l.holdBack(v, st, d)
		}
	}
}

// holdBack keeps v as it is while the fleet guard decides: its status and
// routes in d become the ones in force.
func (l *loop) holdBack(v config.VIP, st *routes.VIPStatus, d *routes.Desired) {
	if old, ok := l.states[v.Name]; ok {
		*st = old
	}
	for _, p := range v.Prefixes {
		if r, ok := l.desired[p]; ok {
			d.Routes[p] = r
		} else {
			delete(d.Routes, p)
		}
	}
}

// guardedVIPs are the VIPs the fleet guard keeps announced, with why
// (routes.Overrides.Guarded); nil when there are none.
func (l *loop) guardedVIPs() map[string]string {
	var out map[string]string
	for name, f := range l.floor {
		if f.verdict != nil && f.verdict.Guarded {
			if out == nil {
				out = make(map[string]string)
			}
			out[name] = f.verdict.Reason
		}
	}
	return out
}

// fleetVerdict takes a verdict into the loop: the VIP is computed again
// with it. Verdicts of an engagement that ended (or was replaced) are
// dropped.
func (l *loop) fleetVerdict(v fleet.Verdict) {
	f := l.floor[v.VIP]
	if f == nil || f.seq != v.Seq {
		return
	}
	first := f.verdict == nil
	if first || f.verdict.Guarded != v.Guarded {
		msg := "fleet guard: the withdrawal may go ahead"
		if v.Guarded {
			msg = "fleet guard: keeping the VIP announced, degraded"
		}
		args := []any{"vip", v.VIP, "reason", v.Reason, "took", v.Took.Round(time.Microsecond)}
		if v.Others >= 0 {
			args = append(args, "other_sites", v.Others)
		}
		if v.Guarded {
			l.log.Warn(msg, args...)
		} else {
			l.log.Info(msg, args...)
		}
	}
	f.verdict = &v
	l.dirty[v.VIP] = true
}

// reportTransition publishes a VIP's new state to the fleet.
func (l *loop) reportTransition(st routes.VIPStatus) {
	if l.opts.Fleet != nil {
		l.opts.Fleet.Report(st.Name, st.State, st.Since, st.Reason)
	}
}

// forgetVIP tells the fleet guard that a reload removed vip.
func (l *loop) forgetVIP(vip string) {
	if l.opts.Fleet == nil {
		return
	}
	if _, ok := l.floor[vip]; ok {
		l.opts.Fleet.Disengage(vip)
		delete(l.floor, vip)
	}
	l.opts.Fleet.Forget(vip)
}

// recompute computes vip (d.VIPs[i]) again into d, with the overrides as
// they are now.
func (l *loop) recompute(v config.VIP, i int, d *routes.Desired, now time.Time) {
	one := []config.VIP{v}
	x := routes.ComputeVIPs(l.cfg, one, l.checks, l.overrides(now, one))
	d.VIPs[i] = x.VIPs[0]
	for _, p := range v.Prefixes {
		if r, ok := x.Routes[p]; ok {
			d.Routes[p] = r
		} else {
			delete(d.Routes, p)
		}
	}
}
