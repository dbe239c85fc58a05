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
// generation whose installation failed is deleted again. Sessions are
// touched only where their own settings differ from the installed ones:
// added, deleted, or (settings changed) deleted and added again.
func (g *GoBGP) Configure(ctx context.Context, cfg *config.Config) error {
	g.setPeers(cfg)
	if g.policyFor != cfg {
		g.lastGen++
		gen := g.lastGen
		if err := g.installPolicies(ctx, cfg, gen, false); err != nil {
			g.deleteGeneration(ctx, cfg, gen)
			return err
		}
		g.deleteGeneration(ctx, g.policyFor, g.gen)
		g.gen, g.policyFor = gen, cfg
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
	if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("adding peer %s: %w", addr, err)
	}
	g.sessionsFor[addr] = p
	return nil
}

// deleteGeneration removes the export policy of generation gen and its sets.
// Failures are logged only: a leftover unassigned policy does no harm.
func (g *GoBGP) deleteGeneration(ctx context.Context, cfg *config.Config, gen int) {
	plan := buildPolicies(cfg, gen)
	if err := g.s.DeletePolicy(ctx, &api.DeletePolicyRequest{
		Policy: &api.Policy{Name: plan.export.Name}, PreserveStatements: false, All: true,
	}); err != nil {
		g.logger.Warn("reload: deleting an export policy", "policy", plan.export.Name, "err", err)
	}
	for _, s := range plan.sets {
		if err := g.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
			DefinedSet: &api.DefinedSet{DefinedType: s.DefinedType, Name: s.Name}, All: true,
		}); err != nil {
			g.logger.Warn("reload: deleting a defined set", "set", s.Name, "err", err)
		}
	}
}
