package fleet

import (
	"context"
	"log/slog"
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
}

// New returns the guard of this node (cfg.Site, cfg.Node) over store.
func New(cfg *config.Fleet, store Store, o Options) *Guard {
	return &Guard{cfg: cfg, store: store, o: o}
}

// Run runs the guard until ctx is done. An unreachable store does not stop
// it: it reports the coordinator lost and keeps trying. On return the
// node's lease is revoked, so its entries and drain slot vanish at once.
func (g *Guard) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Engage asks whether vip, whose checks want it withdrawn for a
// health-driven reason, may be withdrawn without leaving fewer than
// minSites sites announcing it. The verdict comes through
// Options.OnVerdict with the returned sequence number, and again whenever
// the fleet changes the answer, until Disengage or the next Engage of vip.
func (g *Guard) Engage(vip string, minSites int) (seq uint64) { return 0 }

// Disengage ends the guard's watch over vip's withdrawal (its checks pass
// again, it failed definitely, it was drained or removed).
func (g *Guard) Disengage(vip string) {}

// Report publishes vip's state at this node (coalesced and batched; the
// latest report wins).
func (g *Guard) Report(vip string, st routes.State, since time.Time, reason string) {}

// Forget removes this node's entry of vip (no longer configured).
func (g *Guard) Forget(vip string) {}

// RequestDrainSlot asks for one of the fleet's max_drained drain slots
// for a voluntary drain; OnDrainSlot says when it is granted (at once
// when there is no limit). Asking again while waiting or holding one is a
// no-op.
func (g *Guard) RequestDrainSlot(reason string) {}

// ReleaseDrainSlot gives the slot back, or stops waiting for one.
func (g *Guard) ReleaseDrainSlot() {}

// SetConfig applies a reload's [fleet]: max_drained, on_coordinator_lost
// and timeout take effect; the other keys need a restart (the caller
// refuses a reload changing them).
func (g *Guard) SetConfig(cfg *config.Fleet) {}

// View returns the fleet as seen now.
func (g *Guard) View() View { return View{Site: g.cfg.Site, Node: g.cfg.Node, MaxDrained: g.cfg.MaxDrained} }

// WatchView returns the view and a channel closed when it changes.
func (g *Guard) WatchView() (View, <-chan struct{}) { return g.View(), make(chan struct{}) }

// Store is the coordinator behind a Guard (etcd: NewEtcdStore).
type Store interface{}
