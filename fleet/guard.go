package fleet

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// Options wire a Guard to the rest of the daemon.
type Options struct {
	// OnVerdict is told every verdict on an engaged VIP, in order, from
	// the guard's goroutine (it may block briefly: the announcer's loop
	// takes it). Required.
	OnVerdict func(Verdict)
	// OnDrainSlot is told when this node's drain slot is granted, or that
	// it waits (after RequestDrainSlot). Required.
	OnDrainSlot func(DrainSlotEvent)
	// Observe, if set, is told of each decision: its outcome ("guarded",
	// "permitted", "coordinator_lost") and how long it took.
	Observe func(outcome string, took time.Duration)
	Logger  *slog.Logger
}

// Guard is the fleet guard of one node: it publishes the node's VIP
// states, keeps the fleet view from a watch, takes floor decisions under a
// per-VIP lock, and hands out drain slots. One goroutine (Run) owns its
// state; every method but Run is safe for concurrent use and never blocks
// on the store.
type Guard struct {
	cfg   *config.Fleet
	store Store
	o     Options
	log   *slog.Logger

	mu sync.Mutex
	// live: the keys SetConfig changes.
	maxDrained int
	onLost     string
	timeout    time.Duration
	seq        uint64
	reqs       []request
	// reports: coalesced Report/Forget (nil: forget) not yet taken by Run.
	reports map[string]*Entry
	// noBGP: the node has no established BGP session (SetBGP); stamped on
	// every entry written.
	noBGP bool
	// mine: this node's latest reported entries. The view shows them in
	// place of what the watch says of this node: they are the truth here,
	// even before they are written (or while etcd cannot be reached).
	mine map[string]Entry
	wake chan struct{}
	// The view: entries by VIP, then "site/node"; slots by "site/node".
	entries map[string]map[string]Entry
	slots   map[string]Slot
	coord   Coordinator
	changed chan struct{} // closed when the view changes
	snap    *View         // the sorted view, nil when stale
}

type reqKind int

const (
	reqEngage reqKind = iota
	reqDisengage
	reqDrain
	reqRelease
	reqConfig
	reqBGP // SetBGP changed the flag: every own entry is written again
)

type request struct {
	kind   reqKind
	vip    string
	min    int
	seq    uint64
	reason string
}

