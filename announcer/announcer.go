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
	// RetryInterval is how soon a failed speaker call is retried (default 1s).
	RetryInterval time.Duration
	// Addresses manages VIP addresses on the host; nil: not managed.
	Addresses Addresses
	// Observer is told of every VIP transition (metrics); nil: nobody.
	Observer Observer
}

// Observer is told of VIP transitions. Its methods are called from the loop
// and must not block.
type Observer interface {
	VIPStateChanged(vip string, from, to routes.State, reason string)
}

// Announcer runs the reconcile loop. One goroutine (Run) owns the check
// states and the announced table; everything else sends it events and reads
// snapshots.
type Announcer struct {
	cfg     *config.Config
	speaker Speaker
	log     *slog.Logger
	opts    Options

	events   chan health.Event
	addrEv   chan addressEvent
	controls chan controlReq
	peerUp   chan struct{} // a session came up (cap 1: a wake-up, not a queue)
	done     chan struct{} // closed when Run returns
	once     sync.Once

	snap atomic.Pointer[Snapshot]
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
	}
	a.snap.Store(&Snapshot{Config: cfg})
	return a
}

// Publish hands a check transition to the loop. It is the health manager's
// publish callback: it blocks until the loop takes the event, or returns at
// once when the loop has ended.
func (a *Announcer) Publish(ev health.Event) {
	select {
	case a.events <- ev:
	case <-a.done:
	}
}

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
		checks:    make(map[string]routes.CheckStatus),
		announced: make(routes.Table),
		states:    make(map[string]routes.VIPStatus),
		missing:   make(map[netip.Prefix]bool),
		vips:      make(map[string]config.VIP),
		drains:    make(map[string]map[string]drainEntry),
		flaps:     make(map[string][]time.Time),
		held:      make(map[string]time.Time),
	}
	for _, v := range a.cfg.VIPs {
		l.vips[v.Name] = v
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	maint := time.NewTicker(time.Second) // polls maintenance files
	defer maint.Stop()
	l.pollMaintenance()
	var applied []chan error // control requests answered once reconciled
	for {
		next := l.reconcile(ctx)
		wake.Reset(time.Until(next))
		for _, resp := range applied {
			resp <- nil
		}
		applied = applied[:0]
		select {
		case <-ctx.Done():
			l.shutdown()
			return nil
		case ev := <-a.events:
			l.checks[ev.Check] = routes.CheckStatus{Status: ev.Status, LastErr: ev.Last.Err}
			// Take every event already queued before computing once.
			for drained := false; !drained; {
				select {
				case ev := <-a.events:
					l.checks[ev.Check] = routes.CheckStatus{Status: ev.Status, LastErr: ev.Last.Err}
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
				applied = append(applied, req.resp)
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
	checks    map[string]routes.CheckStatus
	announced routes.Table
	states    map[string]routes.VIPStatus
	missing   map[netip.Prefix]bool // announced VIP addresses gone from the interface
	vips      map[string]config.VIP
	drains    map[string]map[string]drainEntry // VIP ("" = node) → source → drain
	flaps     map[string][]time.Time           // recent check-driven transitions per VIP
	held      map[string]time.Time             // flapping VIPs held until then
	firstUp   time.Time                        // when the first BGP session came up
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
	if err := l.opts.Addresses.Add(ev.prefix); err != nil {
		l.log.Error("VIP address deleted from the interface and could not be restored",
			"vip", v.Name, "prefix", ev.prefix, "err", err)
		return
	}
	l.log.Warn("VIP address deleted from the interface: restored it", "vip", v.Name, "prefix", ev.prefix)
}

// reconcile computes the desired table and applies the difference. It
// returns when the loop must run again by itself: when a drain or hold-down
// ends, or soon if a speaker call failed and must be retried.
func (l *loop) reconcile(ctx context.Context) time.Time {
	now := time.Now()
	d := routes.Compute(l.cfg, l.checks, l.overrides(now))
	if l.dampen(d, now) {
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
			l.opts.Observer.VIPStateChanged(st.Name, from, st.State, st.Reason)
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
		st := l.states[r.VIP]
		l.log.Info("withdrawn", "vip", r.VIP, "prefix", p, "from", fromState(prev, st), "to", st.State, "reason", st.Reason)
		if l.opts.Addresses != nil && l.vips[r.VIP].RemoveOnWithdraw && !l.missing[p] {
			if err := l.opts.Addresses.Remove(p); err != nil {
				l.log.Error("removing VIP address after withdrawal", "vip", r.VIP, "prefix", p, "err", err)
			}
		}
	}
	for _, r := range update {
		_, replacing := l.announced[r.Prefix]
		// The address is on the interface before the route is announced.
		if !replacing && l.opts.Addresses != nil {
			if err := l.opts.Addresses.Add(r.Prefix); err != nil {
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
	return next
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
	slices.SortFunc(ann, func(x, y routes.Route) int { return comparePrefix(x.Prefix, y.Prefix) })
	reason, drained := l.nodeDrain()
	l.snap.Store(&Snapshot{VIPs: vips, Announced: ann, NodeDrained: drained, NodeReason: reason, Config: l.cfg})
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// shutdown withdraws every route, lets the UPDATEs leave, then stops BGP.
func (l *loop) shutdown() {
	ctx := context.Background()
	if n := len(l.announced); n > 0 {
		l.log.Info("shutting down: withdrawing all routes", "routes", n)
	}
	// The sessions' UPDATE counters before the withdrawals, to wait below
	// until the withdrawals have left.
	sent, err := l.speaker.SentUpdates(ctx)
	if err != nil {
		l.log.Warn("cannot read session counters; not waiting for withdrawals to leave", "err", err)
	}
	perFamily := map[config.Family]uint64{}
	ps := make([]netip.Prefix, 0, len(l.announced))
	for p := range l.announced {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, comparePrefix)
	for _, p := range ps {
		r := l.announced[p]
		if err := l.speaker.Withdraw(ctx, p); err != nil {
			l.log.Error("withdraw failed at shutdown", "vip", r.VIP, "prefix", p, "err", err)
			continue
		}
		delete(l.announced, p)
		perFamily[familyOfPrefix(p)]++
		l.log.Info("withdrawn", "vip", r.VIP, "prefix", p, "from", l.states[r.VIP].State, "to", "stopped", "reason", "anycastd is stopping")
	}
	// GoBGP v4 packs withdrawals queued together into shared UPDATEs: a
	// session sends between one UPDATE per family and one per prefix.
	least, most := make(map[netip.Addr]uint64), make(map[netip.Addr]uint64)
	for _, peer := range l.cfg.BGP.Peers {
		base, up := sent[peer.Address]
		if !up {
			continue
		}
		least[peer.Address], most[peer.Address] = base, base
		for _, f := range peer.Families {
			if n := perFamily[f]; n > 0 {
				least[peer.Address]++
				most[peer.Address] += n
			}
		}
	}
	fctx, cancel := context.WithTimeout(ctx, l.opts.FlushTimeout)
	if err := l.waitSent(fctx, least, most); err != nil {
		l.log.Warn("withdrawals may not all have left before the sessions close", "err", err)
	}
	cancel()
	if err := l.speaker.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		l.log.Error("stopping BGP", "err", err)
	}
	// Addresses go last, after the routes are gone from the network.
	if l.opts.Addresses != nil {
		if err := l.opts.Addresses.Close(); err != nil {
			l.log.Error("removing VIP addresses", "err", err)
		}
	}
	l.publish(nil)
}

// sendQuiet is how long the UPDATE counters must stand still, once every
// session has sent its least, before the withdrawals count as gone: GoBGP
// writes what it has queued back to back.
const sendQuiet = 50 * time.Millisecond

// waitSent polls the sessions' UPDATE counters until each has reached most,
// or each has reached least and none has moved for sendQuiet (a session
// that went down meanwhile no longer counts).
func (l *loop) waitSent(ctx context.Context, least, most map[netip.Addr]uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	last := make(map[netip.Addr]uint64)
	moved := time.Now()
	for {
		sent, err := l.speaker.SentUpdates(ctx)
		if err != nil {
			return err
		}
		behind, short := 0, 0
		for addr, n := range most {
			got, up := sent[addr]
			if !up || got >= n {
				continue
			}
			if got != last[addr] {
				last[addr], moved = got, time.Now()
			}
			behind++
			if got < least[addr] {
				short++
			}
		}
		if behind == 0 || (short == 0 && time.Since(moved) >= sendQuiet) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions still sending: %w", behind, ctx.Err())
		case <-t.C:
		}
	}
}

func familyOfPrefix(p netip.Prefix) config.Family {
	if p.Addr().Is4() {
		return config.FamilyIPv4
	}
	return config.FamilyIPv6
}
