package announcer

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
)

// Names of the defined sets and policies anycastd installs in GoBGP. The
// export side carries a generation suffix: a reload installs a new
// generation, points the global export assignment at it, then deletes the
// old one, so no path is ever evaluated against a half-updated policy.
const (
	setVIPsIPv4   = "anycastd-vips-ipv4"
	setVIPsIPv6   = "anycastd-vips-ipv6"
	policyImport  = "anycastd-import"
	policyExport  = "anycastd-export"
	stmtImportAll = "anycastd-import-local"
)

// policyPlan is everything the speaker installs so that only locally
// originated paths enter the RIB and only configured VIP prefixes leave it.
type policyPlan struct {
	sets     []*api.DefinedSet
	import_  *api.Policy
	export   *api.Policy
	assigned []*api.PolicyAssignment
}

// buildPolicies derives the import and export policy from the config.
//
// Import: accept paths of route type LOCAL (what anycastd adds itself); the
// default action rejects everything a peer sends.
//
// Export: a path leaves only if its prefix is exactly one of the configured
// VIP prefixes; everything else is rejected by default. Where a peer has an
// explicit next hop for a family, a statement matching that peer and family
// sets it before accepting.
func buildPolicies(cfg *config.Config, gen int) policyPlan {
	sfx := fmt.Sprintf("-g%d", gen)
	var v4, v6 []*api.Prefix
	for _, v := range cfg.VIPs {
		for _, p := range v.Prefixes {
			e := &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())}
			if p.Addr().Is4() {
				v4 = append(v4, e)
			} else {
				v6 = append(v6, e)
			}
		}
	}
	var plan policyPlan
	famSets := map[config.Family]string{}
	if len(v4) > 0 {
		plan.sets = append(plan.sets, &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: setVIPsIPv4 + sfx, Prefixes: v4})
		famSets[config.FamilyIPv4] = setVIPsIPv4 + sfx
	}
	if len(v6) > 0 {
		plan.sets = append(plan.sets, &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: setVIPsIPv6 + sfx, Prefixes: v6})
		famSets[config.FamilyIPv6] = setVIPsIPv6 + sfx
	}

	plan.import_ = &api.Policy{Name: policyImport, Statements: []*api.Statement{{
		Name:       stmtImportAll,
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}

	plan.export = &api.Policy{Name: policyExport + sfx}
	for i, p := range cfg.BGP.Peers {
		for _, nh := range []struct {
			fam  config.Family
			addr netip.Addr
		}{{config.FamilyIPv4, p.NextHopIPv4}, {config.FamilyIPv6, p.NextHopIPv6}} {
			set, ok := famSets[nh.fam]
			if !nh.addr.IsValid() || !ok {
				continue
			}
			nset := fmt.Sprintf("anycastd-peer-%d%s", i, sfx)
			if !hasSet(plan.sets, nset) {
				plan.sets = append(plan.sets, &api.DefinedSet{
					DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: nset,
					List: []string{netip.PrefixFrom(p.Address, p.Address.BitLen()).String()},
				})
			}
			plan.export.Statements = append(plan.export.Statements, &api.Statement{
				Name: fmt.Sprintf("anycastd-nexthop-%d-%s%s", i, nh.fam, sfx),
				Conditions: &api.Conditions{
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set},
					NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
				},
				Actions: &api.Actions{
					RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
					Nexthop:     &api.NexthopAction{Address: nh.addr.String()},
				},
			})
		}
	}
	for _, fam := range []config.Family{config.FamilyIPv4, config.FamilyIPv6} {
		set, ok := famSets[fam]
		if !ok {
			continue
		}
		plan.export.Statements = append(plan.export.Statements, &api.Statement{
			Name:       "anycastd-export-" + string(fam) + sfx,
			Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set}},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		})
	}

	plan.assigned = []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT, Policies: []*api.Policy{{Name: policyImport}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT},
		{Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: policyExport + sfx}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT},
	}
	return plan
}

func hasSet(sets []*api.DefinedSet, name string) bool {
	for _, s := range sets {
		if s.Name == name {
			return true
		}
	}
	return false
}
