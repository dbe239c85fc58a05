package announcer

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// The loop reconciles incrementally: an event marks what it touched (a
// check's transition marks the VIPs using that check), and reconcile
// recomputes only those VIPs and applies only the prefixes whose desired
// route may now differ from the announced one. Events that can touch any VIP
// (a drain, a reload, a maintenance file, an address event, a timer) mark
// every VIP. At 10,000 VIPs one check's transition thus costs one VIP's
// computation, not 10,000.
//
// The state behind it, owned by the loop:
//
//   - dirty / dirtyAll: the VIPs to recompute;
//   - desired: the routes the last computation of each VIP wants;
//   - pending: prefixes where announced may differ from desired, until a
//     speaker call settles them (a failed call leaves them pending, and the
//     retry timer brings the loop back);
//   - status: every VIP's last status, in config order (published as is).

// configureTimeout bounds one Speaker.Configure call.
const configureTimeout = 30 * time.Second

// publishLag bounds how long a burst of check events may defer publishing
// the snapshot: while events are queued, reconcile applies them and leaves
// the O(VIPs) snapshot to the last of the burst.
const publishLag = 100 * time.Millisecond

// markAll makes the next reconcile recompute every VIP.
func (l *loop) markAll() { l.dirtyAll = true }

// markCheck makes the next reconcile recompute the VIPs that use check.
func (l *loop) markCheck(check string) {
	for _, name := range l.byCheck[check] {
		l.dirty[name] = true
	}
}

// markPrefix makes the next reconcile recompute the VIP of prefix.
func (l *loop) markPrefix(p netip.Prefix) {
	for _, v := range l.cfg.VIPs {
		if slices.Contains(v.Prefixes, p) {
			l.dirty[v.Name] = true
			return
		}
	}
}

// toCompute returns the VIPs to recompute, in config order, and whether
// that is all of them; it clears the marks.
func (l *loop) toCompute() ([]config.VIP, bool) {
	if l.dirtyAll || len(l.dirty) >= len(l.cfg.VIPs) {
		l.dirtyAll = false
		clear(l.dirty)
		return l.cfg.VIPs, true
	}
	vips := make([]config.VIP, 0, len(l.dirty))
	for name := range l.dirty {
		if v, ok := l.vips[name]; ok {
			vips = append(vips, v)
		}
	}
	clear(l.dirty)
	slices.SortFunc(vips, func(a, b config.VIP) int { return cmp.Compare(l.vipIndex[a.Name], l.vipIndex[b.Name]) })
	return vips, false
}

// reconcile computes the desired routes of the marked VIPs and applies what
// differs from the announced table. It returns when the loop must run again
// by itself: when a drain or hold-down ends, or soon if a speaker call
// failed and must be retried.
func (l *loop) reconcile(ctx context.Context) time.Time {
	now := time.Now()
	// A drain, hold-down or startup delay that ended is a change to every
	// VIP, whichever event woke the loop: its timer may have fired while
	// another event was taken first.
	expired := l.expire(now)
	l.syncSlot(now)
	if expired || l.forceDrains(now) || (!l.timedNext.IsZero() && !now.Before(l.timedNext)) {
		l.markAll()
	}
	vips, all := l.toCompute()
	d := routes.ComputeVIPs(l.cfg, vips, l.checks, l.overrides(now, vips))
	if l.holdFlapping(d, now) {
		d = routes.ComputeVIPs(l.cfg, vips, l.checks, l.overrides(now, vips))
	}
	l.applyFloor(vips, &d, now)
	prev := l.transitions(ctx, d.VIPs, now)
	l.merge(vips, d, all)

	update, withdraw := l.diffPending()
	ok := l.withdraw(ctx, withdraw, prev)
	// After a reload: the withdrawals of removed VIPs went first (a policy
	// change does not withdraw what was already sent); now the speaker
	// takes the new configuration. Until it has, nothing is announced or
	// replaced: the old export policy and sessions would send it wrong.
	// Nor does the speaker change while a withdrawal is pending: the new
	// export policy could keep it from leaving.
	switch {
	case l.converged:
	case !ok:
		update = nil
	default:
		cctx, cancel := context.WithTimeout(ctx, configureTimeout)
		err := l.speaker.Configure(cctx, l.cfg)
		cancel()
		if err != nil {
			if l.configureErr == nil || l.configureErr.Error() != err.Error() {
				l.log.Error("the BGP speaker cannot take the new configuration; announcements wait, withdrawals go on; will retry", "err", err)
			}
			l.configureErr = err
			ok = false
			update = nil
		} else {
			if l.configureErr != nil {
				l.log.Info("the BGP speaker took the new configuration", "after_error", l.configureErr)
			}
			l.converged, l.configureErr = true, nil
		}
	}
	if !l.announce(ctx, update, prev) {
		ok = false
	}
	next := l.nextChange(l.computeNext, now)
	l.timedNext = next
	if !ok {
		if retry := now.Add(l.opts.RetryInterval); retry.Before(next) {
			next = retry
		}
	}
	return l.maybeRelease(ctx, l.status, ok, now, next)
}

