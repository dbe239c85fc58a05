package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/anycastd/anycastd/config"
)

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
	slices.SortFunc(ps, netip.Prefix.Compare)
	// One batch: the withdrawals share UPDATEs.
	done := speakerBatch(ps, func(ps []netip.Prefix) error { return l.speaker.Withdraw(ctx, ps...) },
		func(p netip.Prefix, err error) {
			l.log.Error("withdraw failed at shutdown", "vip", l.announced[p].VIP, "prefix", p, "err", err)
		})
	for _, p := range done {
		r := l.announced[p]
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
	l.flushHeld(ctx) // graceful restart: sessions still held since the start
	if err := l.speaker.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		l.log.Error("stopping BGP", "err", err)
	}
	// Addresses go last, after the routes are gone from the network.
	if l.opts.Addresses != nil {
		if err := l.opts.Addresses.Close(); err != nil {
			l.log.Error("removing VIP addresses", "err", err)
		}
	}
	l.status = nil
	l.publish()
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
