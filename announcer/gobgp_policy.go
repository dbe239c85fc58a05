package announcer

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
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

// prependMove is one prefix's move between prepend sets: from old to n
// (0: no set).
type prependMove struct {
	prefix netip.Prefix
	old, n int
}

// setPrepends moves each route's prefix to the prepend set of its Prepend
// value (0: none) of the installed export policy generation, before its
// path is added: GoBGP evaluates the export policy when it sends a path, so
// the path then goes to eBGP peers with n more copies of the local AS. A
// path already sent is not evaluated again until it is replaced. The moves
// are grouped: one call per set and direction, whatever the batch's size.
func (g *GoBGP) setPrepends(ctx context.Context, rs []routes.Route) error {
	g.mu.Lock()
	var moves []prependMove
	for _, r := range rs {
		if old := g.prepends[r.Prefix]; old != r.Prepend {
			moves = append(moves, prependMove{r.Prefix, old, r.Prepend})
		}
	}
	g.mu.Unlock()
	return g.movePrepends(ctx, moves)
}

// clearPrepends takes withdrawn prefixes out of their prepend sets.
func (g *GoBGP) clearPrepends(ctx context.Context, prefixes []netip.Prefix) error {
	g.mu.Lock()
	var moves []prependMove
	for _, p := range prefixes {
		if old := g.prepends[p]; old != 0 {
			moves = append(moves, prependMove{p, old, 0})
		}
	}
	g.mu.Unlock()
	return g.movePrepends(ctx, moves)
}

// prependSetKey names a prepend set of the installed generation.
type prependSetKey struct {
	n   int
	fam config.Family
}

func cmpSetKey(a, b prependSetKey) int {
	if c := cmp.Compare(a.n, b.n); c != 0 {
		return c
	}
	return cmp.Compare(a.fam, b.fam)
}

func (g *GoBGP) movePrepends(ctx context.Context, moves []prependMove) error {
	if len(moves) == 0 {
		return nil
	}
	plan, ok := g.policies[g.gen]
	if !ok {
		return fmt.Errorf("no export policy installed")
	}
	del := map[prependSetKey][]*api.Prefix{}
	add := map[prependSetKey][]*api.Prefix{}
	for _, m := range moves {
		if m.n > 0 && !slices.Contains(plan.prepends, m.n) {
			// Routes come from the installed configuration, whose values
			// all have a set.
			return fmt.Errorf("%s: prepend %d has no set in export policy generation %d", m.prefix, m.n, g.gen)
		}
		fam := famOf(m.prefix)
		if m.old > 0 {
			del[prependSetKey{m.old, fam}] = append(del[prependSetKey{m.old, fam}], apiPrefix(m.prefix))
		}
		if m.n > 0 {
			add[prependSetKey{m.n, fam}] = append(add[prependSetKey{m.n, fam}], apiPrefix(m.prefix))
		}
	}
	set := func(k prependSetKey, ps []*api.Prefix) *api.DefinedSet {
		return &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: prependSet(k.n, k.fam, g.gen), Prefixes: ps}
	}
	for _, k := range slices.SortedFunc(maps.Keys(del), cmpSetKey) {
		if err := g.s.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set(k, del[k]), All: false}); err != nil {
			return fmt.Errorf("removing %d prefixes from the prepend %d set: %w", len(del[k]), k.n, err)
		}
	}
	g.mu.Lock()
	for _, m := range moves {
		if m.old > 0 {
			delete(g.prepends, m.prefix)
		}
	}
	g.mu.Unlock()
	for _, k := range slices.SortedFunc(maps.Keys(add), cmpSetKey) {
		if err := g.s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set(k, add[k])}); err != nil {
			return fmt.Errorf("adding %d prefixes to the prepend %d set: %w", len(add[k]), k.n, err)
		}
	}
	g.mu.Lock()
	if g.prepends == nil {
		g.prepends = make(map[netip.Prefix]int)
	}
	for _, m := range moves {
		if m.n > 0 {
			g.prepends[m.prefix] = m.n
		}
	}
	g.mu.Unlock()
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

// resendToEBGP sends every established eBGP peer its routes again (a soft
// reset out, no session reset), after an announced path's prepend changed:
// prepends are applied by the export policy, not carried in the path, so
// GoBGP does not send a path equal to the one it replaces. iBGP peers get
// no prepends and need nothing.
func (g *GoBGP) resendToEBGP(ctx context.Context) {
	cfg := g.policyFor
	if cfg == nil {
		return
	}
	for _, p := range cfg.BGP.Peers {
		if p.Internal(cfg.BGP.ASN) {
			continue
		}
		if err := g.s.ResetPeer(ctx, &api.ResetPeerRequest{
			Address: p.Address.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT,
		}); err != nil {
			// Not established: it gets the new prepend when it comes up.
			g.logger.Debug("prepend changed: sending routes again", "peer", p.Address, "err", err)
		}
	}
}
