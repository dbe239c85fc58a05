package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/anycastd/anycastd/bfd"
	"github.com/anycastd/anycastd/config"
)

// BFD's coupling to BGP, owned by anycastd (RFC 5882 §4.3): a peer's BFD
// session going down from Up closes that BGP session (the router does the
// same on its side) and keeps it down; once BFD is Up again, the session
// comes back after a hold-down that grows with each flap, so a flapping
// link cannot loop the BGP session. A peer that takes the BFD session
// down on purpose (AdminDown) is not a failure (RFC 5882 §3.2), nor is a
// peer that replaces its session by a new one (Change.PeerNewSession): the
// BGP session stays.

// The BFD hold-down: bfdHoldDownBase after the first flap within
// bfdFlapWindow, doubled for each further one, at most bfdHoldDownMax.
//
// A Down the peer signals (Diag 3: it is alive and talking, and resets
// BGP on its side if it means it) takes the BGP session down here only if
// BFD is not Up again within bfdPeerDownGrace: FRR's bgpd replaces its BFD
// session once the BGP session is up (its local address now known), and
// the old one says Down first. A Down we detect ourselves (the peer fell
// silent) holds BGP at once.
const (
	bfdPeerDownGrace = 2 * time.Second
	bfdHoldDownBase  = 2 * time.Second
	bfdHoldDownMax   = 2 * time.Minute
	bfdFlapWindow    = 5 * time.Minute
)

// bgpHolder closes a BGP session and keeps it down, or lets it come up
// again (announcer.GoBGP.HoldForBFD).
type bgpHolder interface {
	HoldForBFD(ctx context.Context, addr netip.Addr, hold bool, reason string) error
}

// bfdCoupler applies BFD changes to the BGP sessions. One goroutine (run)
// owns its state; changes arrive through a buffered channel.
type bfdCoupler struct {
	log     *slog.Logger
	speaker bgpHolder
	observe func(bfd.Change) // metrics and events; nil: none
	changes chan bfd.Change
	forgets chan netip.Addr // peers whose BFD session was removed
	done    chan struct{}

	// Owned by run.
	held    map[netip.Addr]bool        // BGP held down for BFD
	flaps   map[netip.Addr][]time.Time // BFD Up -> Down, within bfdFlapWindow
	release map[netip.Addr]*time.Timer // pending releases after the hold-down
	due     chan netip.Addr            // a release timer fired
	grace   map[netip.Addr]*time.Timer // pending holds after a Down the peer signalled
	graced  chan netip.Addr            // a grace timer fired
}

func newBFDCoupler(log *slog.Logger, speaker bgpHolder, observe func(bfd.Change)) *bfdCoupler {
	return &bfdCoupler{
		log: log, speaker: speaker, observe: observe,
		changes: make(chan bfd.Change, 256),
		forgets: make(chan netip.Addr, 16),
		done:    make(chan struct{}),
		held:    make(map[netip.Addr]bool),
		flaps:   make(map[netip.Addr][]time.Time),
		release: make(map[netip.Addr]*time.Timer),
		due:     make(chan netip.Addr, 16),
		grace:   make(map[netip.Addr]*time.Timer),
		graced:  make(chan netip.Addr, 16),
	}
}

// changed is the BFD manager's OnChange: it hands c to run. It may wait
// (the manager calls it from a goroutine of its own, behind a bounded
// queue, never from the packet loop), so no change is lost; once run has
// ended it returns at once.
func (b *bfdCoupler) changed(c bfd.Change) {
	select {
	case b.changes <- c:
	case <-b.done:
	}
}

// run applies changes until ctx is done.
func (b *bfdCoupler) run(ctx context.Context) {
	defer close(b.done)
	defer func() {
		for _, t := range b.release {
			t.Stop()
		}
		for _, t := range b.grace {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-b.changes:
			b.apply(ctx, c)
		case peer := <-b.forgets:
			b.forget(ctx, peer)
		case peer := <-b.graced:
			if _, pending := b.grace[peer]; !pending {
				continue // Up again meanwhile
			}
			delete(b.grace, peer)
			b.log.Warn("BFD still down after the peer signalled it", "peer", peer.String(), "grace", bfdPeerDownGrace.String())
			b.hold(ctx, peer, true, bfd.DiagNeighborSignaledDown.String())
		case peer := <-b.due:
			if _, pending := b.release[peer]; !pending {
				continue // cancelled by a Down meanwhile
			}
			delete(b.release, peer)
			b.hold(ctx, peer, false, "BFD up for the hold-down")
		}
	}
}

