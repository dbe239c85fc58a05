package announcer

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
)

// installPolicies installs generation gen of the policies for cfg, built
// with the prepend set memberships of the paths announced now, and assigns
// them. Policies of other generations are left to the caller.
func (g *GoBGP) installPolicies(ctx context.Context, cfg *config.Config, gen int, withImport bool) error {
	g.mu.Lock()
	plan := buildPolicies(cfg, gen, g.prepends)
	g.mu.Unlock()
	if g.policies == nil {
		g.policies = make(map[int]policyPlan)
	}
	// Recorded first, so that a failed installation is deleted whole.
	g.policies[gen] = plan
	for _, s := range plan.sets {
		if err := g.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: s}); err != nil {
			return fmt.Errorf("adding defined set %s: %w", s.Name, err)
		}
	}
	policies := []*api.Policy{plan.export}
	assigned := plan.assigned[1:]
	if withImport {
		policies = append(policies, plan.import_)
		assigned = plan.assigned
	}
	for _, p := range policies {
		if err := g.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p, ReferExistingStatements: false}); err != nil {
			return fmt.Errorf("adding policy %s: %w", p.Name, err)
		}
	}
	for _, a := range assigned {
		if err := g.s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assigning policy %s: %w", a.Policies[0].Name, err)
		}
	}
	return nil
}

// deleteGeneration removes the export policy of generation gen and its sets.
// Failures are logged only: a leftover unassigned policy does no harm.
func (g *GoBGP) deleteGeneration(ctx context.Context, gen int) {
	plan, ok := g.policies[gen]
	if !ok {
		return
	}
	delete(g.policies, gen)
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

// setPrepend moves prefix to the prepend set of value n (0: none) of the
// installed export policy generation, before its path is added: GoBGP
// evaluates the export policy when it sends a path, so the path then goes
// to eBGP peers with n more copies of the local AS. A path already sent is
// not evaluated again until it is replaced.
func (g *GoBGP) setPrepend(ctx context.Context, prefix netip.Prefix, n int) error {
	g.mu.Lock()
	old := g.prepends[prefix]
	g.mu.Unlock()
	if old == n {
		return nil
	}
	plan, ok := g.policies[g.gen]
	if !ok {
		return fmt.Errorf("no export policy installed")
	}
	if n > 0 && !slices.Contains(plan.prepends, n) {
		// Routes come from the installed configuration, whose values
		// all have a set.
		return fmt.Errorf("prepend %d has no set in export policy generation %d", n, g.gen)
	}
	set := func(v int) *api.DefinedSet {
		return &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX,
			Name:        prependSet(v, famOf(prefix), g.gen),
			Prefixes:    []*api.Prefix{apiPrefix(prefix)},
		}
	}
	if old > 0 {
		if err := g.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set(old), All: false}); err != nil {
			return fmt.Errorf("removing %s from the prepend %d set: %w", prefix, old, err)
		}
		g.mu.Lock()
		delete(g.prepends, prefix)
		g.mu.Unlock()
	}
	if n > 0 {
		if err := g.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set(n)}); err != nil {
			return fmt.Errorf("adding %s to the prepend %d set: %w", prefix, n, err)
		}
		g.mu.Lock()
		if g.prepends == nil {
			g.prepends = make(map[netip.Prefix]int)
		}
		g.prepends[prefix] = n
		g.mu.Unlock()
	}
	return nil
}

// resendChanged sends every established session whose export view (per-peer
// communities, the VIPs it is not sent: exportView) differs between the
// configurations before and after its routes again, through the new
// export policy (a soft reset out, RFC 2918's outbound side: GoBGP
// re-evaluates the whole Adj-RIB-Out, sends what passes and withdraws
// what it sent before and the policy now rejects). Routes already sent are
// not re-evaluated otherwise. Sessions added or reset by this reload are
// left out: they start from the new policy. Only prefixes of both
// configurations count: a VIP added or removed is announced or withdrawn
// by the loop anyway.
func (g *GoBGP) resendChanged(ctx context.Context, before, after *config.Config, fresh map[string]bool) error {
	if before == nil {
		return nil
	}
	both := map[netip.Prefix]bool{}
	for _, v := range before.VIPs {
		for _, p := range v.Prefixes {
			both[p] = true
		}
	}
	inAfter := map[netip.Prefix]bool{}
	for _, v := range after.VIPs {
		for _, p := range v.Prefixes {
			inAfter[p] = true
		}
	}
	maps.DeleteFunc(both, func(p netip.Prefix, _ bool) bool { return !inAfter[p] })
	old := make(map[netip.Addr]config.Peer, len(before.BGP.Peers))
	for _, p := range before.BGP.Peers {
		old[p.Address] = p
	}
	for _, p := range after.BGP.Peers {
		o, ok := old[p.Address]
		if !ok || fresh[p.Address.String()] || exportView(before, o, both) == exportView(after, p, both) {
			continue
		}
		g.logger.Info("reload: the export policy changed for a BGP peer: sending it its routes again (no session reset)", "peer", p.Address)
		if err := g.s.ResetPeer(ctx, &api.ResetPeerRequest{
			Address: p.Address.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT,
		}); err != nil {
			return fmt.Errorf("sending peer %s its routes again: %w", p.Address, err)
		}
	}
	return nil
}
