package announcer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// Options tune the announcer. Zero values get defaults.
type Options struct {
	// FlushTimeout bounds how long shutdown waits for withdrawals to leave
	// before the sessions are closed (default 2s).
	FlushTimeout time.Duration
	// RetryInterval is how soon a failed speaker or address call is retried
	// (default 1s).
	RetryInterval time.Duration
	// Addresses manages VIP addresses on the host; nil: not managed.
	Addresses Addresses
	// Observer is told of every VIP transition (its VIPChanged, from the
	// loop); nil: nobody.
	Observer Observer
}

// ErrNotConverged is returned by Reload when the new configuration is in
// force (the desired table, the API and the checks follow it) but the
// speaker could not take it yet: the loop retries every RetryInterval, and
// until it succeeds nothing is announced or replaced, only withdrawn.
var ErrNotConverged = errors.New("configuration in force, but the BGP speaker has not taken it yet; retrying")

// Announcer runs the reconcile loop. One goroutine (Run) owns the check
// states, the configuration in force and the announced table; everything
// else sends it events and reads snapshots.
type Announcer struct {
	cfg     *config.Config // the configuration Run starts with
	speaker Speaker
	log     *slog.Logger
	opts    Options

	events   chan health.Event
	addrEv   chan addressEvent
	controls chan controlReq
	peerUp   chan struct{} // a session came up (cap 1: a wake-up, not a queue)
	done     chan struct{} // closed when Run returns
	once     sync.Once

	// keepRoutes: the loop's end is a planned restart (StopForRestart).
	keepRoutes atomic.Bool

	snapMu  sync.Mutex
	snap    atomic.Pointer[Snapshot]
	changed chan struct{} // closed and replaced when snap changes; under snapMu
}

// Snapshot is a consistent view of the announcer's state.
type Snapshot struct {
	VIPs      []routes.VIPStatus
	Announced []routes.Route // sorted by prefix
	// NodeDrained: the whole node is drained (API, maintenance file or
	// shutdown), with the reasons.
	NodeDrained bool
	NodeReason  string
	// Config is the configuration in force.
	Config *config.Config
}

// Draining reports whether any VIP is still draining.
func (s Snapshot) Draining() bool {
	for _, v := range s.VIPs {
		if v.State == routes.StateDraining {
			return true
		}
	}
	return false
}