// apply logs c and holds or schedules the release of its BGP session.
func (b *bfdCoupler) apply(ctx context.Context, c bfd.Change) {
	peer := c.Key.Peer
	attrs := []any{"peer", peer.String(), "from", c.From.String(), "to", c.To.String(), "diag", c.Diag.String(),
		"remote", c.Remote.String()}
	if c.Key.Multihop {
		attrs = append(attrs, "multihop", true)
	}
	if b.observe != nil {
		b.observe(c)
	}
	switch {
	case c.To == bfd.StateUp:
		b.log.Info("BFD session up", attrs...)
		b.stop(b.grace, peer)
		if b.held[peer] {
			d := b.holdDown(peer, c.Time)
			b.log.Info("BFD up again: the BGP session comes back after the hold-down", "peer", peer.String(), "hold_down", d.String())
			if t := b.release[peer]; t != nil {
				t.Stop()
			}
			b.release[peer] = time.AfterFunc(d, func() {
				select {
				case b.due <- peer:
				case <-b.done:
				}
			})
		}
	case c.To == bfd.StateAdminDown:
		b.log.Info("BFD session stopped here (removed from the peer or anycastd stopping)", attrs...)
		b.forget(ctx, peer)
	case c.From == bfd.StateUp && c.PeerNewSession:
		b.log.Info("BFD session restarted by the peer (a new session of its, not a path failure): the BGP session stays", attrs...)
	case c.From == bfd.StateUp && c.Remote == bfd.StateAdminDown:
		b.log.Info("BFD session taken down by the peer (AdminDown): the BGP session stays", attrs...)
	case c.From == bfd.StateUp && c.Diag == bfd.DiagNeighborSignaledDown:
		b.log.Warn("BFD session down, signalled by the peer: the BGP session is reset unless BFD is up again within the grace",
			append(attrs, "grace", bfdPeerDownGrace.String())...)
		b.flaps[peer] = append(b.flaps[peer], c.Time)
		b.stop(b.release, peer)
		b.stop(b.grace, peer)
		b.grace[peer] = time.AfterFunc(bfdPeerDownGrace, func() {
			select {
			case b.graced <- peer:
			case <-b.done:
			}
		})
	case c.From == bfd.StateUp:
		b.log.Warn("BFD session down", attrs...)
		b.flaps[peer] = append(b.flaps[peer], c.Time)
		b.stop(b.release, peer)
		b.stop(b.grace, peer)
		b.hold(ctx, peer, true, c.Diag.String())
	default:
		b.log.Info("BFD session state", attrs...)
	}
}

// stop cancels the timer of peer in timers, if any.
func (b *bfdCoupler) stop(timers map[netip.Addr]*time.Timer, peer netip.Addr) {
	if t := timers[peer]; t != nil {
		t.Stop()
		delete(timers, peer)
	}
}

// holdDown is how long BFD must stay Up before the BGP session of peer
// comes back: it doubles with each flap within bfdFlapWindow.
func (b *bfdCoupler) holdDown(peer netip.Addr, now time.Time) time.Duration {
	recent := b.flaps[peer][:0]
	for _, t := range b.flaps[peer] {
		if now.Sub(t) < bfdFlapWindow {
			recent = append(recent, t)
		}
	}
	b.flaps[peer] = recent
	d := bfdHoldDownBase
	for i := 1; i < len(recent) && d < bfdHoldDownMax; i++ {
		d *= 2
	}
	return min(d, bfdHoldDownMax)
}

func (b *bfdCoupler) hold(ctx context.Context, peer netip.Addr, hold bool, reason string) {
	if err := b.speaker.HoldForBFD(ctx, peer, hold, reason); err != nil {
		b.log.Error("BFD: changing the BGP session", "peer", peer.String(), "hold", hold, "err", err)
		return
	}
	if hold {
		b.held[peer] = true
	} else {
		delete(b.held, peer)
	}
}