// transitions records the new state of each computed VIP that changed,
// tells the observer and logs it. It returns the old states of those that
// changed.
func (l *loop) transitions(ctx context.Context, vips []routes.VIPStatus, now time.Time) map[string]routes.State {
	prev := make(map[string]routes.State)
	for i := range vips {
		st := &vips[i]
		old, seen := l.states[st.Name]
		if seen && old.State == st.State {
			st.Since = old.Since
			l.states[st.Name] = *st
			if old.Reason != st.Reason {
				l.reportTransition(*st) // the fleet view shows why, as it is now
			}
			continue
		}
		from := routes.State("none")
		if seen {
			from = old.State
		}
		st.Since = now
		prev[st.Name] = from
		l.states[st.Name] = *st
		l.reportTransition(*st)
		if l.opts.Observer != nil {
			l.opts.Observer.VIPChanged(VIPEvent{VIP: st.Name, From: from, To: st.State, Reason: st.Reason, Time: now})
		}
		// A withdrawal is a warning, unless someone asked for it (a drain
		// that ended: disabled).
		lvl := slog.LevelInfo
		if !st.State.Announced() && seen && st.State != routes.StateDisabled {
			lvl = slog.LevelWarn
		}
		l.log.Log(ctx, lvl, "VIP state changed", "vip", st.Name, "from", from, "to", st.State, "reason", st.Reason)
	}
	return prev
}

// merge takes a computation of vips into desired, status and pending.
func (l *loop) merge(vips []config.VIP, d routes.Desired, all bool) {
	if all {
		for p := range l.desired {
			l.pending[p] = true
		}
		for p := range l.announced {
			l.pending[p] = true
		}
		l.desired = d.Routes
		for p := range l.desired {
			l.pending[p] = true
		}
		l.status, l.statusShared = d.VIPs, false
		l.computeNext = d.Next
		return
	}
	if l.statusShared {
		l.status, l.statusShared = slices.Clone(l.status), false
	}
	status := l.status
	for i, v := range vips {
		for _, p := range v.Prefixes {
			delete(l.desired, p)
			l.pending[p] = true
		}
		if j, ok := l.vipIndex[v.Name]; ok && j < len(status) {
			status[j] = d.VIPs[i]
		}
	}
	for p, r := range d.Routes {
		l.desired[p] = r
	}
	if !d.Next.IsZero() && (l.computeNext.IsZero() || d.Next.Before(l.computeNext)) {
		l.computeNext = d.Next
	}
}

// diffPending returns what turns the announced routes of the pending
// prefixes into the desired ones, each sorted by prefix; only those stay
// pending.
func (l *loop) diffPending() (update []routes.Route, withdraw []netip.Prefix) {
	update, withdraw = routes.Diff(l.announced, l.desired, maps.Keys(l.pending))
	clear(l.pending)
	for _, r := range update {
		l.pending[r.Prefix] = true
	}
	for _, p := range withdraw {
		l.pending[p] = true
	}
	return update, withdraw
}

// withdraw withdraws prefixes (one batch, so the withdrawals share
// UPDATEs), then removes the addresses that must go. It reports whether
// every withdrawal succeeded.
func (l *loop) withdraw(ctx context.Context, prefixes []netip.Prefix, prev map[string]routes.State) bool {
	ok := true
	done := speakerBatch(prefixes, func(ps []netip.Prefix) error { return l.speaker.Withdraw(ctx, ps...) },
		func(p netip.Prefix, err error) {
			l.log.Error("withdraw failed, will retry", "vip", l.announced[p].VIP, "prefix", p, "err", err)
			ok = false
		})
	for _, p := range done {
		r := l.announced[p]
		delete(l.announced, p)
		delete(l.pending, p)
		l.annChanged[p] = true
		st, configured := l.states[r.VIP]
		if !configured {
			l.log.Info("withdrawn", "vip", r.VIP, "prefix", p, "to", "removed", "reason", "no longer configured (reload)")
		} else {
			l.log.Info("withdrawn", "vip", r.VIP, "prefix", p, "from", fromState(prev, st), "to", st.State, "reason", st.Reason)
		}
		// A removed VIP's address always goes; a configured one's where the
		// VIP says so.
		if l.opts.Addresses != nil && (!configured || l.vips[r.VIP].RemoveOnWithdraw) && !l.missing[p] {
			if err := l.opts.Addresses.Remove(p); err != nil {
				l.log.Error("removing VIP address after withdrawal", "vip", r.VIP, "prefix", p, "err", err)
			}
		}
	}
	return ok
}