// New returns the guard of this node (cfg.Site, cfg.Node) over store.
// Run does not close the store: its owner does, after Run returns.
func New(cfg *config.Fleet, store Store, o Options) *Guard {
	g := &Guard{cfg: cfg, store: store, o: o, log: o.Logger,
		reports: map[string]*Entry{},
		mine:    map[string]Entry{},
		wake:    make(chan struct{}, 1),
		entries: map[string]map[string]Entry{},
		slots:   map[string]Slot{},
		changed: make(chan struct{}),
		coord:   Coordinator{Since: time.Now(), Err: "not connected yet"},
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.setLive(cfg)
	return g
}

func (g *Guard) setLive(cfg *config.Fleet) {
	g.maxDrained, g.onLost, g.timeout = cfg.MaxDrained, cfg.OnCoordinatorLost, cfg.Timeout
	if g.onLost == "" {
		g.onLost = config.CoordinatorLostHold
	}
	if g.timeout <= 0 {
		g.timeout = config.DefaultFleetTimeout
	}
}

// live returns the keys SetConfig changes.
func (g *Guard) live() (maxDrained int, onLost string, timeout time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxDrained, g.onLost, g.timeout
}

// push queues a request for Run.
func (g *Guard) push(r request) {
	g.mu.Lock()
	g.reqs = append(g.reqs, r)
	g.mu.Unlock()
	g.poke()
}

func (g *Guard) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Run runs the guard until ctx is done. An unreachable store does not stop
// it: it reports the coordinator lost and keeps trying. On return the
// node's lease is revoked, so its entries and drain slot vanish at once.
func (g *Guard) Run(ctx context.Context) error {
	r := newRunner(g, ctx)
	return r.loop()
}

// Engage asks whether vip, whose checks want it withdrawn for a
// health-driven reason, may be withdrawn without leaving fewer than
// minSites sites announcing it. The verdict comes through
// Options.OnVerdict with the returned sequence number, and again whenever
// the fleet changes the answer, until Disengage or the next Engage of vip.
func (g *Guard) Engage(vip string, minSites int) (seq uint64) {
	g.mu.Lock()
	g.seq++
	seq = g.seq
	g.reqs = append(g.reqs, request{kind: reqEngage, vip: vip, min: minSites, seq: seq})
	g.mu.Unlock()
	g.poke()
	return seq
}

// Disengage ends the guard's watch over vip's withdrawal (its checks pass
// again, it failed definitely, it was drained or removed).
func (g *Guard) Disengage(vip string) { g.push(request{kind: reqDisengage, vip: vip}) }

// Report publishes vip's state at this node (coalesced and batched; the
// latest report wins).
func (g *Guard) Report(vip string, st routes.State, since time.Time, reason string) {
	g.mu.Lock()
	e := Entry{VIP: vip, Site: g.cfg.Site, Node: g.cfg.Node, State: st, Since: since, Reason: reason}
	g.reports[vip] = &e
	g.mine[vip] = e
	g.snap = nil
	g.notifyLocked()
	g.mu.Unlock()
	g.poke()
}

// SetBGP tells the guard whether the node has at least one established
// BGP session. Without one, its entries say so (Entry.NoBGP) and count
// for no VIP, whatever their state: its routes reach no router. A guard
// starts assuming one.
func (g *Guard) SetBGP(established bool) {
	g.mu.Lock()
	changed := g.noBGP == established
	g.noBGP = !established
	if changed {
		g.reqs = append(g.reqs, request{kind: reqBGP})
		g.snap = nil
		g.notifyLocked()
	}
	g.mu.Unlock()
	if changed {
		g.poke()
	}
}

// stamp returns e with this node's BGP flag.
func (g *Guard) stamp(e Entry) Entry {
	g.mu.Lock()
	e.NoBGP = g.noBGP
	g.mu.Unlock()
	return e
}

// Forget removes this node's entry of vip (no longer configured).
func (g *Guard) Forget(vip string) {
	g.mu.Lock()
	g.reports[vip] = nil
	delete(g.mine, vip)
	g.snap = nil
	g.notifyLocked()
	g.mu.Unlock()
	g.poke()
}

// RequestDrainSlot asks for one of the fleet's max_drained drain slots
// for a voluntary drain; OnDrainSlot says when it is granted (at once
// when there is no limit). Asking again while waiting or holding one is a
// no-op.
func (g *Guard) RequestDrainSlot(reason string) { g.push(request{kind: reqDrain, reason: reason}) }

// ReleaseDrainSlot gives the slot back, or stops waiting for one.
func (g *Guard) ReleaseDrainSlot() { g.push(request{kind: reqRelease}) }

// SetConfig applies a reload's [fleet]: max_drained, on_coordinator_lost
// and timeout take effect; the other keys need a restart (the caller
// refuses a reload changing them).
func (g *Guard) SetConfig(cfg *config.Fleet) {
	g.mu.Lock()
	g.setLive(cfg)
	g.snap = nil
	g.notifyLocked()
	g.mu.Unlock()
	g.push(request{kind: reqConfig})
}

// View returns the fleet as seen now.
func (g *Guard) View() View {
	v, _ := g.WatchView()
	return v
}

// Coordinator says whether the store can be reached, without building the
// view.
func (g *Guard) Coordinator() Coordinator {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.coord
}

// WatchView returns the view and a channel closed when it changes.
func (g *Guard) WatchView() (View, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.snap == nil {
		v := viewOf(g.withMine(), g.slots)
		v.Site, v.Node, v.MaxDrained, v.Coordinator = g.cfg.Site, g.cfg.Node, g.maxDrained, g.coord
		g.snap = &v
	}
	v := *g.snap
	return v, g.changed
}

// viewOf sorts entries and slots into a View.
func viewOf(entries map[string]map[string]Entry, slots map[string]Slot) View {
	var v View
	for _, m := range entries {
		for _, e := range m {
			v.Entries = append(v.Entries, e)
		}
	}
	sort.Slice(v.Entries, func(i, j int) bool {
		a, b := v.Entries[i], v.Entries[j]
		if a.VIP != b.VIP {
			return a.VIP < b.VIP
		}
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		return a.Node < b.Node
	})
	for _, s := range slots {
		v.Slots = append(v.Slots, s)
	}
	sort.Slice(v.Slots, func(i, j int) bool {
		a, b := v.Slots[i], v.Slots[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		return a.Node < b.Node
	})
	return v
}

// withMine is the watched entries with this node's replaced by its latest
// reports (g.mu held).
func (g *Guard) withMine() map[string]map[string]Entry {
	if len(g.mine) == 0 {
		return g.entries
	}
	out := make(map[string]map[string]Entry, len(g.entries)+len(g.mine))
	for vip, m := range g.entries {
		c := make(map[string]Entry, len(m))
		for k, e := range m {
			if e.Site != g.cfg.Site || e.Node != g.cfg.Node {
				c[k] = e
			}
		}
		out[vip] = c
	}
	for vip, e := range g.mine {
		if out[vip] == nil {
			out[vip] = map[string]Entry{}
		}
		e.NoBGP = g.noBGP
		out[vip][e.Site+"/"+e.Node] = e
	}
	return out
}

// notifyLocked wakes the view's watchers (g.mu held).
func (g *Guard) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// setCoordinator records the store's reachability; it reports whether it
// changed.
func (g *Guard) setCoordinator(connected bool, err string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.coord.Connected == connected && g.coord.Err == err {
		return false
	}
	was := g.coord.Connected
	g.coord.Connected, g.coord.Err = connected, err
	if was != connected {
		g.coord.Since = time.Now()
	}
	g.snap = nil
	g.notifyLocked()
	return was != connected
}

// ReadView reads the fleet once, without a lease (for -check-config
// -diff): Coordinator.Connected says whether it could.
func ReadView(ctx context.Context, cfg *config.Fleet) (View, error) {
	v := View{Site: cfg.Site, Node: cfg.Node, MaxDrained: cfg.MaxDrained}
	s, err := NewEtcdStore(cfg)
	if err != nil {
		v.Coordinator.Err = err.Error()
		return v, err
	}
	defer s.Close()
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultFleetTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := keys{prefix: prefixOf(cfg)}
	kvs, _, err := s.Get(ctx, p.vips(), p.drains())
	if err != nil {
		v.Coordinator = Coordinator{Since: time.Now(), Err: err.Error()}
		return v, err
	}
	entries, slots := map[string]map[string]Entry{}, map[string]Slot{}
	for _, kv := range kvs {
		p.apply(entries, slots, kv)
	}
	w := viewOf(entries, slots)
	v.Entries, v.Slots = w.Entries, w.Slots
	v.Coordinator = Coordinator{Connected: true, Since: time.Now()}
	return v, nil
}