// New returns an announcer for cfg that announces through speaker.
func New(cfg *config.Config, speaker Speaker, logger *slog.Logger, opts Options) *Announcer {
	if opts.FlushTimeout == 0 {
		opts.FlushTimeout = 2 * time.Second
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = time.Second
	}
	a := &Announcer{
		cfg: cfg, speaker: speaker, log: logger, opts: opts,
		events:   make(chan health.Event, 64),
		addrEv:   make(chan addressEvent, 16),
		controls: make(chan controlReq),
		peerUp:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	a.snap.Store(&Snapshot{Config: cfg})
	return a
}

var _ Observer = (*Announcer)(nil)

// CheckChanged hands a check transition to the loop (Observer). It blocks
// until the loop takes the event, or returns at once when the loop has
// ended. Events of checks that the configuration in force lacks are
// dropped.
func (a *Announcer) CheckChanged(ev health.Event) {
	select {
	case a.events <- ev:
	case <-a.done:
	}
}

// PeerChanged tells the loop that a session came up, for startup_delay
// (Observer). It never blocks.
func (a *Announcer) PeerChanged(ev PeerEvent) {
	if !ev.Established() {
		return
	}
	select {
	case a.peerUp <- struct{}{}:
	default:
	}
}

// VIPChanged implements Observer; the announcer makes VIP transitions and
// needs not be told of them.
func (a *Announcer) VIPChanged(VIPEvent) {}

type addressEvent struct {
	prefix  netip.Prefix
	present bool
}

// AddressChanged tells the loop that a VIP address appeared on or vanished
// from the interface (the host watcher calls it).
func (a *Announcer) AddressChanged(prefix netip.Prefix, present bool) {
	select {
	case a.addrEv <- addressEvent{prefix, present}:
	case <-a.done:
	}
}

// Snapshot returns the latest state.
func (a *Announcer) Snapshot() Snapshot { return *a.snap.Load() }

// watchSnapshot returns the latest state and a channel closed when it is
// replaced.
func (a *Announcer) watchSnapshot() (Snapshot, <-chan struct{}) {
	a.snapMu.Lock()
	defer a.snapMu.Unlock()
	return *a.snap.Load(), a.changed
}

// store publishes s as the latest state and wakes watchSnapshot's callers.
func (a *Announcer) store(s *Snapshot) {
	a.snapMu.Lock()
	a.snap.Store(s)
	close(a.changed)
	a.changed = make(chan struct{})
	a.snapMu.Unlock()
}

// Run starts the speaker and reconciles until ctx is done; then it withdraws
// every route, waits (bounded) for the withdrawals to leave, and stops the
// speaker. It returns an error only if the speaker cannot start.
func (a *Announcer) Run(ctx context.Context) error {
	defer a.once.Do(func() { close(a.done) })
	if err := a.speaker.Start(ctx, a.cfg); err != nil {
		// Stop what may have started, so no half-configured session stays.
		_ = a.speaker.Stop(context.WithoutCancel(ctx))
		return err
	}
	l := loop{
		Announcer: a,
		cfg:       a.cfg,
		converged: true, // Start installed cfg
		checks:    make(map[string]routes.CheckStatus),
		announced: make(routes.Table),
		states:    make(map[string]routes.VIPStatus),
		missing:   make(map[netip.Prefix]bool),
		drains:    make(map[string]map[string]drainEntry),
		flaps:     make(map[string][]time.Time),
		held:      make(map[string]time.Time),
	}
	l.setConfig(a.cfg)
	l.holdSessions(time.Now())
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	maint := time.NewTicker(time.Second) // polls maintenance files
	defer maint.Stop()
	l.pollMaintenance()
	var applied []controlReq // control requests answered once reconciled
	for {
		next := l.reconcile(ctx)
		wake.Reset(time.Until(next))
		for _, req := range applied {
			var err error
			if req.reload != nil && l.configureErr != nil {
				err = fmt.Errorf("%w: %w", ErrNotConverged, l.configureErr)
			}
			req.resp <- err
		}
		applied = applied[:0]
		select {
		case <-ctx.Done():
			if a.keepRoutes.Load() {
				l.stopForRestart()
			} else {
				l.shutdown()
			}
			return nil
		case ev := <-a.events:
			l.checkChanged(ev)
			// Take every event already queued before computing once.
			for drained := false; !drained; {
				select {
				case ev := <-a.events:
					l.checkChanged(ev)
				default:
					drained = true
				}
			}
		case ev := <-a.addrEv:
			l.addressChanged(ev)
		case req := <-a.controls:
			if err := l.control(req); err != nil {
				req.resp <- err
			} else {
				applied = append(applied, req)
			}
		case <-a.peerUp:
			l.peerCameUp()
		case <-maint.C:
			l.pollMaintenance()
		case <-wake.C:
		}
	}
}

// loop is the state owned by Run's goroutine.
type loop struct {
	*Announcer
	// cfg is the configuration in force: the desired table follows it.
	cfg *config.Config
	// converged: the speaker has cfg installed (Configure succeeded since
	// the last reload); until then only withdrawals go out.
	converged    bool
	configureErr error // why the last Configure failed; nil once converged
	checks       map[string]routes.CheckStatus
	checkNames   map[string]bool // cfg's checks
	announced    routes.Table
	states       map[string]routes.VIPStatus
	missing      map[netip.Prefix]bool            // announced VIP addresses gone from the interface
	vips         map[string]config.VIP            // cfg's VIPs by name
	drains       map[string]map[string]drainEntry // VIP ("" = node) → source → drain
	flaps        map[string][]time.Time           // recent check-driven transitions per VIP
	held         map[string]time.Time             // flapping VIPs held until then
	firstUp      time.Time                        // when the first BGP session came up
	// gate holds the sessions until every VIP has a first decision, at the
	// latest until releaseBy (graceful restart, restart.go); nil: released.
	gate      sessionGate
	releaseBy time.Time
}

// checkChanged records a check transition. A check the configuration in
// force lacks (a reload removed it while its runner was stopping) is
// dropped, so no stale state is kept for it.
func (l *loop) checkChanged(ev health.Event) {
	if !l.checkNames[ev.Check] {
		return
	}
	l.checks[ev.Check] = routes.CheckStatus{Status: ev.Status, LastErr: ev.Last.Err}
}

// setConfig puts cfg in force in the loop and forgets what belonged only to
// the configuration before: the state, drains and hold-downs of removed
// VIPs, missing addresses of removed prefixes, and the states of removed
// checks. The speaker follows in reconcile.
func (l *loop) setConfig(cfg *config.Config) {
	l.cfg = cfg
	l.vips = make(map[string]config.VIP, len(cfg.VIPs))
	keep := make(map[netip.Prefix]bool)
	for _, v := range cfg.VIPs {
		l.vips[v.Name] = v
		for _, p := range v.Prefixes {
			keep[p] = true
		}
	}
	l.checkNames = make(map[string]bool, len(cfg.Checks))
	for _, c := range cfg.Checks {
		l.checkNames[c.Name] = true
	}
	for name := range l.checks {
		if !l.checkNames[name] {
			delete(l.checks, name)
		}
	}
	for name, st := range l.states {
		if _, ok := l.vips[name]; !ok {
			if l.opts.Observer != nil {
				l.opts.Observer.VIPChanged(VIPEvent{VIP: name, From: st.State, To: routes.StateRemoved,
					Reason: "no longer configured (reload)", Time: time.Now()})
			}
			delete(l.states, name)
			delete(l.drains, name)
			delete(l.held, name)
			delete(l.flaps, name)
		}
	}
	for p := range l.missing {
		if !keep[p] {
			delete(l.missing, p)
		}
	}
}

// addressChanged handles a VIP address appearing or vanishing. A lost
// address of an announced route is put back, unless the VIP says to withdraw
// instead; then it is withdrawn until the address returns.
func (l *loop) addressChanged(ev addressEvent) {
	r, announced := l.announced[ev.prefix]
	if ev.present {
		if l.missing[ev.prefix] {
			delete(l.missing, ev.prefix)
			l.log.Info("VIP address is back on the interface", "prefix", ev.prefix)
		}
		return
	}
	v, ok := l.vips[r.VIP]
	if !announced || !ok || l.opts.Addresses == nil {
		return // not ours to keep: the VIP is withdrawn anyway
	}
	if v.OnAddressLost == config.AddressLostWithdraw {
		l.missing[ev.prefix] = true
		l.log.Warn("VIP address deleted from the interface: withdrawing until it returns",
			"vip", v.Name, "prefix", ev.prefix)
		return
	}
	if err := l.opts.Addresses.Add(ev.prefix, v.Name); err != nil {
		l.log.Error("VIP address deleted from the interface and could not be restored",
			"vip", v.Name, "prefix", ev.prefix, "err", err)
		return
	}
	l.log.Warn("VIP address deleted from the interface: restored it", "vip", v.Name, "prefix", ev.prefix)
}

// configureTimeout bounds one Speaker.Configure call.
const configureTimeout = 30 * time.Second

// reconcile computes the desired table and applies the difference. It
// returns when the loop must run again by itself: when a drain or hold-down
// ends, or soon if a speaker call failed and must be retried.
func (l *loop) reconcile(ctx context.Context) time.Time {
	now := time.Now()
	d := routes.Compute(l.cfg, l.checks, l.overrides(now))
	if l.holdFlapping(d, now) {
		d = routes.Compute(l.cfg, l.checks, l.overrides(now))
	}
	prev := make(map[string]routes.State) // VIPs that changed state: their old state
	for i := range d.VIPs {
		st := &d.VIPs[i]
		old, seen := l.states[st.Name]
		if seen && old.State == st.State {
			st.Since = old.Since
			l.states[st.Name] = *st
			continue
		}
		from := routes.State("none")
		if seen {
			from = old.State
		}
		st.Since = now
		prev[st.Name] = from
		l.states[st.Name] = *st
		if l.opts.Observer != nil {
			l.opts.Observer.VIPChanged(VIPEvent{VIP: st.Name, From: from, To: st.State, Reason: st.Reason, Time: now})
		}
		lvl := slog.LevelInfo
		if !st.State.Announced() && seen {
			lvl = slog.LevelWarn
		}
		l.log.Log(ctx, lvl, "VIP state changed", "vip", st.Name, "from", from, "to", st.State, "reason", st.Reason)
	}

	update, withdraw := routes.Diff(l.announced, d.Routes)
	ok := true
	// Withdraw first: the path goes before anything else changes.
	for _, p := range withdraw {
		r := l.announced[p]
		if err := l.speaker.Withdraw(ctx, p); err != nil {
			l.log.Error("withdraw failed, will retry", "vip", r.VIP, "prefix", p, "err", err)
			ok = false
			continue
		}
		delete(l.announced, p)
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
		if err := l.speaker.Announce(ctx, r); err != nil {
			l.log.Error("announce failed, will retry", "vip", r.VIP, "prefix", r.Prefix, "err", err)
			ok = false
			continue
		}
		l.announced[r.Prefix] = r
		msg := "announced"
		if replacing {
			msg = "attributes updated"
		}
		st := l.states[r.VIP]
		l.log.Info(msg, "vip", r.VIP, "prefix", r.Prefix, "from", fromState(prev, st), "to", st.State, "reason", st.Reason)
	}
	l.publish(d.VIPs)
	next := l.nextChange(d.Next, now)
	if !ok {
		if retry := now.Add(l.opts.RetryInterval); retry.Before(next) {
			next = retry
		}
	}
	return l.maybeRelease(ctx, d.VIPs, ok, now, next)
}

// fromState is the state a VIP left in this reconcile, or its current one.
func fromState(prev map[string]routes.State, st routes.VIPStatus) routes.State {
	if f, ok := prev[st.Name]; ok {
		return f
	}
	return st.State
}

func (l *loop) publish(vips []routes.VIPStatus) {
	ann := make([]routes.Route, 0, len(l.announced))
	for _, r := range l.announced {
		ann = append(ann, r)
	}
	slices.SortFunc(ann, func(x, y routes.Route) int { return x.Prefix.Compare(y.Prefix) })
	reason, drained := l.nodeDrain()
	l.store(&Snapshot{VIPs: vips, Announced: ann, NodeDrained: drained, NodeReason: reason, Config: l.cfg})
}