// announce puts the addresses of the new routes on the interface, all of
// them before any is announced, then announces the routes whose address is
// there in one batch (so they share UPDATEs). It reports whether every
// route went out.
func (l *loop) announce(ctx context.Context, update []routes.Route, prev map[string]routes.State) bool {
	ok := true
	ready := make([]routes.Route, 0, len(update))
	for _, r := range update {
		_, replacing := l.announced[r.Prefix]
		// The address is on the interface before the route is announced.
		if !replacing && l.opts.Addresses != nil {
			if err := l.opts.Addresses.Add(r.Prefix, r.VIP); err != nil {
				l.log.Error("cannot add VIP address; not announcing it, will retry", "vip", r.VIP, "prefix", r.Prefix, "err", err)
				ok = false
				continue
			}
		}
		ready = append(ready, r)
	}
	done := speakerBatch(ready, func(rs []routes.Route) error { return l.speaker.Announce(ctx, rs...) },
		func(r routes.Route, err error) {
			l.log.Error("announce failed, will retry", "vip", r.VIP, "prefix", r.Prefix, "err", err)
			ok = false
		})
	for _, r := range done {
		_, replacing := l.announced[r.Prefix]
		l.announced[r.Prefix] = r
		delete(l.pending, r.Prefix)
		l.annChanged[r.Prefix] = true
		msg := "announced"
		if replacing {
			msg = "attributes updated"
		}
		st := l.states[r.VIP]
		l.log.Info(msg, "vip", r.VIP, "prefix", r.Prefix, "from", fromState(prev, st), "to", st.State, "reason", st.Reason)
	}
	return ok
}

// speakerBatch runs call on all items at once; when that fails, on each
// item alone, so one bad item does not hold back the others and its error
// names it. It returns the items that succeeded; failed is told of each
// other one.
func speakerBatch[T any](items []T, call func([]T) error, failed func(T, error)) []T {
	if len(items) == 0 {
		return nil
	}
	err := call(items)
	if err == nil {
		return items
	}
	if len(items) == 1 {
		failed(items[0], err)
		return nil
	}
	done := make([]T, 0, len(items))
	for _, it := range items {
		if err := call([]T{it}); err != nil {
			failed(it, err)
			continue
		}
		done = append(done, it)
	}
	return done
}

// fromState is the state a VIP left in this reconcile, or its current one.
func fromState(prev map[string]routes.State, st routes.VIPStatus) routes.State {
	if f, ok := prev[st.Name]; ok {
		return f
	}
	return st.State
}

// publish stores the snapshot: every VIP's status and the announced routes,
// sorted. The sorted routes are patched where few prefixes changed since
// the last publish, and sorted again only after a large change.
func (l *loop) publish() {
	switch {
	case l.annSorted == nil || len(l.annChanged) > len(l.announced)/8+64:
		ann := make([]routes.Route, 0, len(l.announced))
		for _, r := range l.announced {
			ann = append(ann, r)
		}
		slices.SortFunc(ann, func(x, y routes.Route) int { return x.Prefix.Compare(y.Prefix) })
		l.annSorted = ann
	case len(l.annChanged) > 0:
		ann := slices.Clone(l.annSorted)
		for p := range l.annChanged {
			i, found := slices.BinarySearchFunc(ann, p, func(r routes.Route, p netip.Prefix) int { return r.Prefix.Compare(p) })
			r, announced := l.announced[p]
			switch {
			case found && announced:
				ann[i] = r
			case found:
				ann = slices.Delete(ann, i, i+1)
			case announced:
				ann = slices.Insert(ann, i, r)
			}
		}
		l.annSorted = ann
	}
	clear(l.annChanged)
	reason, drained := l.nodeDrain()
	l.store(&Snapshot{VIPs: l.status, Announced: l.annSorted, NodeDrained: drained, NodeReason: reason,
		DrainWaiting: l.drainWaiting(), Config: l.cfg})
	l.statusShared = true
	l.published = time.Now()
}
