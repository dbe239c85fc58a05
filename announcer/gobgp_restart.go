package announcer

import (
	"context"
	"errors"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"

	"github.com/anycastd/anycastd/config"
)

// Graceful restart (RFC 4724) in the GoBGP adapter.
//
// The capability: every session advertises each of its families with the
// Restart Time bgp.graceful_restart_time (§3). GoBGP v4.8.0 takes the
// families from each AfiSafi's MpGracefulRestart and sets the Restart State
// (R) bit and, in every family, the Forwarding State (F) bit from one flag,
// GracefulRestart.LocalRestarting. anycastd sets it on the sessions of the
// first start of the speaker: its forwarding state is the VIP addresses and
// the services behind them, which do not depend on the process (a planned
// restart keeps the addresses), so F = 1 is true; and with F = 0 a router
// would drop the routes it kept at once (§4.2), the very outage graceful
// restart is for.
//
// End-of-RIB (§2): GoBGP sends it right after the routes it holds, when a
// session comes up (not restarting), or, restarting, once every peer has
// sent its own End-of-RIB or the Selection Deferral Time has run out (§4.1).
// Neither waits for anything anycastd knows: a router sends its End-of-RIB
// within milliseconds, long before the checks' first decisions, and GoBGP
// v4.8.0 exports nothing that ends the deferral early (softResetOut with
// its deferral flag is internal; ResetPeer's soft reset sends at once). So
// the nearest thing: with graceful restart the sessions are added
// administratively down, and ReleaseSessions enables them once the loop
// knows every VIP's first decision. Until then a router keeps this node's
// routes as stale (the session is not re-established, §4.2); then the
// session comes up, GoBGP sends the routes of the decided table and
// End-of-RIB (after the router's End-of-RIB, or grDeferralTime), and the
// router drops the stale routes not sent again.

// grDeferralTime is the Selection Deferral Time given to GoBGP (seconds,
// RFC 4724 §4.1; GoBGP's default is 360): anycastd selects no routes from
// its peers, so it waits for their End-of-RIB only briefly, and for a peer
// that does not come up at all only this long.
const grDeferralTime = 1

// gracefulRestart is the session's graceful-restart setting for cfg.
func gracefulRestart(cfg *config.Config) *api.GracefulRestart {
	if !cfg.BGP.GracefulRestart {
		return &api.GracefulRestart{}
	}
	return &api.GracefulRestart{
		Enabled:      true,
		RestartTime:  uint32(cfg.BGP.GracefulRestartTime / time.Second),
		DeferralTime: grDeferralTime,
	}
}

// mpGracefulRestart puts a family in the capability (RFC 4724 §3), nil
// without graceful restart.
func mpGracefulRestart(cfg *config.Config) *api.MpGracefulRestart {
	if !cfg.BGP.GracefulRestart {
		return nil
	}
	return &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
}

// held is p as AddPeer gets it: while the sessions are held, down and
// restarting. g.sessionsFor keeps p itself, so that a reload compares
// settings, not this state.
func (g *GoBGP) held(p *api.Peer) *api.Peer {
	bfd := g.heldForBFD(p.Conf.NeighborAddress)
	if !g.holding.Load() && !bfd {
		return p
	}
	q := proto.Clone(p).(*api.Peer)
	q.Conf.AdminDown = true
	if g.holding.Load() {
		q.GracefulRestart.LocalRestarting = true
	}
	return q
}

// HoldingSessions reports whether the sessions wait for ReleaseSessions.
func (g *GoBGP) HoldingSessions() bool { return g.holding.Load() }

// ReleaseSessions enables the sessions held since Start (graceful restart).
// Call it from the loop's goroutine once every VIP's first decision is
// announced or withdrawn in the speaker. After an error it can be called
// again.
func (g *GoBGP) ReleaseSessions(ctx context.Context) error {
	if !g.holding.Load() {
		return nil
	}
	var errs []error
	var bfd []string
	for addr := range g.sessionsFor {
		if g.heldForBFD(addr) {
			bfd = append(bfd, addr) // enabled once BFD is up again
			continue
		}
		if err := g.s.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
			errs = append(errs, fmt.Errorf("enabling peer %s: %w", addr, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	g.holding.Store(false)
	// A BFD hold released meanwhile saw holding still set and left the
	// session to this release.
	for _, addr := range bfd {
		if !g.heldForBFD(addr) {
			if err := g.s.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
				errs = append(errs, fmt.Errorf("enabling peer %s: %w", addr, err))
			}
		}
	}
	return errors.Join(errs...)
}

// StopForRestart stops the speaker for a planned restart (GoBGP's
// StopBgpRequest.AllowGracefulRestart): every session whose router
// negotiated graceful restart is closed without a NOTIFICATION and
// without withdrawing anything, so the router keeps the routes as stale
// for the Restart Time (RFC 4724 §4.2); a session without it is closed
// with a NOTIFICATION (Cease) as by Stop. GoBGP's BFD goroutine is left to
// the process's exit.
func (g *GoBGP) StopForRestart(ctx context.Context) error {
	g.restartStop.Store(true)
	err := g.s.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: true})
	g.stopped()
	if err != nil {
		return fmt.Errorf("stopping BGP for a restart: %w", err)
	}
	return nil
}

// GracefulRestartNegotiated reports, per established session, whether its
// router negotiated graceful restart (both sides sent the capability): only
// those keep the routes across a planned restart.
func (g *GoBGP) GracefulRestartNegotiated(ctx context.Context) (map[string]bool, error) {
	out := make(map[string]bool)
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		ok := p.GetGracefulRestart().GetPeerRestartTime() > 0
		for _, a := range p.GetAfiSafis() {
			ok = ok || a.GetMpGracefulRestart().GetState().GetReceived()
		}
		out[p.GetConf().GetNeighborAddress()] = ok
	})
	return out, err
}
