package daemon

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
)

// fleetPart is the fleet guard of a daemon with [fleet]: the guard, its
// etcd store, and how to stop them.
type fleetPart struct {
	guard *fleet.Guard
	store *fleet.EtcdStore

	mu sync.Mutex
	up map[netip.Addr]bool // the established sessions, by peer
}

// newFleet builds the fleet guard for cfg.Fleet, wired to the announcer
// (verdicts, drain slots) and the metrics (decision times). It connects
// nothing yet: an unreachable etcd never keeps anycastd from starting.
func (d *Daemon) newFleet(cfg *config.Config, opts *announcer.Options) error {
	if cfg.Fleet == nil {
		return nil
	}
	store, err := fleet.NewEtcdStore(cfg.Fleet)
	if err != nil {
		return err
	}
	g := fleet.New(cfg.Fleet, store, fleet.Options{
		OnVerdict:   func(v fleet.Verdict) { d.ann.FleetVerdict(v) },
		OnDrainSlot: func(ev fleet.DrainSlotEvent) { d.ann.DrainSlotChanged(ev) },
		Observe: func(outcome string, took time.Duration) {
			if d.metrics != nil {
				d.metrics.FleetDecision(outcome, took)
			}
		},
		Logger: d.log,
	})
	// Until a BGP session is established this node's routes reach no
	// router: its entries count for no VIP.
	g.SetBGP(false)
	d.fleet = &fleetPart{guard: g, store: store, up: make(map[netip.Addr]bool)}
	opts.Fleet = g
	return nil
}

// fleetSessions returns what tells the guard, on every session change,
// whether any BGP session is established; nil without [fleet].
func (d *Daemon) fleetSessions() func(announcer.PeerEvent) {
	f := d.fleet
	if f == nil {
		return nil
	}
	return func(ev announcer.PeerEvent) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if ev.Established() {
			f.up[ev.Address] = true
		} else {
			delete(f.up, ev.Address)
		}
		f.guard.SetBGP(len(f.up) > 0)
	}
}

// fleetView is the metrics' and the API's view of the fleet; nil without
// [fleet].
func (d *Daemon) fleetView() *fleet.View {
	if d.fleet == nil {
		return nil
	}
	v := d.fleet.guard.View()
	return &v
}

// startFleet runs the guard until the daemon's stops run (after the
// announcer has withdrawn everything): then its lease is revoked, so this
// node's entries and drain slot vanish from the fleet at once.
func (d *Daemon) startFleet() {
	if d.fleet == nil {
		return
	}
	f := d.fleet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.guard.Run(ctx); err != nil {
			d.log.Error("fleet guard stopped", "err", err)
		}
	}()
	cfg := d.o.Config.Fleet
	d.log.Info("fleet guard started", "site", cfg.Site, "node", cfg.Node, "etcd_endpoints", cfg.EtcdEndpoints,
		"on_coordinator_lost", cfg.OnCoordinatorLost, "max_drained", cfg.MaxDrained)
	d.stops = append(d.stops, func() {
		cancel()
		<-done
		if err := f.store.Close(); err != nil {
			d.log.Debug("closing the etcd client", "err", err)
		}
	})
}

// fleetRemovalWarnings warns about the VIPs whose removal by a reload
// leaves fewer than min_sites sites announcing them fleet-wide.
func (d *Daemon) fleetRemovalWarnings(old, new *config.Config) []string {
	if d.fleet == nil {
		return nil
	}
	ws := fleet.RemovalWarnings(d.fleet.guard.View(), old, new)
	for _, w := range ws {
		d.log.Warn("reload: "+w, "warning", "fleet")
	}
	return ws
}

// reloadFleet hands the guard a reload's [fleet] (max_drained,
// on_coordinator_lost and timeout; the rest needs a restart).
func (d *Daemon) reloadFleet(cfg *config.Config) {
	if d.fleet != nil && cfg.Fleet != nil {
		d.fleet.guard.SetConfig(cfg.Fleet)
	}
}

// fleetSource is fleetView as an optional source: nil without [fleet].
func (d *Daemon) fleetSource() func() *fleet.View {
	if d.fleet == nil {
		return nil
	}
	return d.fleetView
}
