package announcer

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"

	"github.com/anycastd/anycastd/config"
)

// Reconfigure implements Speaker. The export policy is replaced by a new
// generation (sets, statements, policy), assigned in one step, then the old
// generation is deleted; routes already sent are not re-evaluated, so no
// UPDATE results. Sessions are touched only where their own settings
// changed: added, deleted, or (settings changed) deleted and added again.
func (g *GoBGP) Reconfigure(ctx context.Context, old, new *config.Config) error {
	oldGen := g.gen
	if err := g.installPolicies(ctx, new, oldGen+1, false); err != nil {
		return err
	}
	g.deleteGeneration(ctx, old, oldGen)
	g.setPeers(new)

	olds := make(map[string]*api.Peer)
	for _, p := range old.BGP.Peers {
		olds[p.Address.String()] = peerConfig(old, p)
	}
	for _, p := range new.BGP.Peers {
		addr := p.Address.String()
		want := peerConfig(new, p)
		had, ok := olds[addr]
		delete(olds, addr)
		switch {
		case !ok:
			g.logger.Info("reload: adding BGP peer", "peer", addr, "asn", p.ASN)
		case proto.Equal(had, want):
			continue
		default:
			g.logger.Warn("reload: BGP peer settings changed: resetting only this session", "peer", addr)
			if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
				return fmt.Errorf("deleting peer %s: %w", addr, err)
			}
		}
		if err := g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: want}); err != nil {
			return fmt.Errorf("adding peer %s: %w", addr, err)
		}
	}
	for addr := range olds {
		g.logger.Info("reload: removing BGP peer: closing its session", "peer", addr)
		if err := g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			return fmt.Errorf("deleting peer %s: %w", addr, err)
		}
	}
	return nil
}

// deleteGeneration removes the export policy of generation gen and its sets.
// Failures are logged only: a leftover unassigned policy does no harm.
func (g *GoBGP) deleteGeneration(ctx context.Context, cfg *config.Config, gen int) {
	plan := buildPolicies(cfg, gen)
	if err := g.s.DeletePolicy(ctx, &api.DeletePolicyRequest{
		Policy: &api.Policy{Name: plan.export.Name}, PreserveStatements: false, All: true,
	}); err != nil {
		g.logger.Warn("reload: deleting the previous export policy", "policy", plan.export.Name, "err", err)
	}
	for _, s := range plan.sets {
		if err := g.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
			DefinedSet: &api.DefinedSet{DefinedType: s.DefinedType, Name: s.Name}, All: true,
		}); err != nil {
			g.logger.Warn("reload: deleting the previous defined set", "set", s.Name, "err", err)
		}
	}
}