// forgetPeer has run forget peer (a reload removed its BFD session).
func (b *bfdCoupler) forgetPeer(peer netip.Addr) {
	select {
	case b.forgets <- peer:
	case <-b.done:
	}
}

// forget drops a peer whose BFD session stopped here (AdminDown: removed
// from the peer by a reload, or anycastd stopping): a held BGP session is
// released at once.
func (b *bfdCoupler) forget(ctx context.Context, peer netip.Addr) {
	b.stop(b.release, peer)
	b.stop(b.grace, peer)
	delete(b.flaps, peer)
	if b.held[peer] {
		b.hold(ctx, peer, false, "BFD removed from the peer")
	}
}

// bfdRunner is the BFD manager and its coupling to BGP, made when the
// first peer with [bgp.peer.bfd] is configured (at start or by a reload);
// the BFD ports are bound only then.
type bfdRunner struct {
	mgr     *bfd.Manager
	coupler *bfdCoupler
	stop    context.CancelFunc
	keys    map[bfd.PeerKey]bool // the sessions set
}

// bfdKey is the session of peer p.
func bfdKey(p config.Peer) bfd.PeerKey {
	return bfd.PeerKey{Peer: p.Address, Local: p.LocalAddress, Multihop: p.MultihopTTL > 0}
}

// syncBFD makes the BFD sessions those of cfg's peers with [bgp.peer.bfd]:
// new ones start, changed timers go through a Poll sequence, removed ones
// are taken AdminDown (their BGP sessions released). The first such peer
// starts the manager. A socket that cannot be opened does not fail it:
// the manager retries and the session's status says why.
func (d *Daemon) syncBFD(cfg *config.Config) {
	d.bfdMu.Lock()
	defer d.bfdMu.Unlock()
	want := make(map[bfd.PeerKey]config.Peer)
	for _, p := range cfg.BGP.Peers {
		if p.BFD != nil {
			want[bfdKey(p)] = p
		}
	}
	if d.bfd == nil {
		if len(want) == 0 {
			return
		}
		r := &bfdRunner{keys: make(map[bfd.PeerKey]bool)}
		r.coupler = newBFDCoupler(d.log, d.speaker, func(c bfd.Change) {
			d.hub.BFDChanged(c) // anycastctl events
			d.metrics.BFDChanged(c)
		})
		// Opening a socket does not fail Set: the manager retries every
		// second and SessionStatus.Err says why (shown by anycastctl peers).
		r.mgr = bfd.NewManager(bfd.OSTransport{}, r.coupler.changed)
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		go r.coupler.run(ctx)
		d.bfd = r
		d.log.Info("BFD started", "sessions", len(want))
	}
	r := d.bfd
	for k := range r.keys {
		if _, ok := want[k]; !ok {
			r.mgr.Remove(k) // AdminDown to the peer; no Change
			r.coupler.forgetPeer(k.Peer)
			delete(r.keys, k)
		}
	}
	for k, p := range want {
		// Multihop too sends with TTL 255 (RFC 5883 §5 lets the receiver
		// bound the hops by it; FRR accepts 254 and up by default), not
		// with the BGP session's multihop_ttl.
		r.mgr.Set(k, bfd.Config{DesiredMinTx: p.BFD.MinTx, RequiredMinRx: p.BFD.MinRx, DetectMult: p.BFD.Multiplier}, 0)
		r.keys[k] = true
	}
}

// bfdSessions is the BFD sessions' status (none before the first peer
// with BFD).
func (d *Daemon) bfdSessions() []bfd.SessionStatus {
	d.bfdMu.Lock()
	defer d.bfdMu.Unlock()
	if d.bfd == nil {
		return nil
	}
	return d.bfd.mgr.Sessions()
}

// stopBFD takes every BFD session AdminDown (one packet each: the peers
// are told it is no failure, RFC 5880 §6.8.16, so a router keeping this
// node's routes for graceful restart keeps them) and stops the manager and
// the coupling (after the BGP sessions are closed).
func (d *Daemon) stopBFD() {
	d.bfdMu.Lock()
	defer d.bfdMu.Unlock()
	if d.bfd == nil {
		return
	}
	for k := range d.bfd.keys {
		d.bfd.mgr.Remove(k)
	}
	d.bfd.mgr.Close()
	d.bfd.stop()
	<-d.bfd.coupler.done
	d.bfd = nil
}
