package announcer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
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
	// Fleet is the fleet guard ([fleet]); nil: every VIP's withdrawal is
	// this node's alone, and drains need no slot. The guard's verdicts
	// and drain slots come back through FleetVerdict and
	// DrainSlotChanged.
	Fleet FleetGuard
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
	verdicts chan fleet.Verdict
	slots    chan fleet.DrainSlotEvent
	done     chan struct{} // closed when Run returns
	once     sync.Once

	// keepRoutes: the loop's end is a planned restart (StopForRestart).
	keepRoutes atomic.Bool
	// beat is when the loop last began an iteration (Unix ns; 0: not
	// running): at least every second while it is alive (Heartbeat).
	beat atomic.Int64

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
	// DrainWaiting, when not empty, says that voluntary drains wait for a
	// fleet drain slot ([fleet] max_drained), e.g. "waiting for a drain
	// slot: 1 of 1 held by ams2/edge1"; the VIPs stay in service meanwhile.
	DrainWaiting string
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
		verdicts: make(chan fleet.Verdict, 64),
		slots:    make(chan fleet.DrainSlotEvent, 4),
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
	l := a.newLoop()
	l.holdSessions(time.Now())
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	maint := time.NewTicker(time.Second) // polls maintenance files
	defer maint.Stop()
	l.pollMaintenance()
	var applied []controlReq // control requests answered once reconciled
	for {
		a.beat.Store(time.Now().UnixNano())
		next := l.reconcile(ctx)
		applied = append(applied, l.slotReplies(time.Now())...)
		// In a burst of check events, the snapshot (O(VIPs)) waits for
		// the burst's end, at most publishLag; answered requests see it.
		if len(applied) > 0 || len(a.events) == 0 || time.Since(l.published) >= publishLag {
			l.publish()
		} else if soon := time.Now().Add(publishLag); soon.Before(next) {
			next = soon
		}
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
			l.takeQueuedEvents() // before computing once
		case ev := <-a.addrEv:
			l.addressChanged(ev)
		case req := <-a.controls:
			// Check events queued before the request count first: its
			// answer reflects them.
			l.takeQueuedEvents()
			switch err := l.control(req); {
			case err != nil:
				req.resp <- err
			case req.drain && l.awaitsSlotAnswer():
				// Answered once the fleet guard said whether the drain
				// has a slot (DrainWaiting), at the latest slotTimeout.
				l.slot.replies = append(l.slot.replies, req)
			default:
				applied = append(applied, req) // control marked what changed
			}
		case <-a.peerUp:
			l.peerCameUp()
		case v := <-a.verdicts:
			l.fleetVerdict(v)
		case ev := <-a.slots:
			l.drainSlot(ev, time.Now())
		case <-maint.C:
			if l.pollMaintenance() {
				l.markAll()
			}
		case <-wake.C: // reconcile sees what came due
		}
	}
}

// Heartbeat is when the loop last began an iteration, or the zero time
// before Run has started. The loop wakes at least once a second (it polls
// the maintenance files), so a heartbeat older than a few seconds means the
// loop is blocked: in a speaker or address call (each bounded, at most about
// 30 s) or wedged. A service manager's watchdog is fed only while it moves.
func (a *Announcer) Heartbeat() time.Time {
	if ns := a.beat.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// newLoop returns the loop's state for the configuration Run starts with,
// whose speaker has that configuration installed.
func (a *Announcer) newLoop() *loop {
	l := &loop{
		Announcer:  a,
		cfg:        a.cfg,
		converged:  true, // Start installed cfg
		checks:     make(map[string]routes.CheckStatus),
		announced:  make(routes.Table),
		desired:    make(routes.Table),
		pending:    make(map[netip.Prefix]bool),
		annChanged: make(map[netip.Prefix]bool),
		dirty:      make(map[string]bool),
		states:     make(map[string]routes.VIPStatus),
		missing:    make(map[netip.Prefix]bool),
		drains:     make(map[string]map[string]drainEntry),
		flaps:      make(map[string][]time.Time),
		held:       make(map[string]time.Time),
		floor:      make(map[string]*floorState),
	}
	l.setConfig(a.cfg)
	return l
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
	// The incremental reconcile (reconcile.go): what to recompute, what
	// the computations want, where announced may still differ.
	dirty        map[string]bool     // VIPs to recompute
	dirtyAll     bool                // recompute every VIP
	byCheck      map[string][]string // check → the VIPs using it (cfg)
	vipIndex     map[string]int      // VIP → its index in cfg.VIPs
	desired      routes.Table
	pending      map[netip.Prefix]bool
	status       []routes.VIPStatus    // every VIP's status, cfg order; never changed once published
	computeNext  time.Time             // earliest time-driven change the computations reported
	timedNext    time.Time             // when the next time-driven change is due (nextChange)
	statusShared bool                  // status was published: clone before changing it
	annChanged   map[netip.Prefix]bool // announced prefixes changed since annSorted
	annSorted    []routes.Route        // announced, sorted, as last published
	published    time.Time
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
	// The fleet guard (fleet.go, fleet_drain.go): VIPs engaged with it,
	// and the node's drain slot.
	floor map[string]*floorState
	slot  slotState
}

// checkChanged records a check transition. A check the configuration in
// force lacks (a reload removed it while its runner was stopping) is
// dropped, so no stale state is kept for it.
func (l *loop) checkChanged(ev health.Event) {
	if !l.checkNames[ev.Check] {
		return
	}
	l.checks[ev.Check] = routes.CheckStatus{Status: ev.Status, LastErr: ev.Last.Err,
		Definite: ev.Status == health.StatusDown && ev.Last.Definite}
	l.markCheck(ev.Check)
}

// takeQueuedEvents records every check event already queued.
func (l *loop) takeQueuedEvents() {
	for {
		select {
		case ev := <-l.events:
			l.checkChanged(ev)
		default:
			return
		}
	}
}

// setConfig puts cfg in force in the loop and forgets what belonged only to
// the configuration before: the state, drains and hold-downs of removed
// VIPs, missing addresses of removed prefixes, and the states of removed
// checks. The speaker follows in reconcile.
func (l *loop) setConfig(cfg *config.Config) {
	l.cfg = cfg
	l.vips = make(map[string]config.VIP, len(cfg.VIPs))
	l.vipIndex = make(map[string]int, len(cfg.VIPs))
	l.byCheck = make(map[string][]string, len(cfg.Checks))
	keep := make(map[netip.Prefix]bool)
	for i, v := range cfg.VIPs {
		l.vips[v.Name] = v
		l.vipIndex[v.Name] = i
		for _, c := range v.Checks {
			l.byCheck[c] = append(l.byCheck[c], v.Name)
		}
		for _, p := range v.Prefixes {
			keep[p] = true
		}
	}
	l.markAll()
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
			l.forgetVIP(name)
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
// instead; then it is withdrawn until the address returns. Only a VIP whose
// address went missing or came back is computed again: each address the
// loop adds is an event too, 10,000 of them at a start.
func (l *loop) addressChanged(ev addressEvent) {
	r, announced := l.announced[ev.prefix]
	if ev.present {
		if l.missing[ev.prefix] {
			delete(l.missing, ev.prefix)
			l.markPrefix(ev.prefix)
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
		l.markPrefix(ev.prefix)
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
