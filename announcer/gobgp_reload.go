package announcer

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"

	"github.com/anycastd/anycastd/config"
)

var _ Speaker = (*GoBGP)(nil)

// Configure implements Speaker, from what is installed (g.policyFor,
// g.sessionsFor), never from a remembered "old" configuration: after a
// failed call the next one completes the move.
//
// The export policy is replaced by a new generation (sets, statements,
// policy), assigned in one step, then the previous generation is deleted;
// routes already sent are not re-evaluated, so no UPDATE results. A
// generation whose installation failed is deleted again. Established
// sessions whose export view changed (per-peer communities, vip.peers) are
// sent their routes again (resendChanged). Sessions are
// touched only where their own settings differ from the installed ones:
// added, deleted, or (settings changed) deleted and added again.
func (g *GoBGP) Configure(ctx context.Context, cfg *config.Config) error {
	g.setPeers(cfg)
	if g.policyFor != cfg {
		g.lastGen++
		gen := g.lastGen
		if err := g.installPolicies(ctx, cfg, gen, false); err != nil {
			g.deleteGeneration(ctx, gen)
			return err
		}
		g.deleteGeneration(ctx, g.gen)
		before := g.policyFor
		g.gen, g.policyFor = gen, cfg
		// Sessions this call adds or resets start from the new policy.
		fresh := map[string]bool{}
		for _, p := range cfg.BGP.Peers {
			had, ok := g.sessionsFor[p.Address.String()]
			fresh[p.Address.String()] = !ok || !proto.Equal(had, peerConfig(cfg, p))
		}
		if err := g.resendChanged(ctx, before, cfg, fresh); err != nil {
			// The session then keeps what it was sent until each
			// route is next replaced or withdrawn.
			g.logger.Warn("reload: the export policy changed, but a BGP peer could not be sent its routes again", "err", err)
		}
	}

	want := make(map[string]*api.Peer, len(cfg.BGP.Peers))
	for _, p := range cfg.BGP.Peers {
		want[p.Address.String()] = peerConfig(cfg, p)
	}
	for addr := range g.sessionsFor {
		if _, ok := want[addr]; ok {
			continue
		}
		g.logger.Info("reload: removing BGP peer: closing its session", "peer", addr)
		if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			return fmt.Errorf("deleting peer %s: %w", addr, err)
		}
		delete(g.sessionsFor, addr)
	}
	for _, p := range cfg.BGP.Peers {
		addr := p.Address.String()
		had, ok := g.sessionsFor[addr]
		switch {
		case !ok:
			g.logger.Info("reload: adding BGP peer", "peer", addr, "asn", p.ASN)
		case proto.Equal(had, want[addr]):
			continue
		default:
			g.logger.Warn("reload: BGP peer settings changed: resetting only this session", "peer", addr)
			if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
				return fmt.Errorf("deleting peer %s: %w", addr, err)
			}
			delete(g.sessionsFor, addr)
		}
		if err := g.addPeer(ctx, addr, want[addr]); err != nil {
			return err
		}
	}
	return nil
}

// addPeer adds the session with addr and records it as installed.
func (g *GoBGP) addPeer(ctx context.Context, addr string, p *api.Peer) error {
	if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: g.held(p)}); err != nil {
		return fmt.Errorf("adding peer %s: %w", addr, err)
	}
	g.sessionsFor[addr] = p
	return nil
}
