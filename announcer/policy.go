package announcer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
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

var families = []config.Family{config.FamilyIPv4, config.FamilyIPv6}

// policyPlan is everything the speaker installs so that only locally
// originated paths enter the RIB and only configured VIP prefixes leave it.
type policyPlan struct {
	sets     []*api.DefinedSet
	import_  *api.Policy
	export   *api.Policy
	assigned []*api.PolicyAssignment
	// prepends are the prepend values with a prefix set in this
	// generation (see prependSet); Announce keeps their members current.
	prepends []int
}

// prependSet names the prefix set of generation gen holding the prefixes of
// family fam announced with prepend n.
func prependSet(n int, fam config.Family, gen int) string {
	return fmt.Sprintf("anycastd-prepend-%d-%s-g%d", n, fam, gen)
}

// buildPolicies derives the import and export policy from the config.
// prepends are the prepend values of the paths announced now, by prefix
// (Route.Prepend; prefixes without prepend left out).
//
// Import: accept paths of route type LOCAL (what anycastd adds itself); the
// default action rejects everything a peer sends.
//
// Export: a path leaves only if its prefix is exactly one of the configured
// VIP prefixes; everything else is rejected by default. The statements, in
// order of evaluation:
//
//  1. vip.peers: a VIP is rejected towards the sessions it does not list
//     (REJECT ends the evaluation).
//  2. Prepends, for eBGP peers only: per prepend value n, one prefix set
//     per family holding the prefixes announced with n (the speaker moves
//     a prefix between sets before it adds the path); a modification-only
//     statement prepends the local AS n more times (GoBGP prepends it once
//     itself towards eBGP peers). A path never carries the prepends itself:
//     GoBGP sends nothing carrying an iBGP peer's own AS to it, not even a
//     withdrawal (RFC 4271 §9.1.2 loop detection, applied by GoBGP on
//     output), so a prepended path would never reach, or never leave, an
//     iBGP router.
//  3. Per-peer communities and large communities, added (modification only).
//  4. Per peer and family, an explicit next hop, accepting.
//  5. Per family, the VIP prefixes, accepting.
//
// LOCAL_PREF needs no statement: GoBGP strips it towards eBGP peers after
// the export policy (RFC 4271 §5.1.5).
func buildPolicies(cfg *config.Config, gen int, prepends map[netip.Prefix]int) policyPlan {
	sfx := fmt.Sprintf("-g%d", gen)
	var plan policyPlan
	addSet := func(s *api.DefinedSet) string {
		if !hasSet(plan.sets, s.Name) {
			plan.sets = append(plan.sets, s)
		}
		return s.Name
	}
	prefixSet := func(name string, ps []netip.Prefix) string {
		return addSet(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name, Prefixes: apiPrefixes(ps)})
	}
	// neighborSet must not be called with no peers: GoBGP's empty
	// neighbor set matches every neighbor.
	neighborSet := func(name string, peers []config.Peer) string {
		list := make([]string, len(peers))
		for i, p := range peers {
			list[i] = neighborEntry(p.Address)
		}
		return addSet(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: name, List: list})
	}
	peerSet := func(i int) string {
		return neighborSet(fmt.Sprintf("anycastd-peer-%d%s", i, sfx), cfg.BGP.Peers[i:i+1])
	}

	byFam := map[config.Family][]netip.Prefix{}
	for _, v := range cfg.VIPs {
		for _, p := range v.Prefixes {
			byFam[famOf(p)] = append(byFam[famOf(p)], p)
		}
	}
	famSets := map[config.Family]string{}
	for _, fam := range families {
		if len(byFam[fam]) > 0 {
			name := setVIPsIPv4
			if fam == config.FamilyIPv6 {
				name = setVIPsIPv6
			}
			famSets[fam] = prefixSet(name+sfx, byFam[fam])
		}
	}

	plan.import_ = &api.Policy{Name: policyImport, Statements: []*api.Statement{{
		Name:       stmtImportAll,
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}
	plan.export = &api.Policy{Name: policyExport + sfx}
	stmt := func(name string, c *api.Conditions, a *api.Actions) {
		plan.export.Statements = append(plan.export.Statements, &api.Statement{Name: name + sfx, Conditions: c, Actions: a})
	}

	// 1. vip.peers: one statement per family and distinct peer list.
	groups := map[string]int{}
	for _, v := range cfg.VIPs {
		var not []config.Peer
		for _, p := range cfg.BGP.Peers {
			if !v.SentTo(p) {
				not = append(not, p)
			}
		}
		if len(not) == 0 {
			continue
		}
		key := fmt.Sprint(v.Peers)
		k, ok := groups[key]
		if !ok {
			k = len(groups)
			groups[key] = k
		}
		nset := neighborSet(fmt.Sprintf("anycastd-not-%d%s", k, sfx), not)
		for _, fam := range families {
			ps := famPrefixes(v.Prefixes, fam)
			if len(ps) == 0 {
				continue
			}
			name := fmt.Sprintf("anycastd-only-%d-%s%s", k, fam, sfx)
			if s := findSet(plan.sets, name); s != nil {
				s.Prefixes = append(s.Prefixes, apiPrefixes(ps)...)
				continue
			}
			stmt(fmt.Sprintf("anycastd-only-%d-%s", k, fam), &api.Conditions{
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: prefixSet(name, ps)},
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
			}, &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT})
		}
	}

	// 2. Prepends towards eBGP peers.
	plan.prepends = prependValues(cfg, prepends)
	var ebgp []config.Peer
	for _, p := range cfg.BGP.Peers {
		if !p.Internal(cfg.BGP.ASN) {
			ebgp = append(ebgp, p)
		}
	}
	for _, n := range plan.prepends {
		for _, fam := range families {
			var ps []netip.Prefix
			for p, m := range prepends {
				if m == n && famOf(p) == fam {
					ps = append(ps, p)
				}
			}
			slices.SortFunc(ps, netip.Prefix.Compare)
			set := prefixSet(prependSet(n, fam, gen), ps)
			if len(ebgp) == 0 {
				continue
			}
			stmt(fmt.Sprintf("anycastd-prepend-%d-%s", n, fam), &api.Conditions{
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set},
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: neighborSet("anycastd-ebgp"+sfx, ebgp)},
			}, &api.Actions{AsPrepend: &api.AsPrependAction{Asn: cfg.BGP.ASN, Repeat: uint32(n)}})
		}
	}

	// 3. Per-peer communities.
	for i, p := range cfg.BGP.Peers {
		if len(p.Communities) == 0 && len(p.LargeCommunities) == 0 {
			continue
		}
		a := &api.Actions{}
		if len(p.Communities) > 0 {
			a.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: communityStrings(p.Communities)}
		}
		if len(p.LargeCommunities) > 0 {
			a.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: largeStrings(p.LargeCommunities)}
		}
		stmt(fmt.Sprintf("anycastd-communities-%d", i), &api.Conditions{
			NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: peerSet(i)},
		}, a)
	}

	// 4. Next hops.
	for i, p := range cfg.BGP.Peers {
		for _, nh := range []struct {
			fam  config.Family
			addr netip.Addr
		}{{config.FamilyIPv4, p.NextHopIPv4}, {config.FamilyIPv6, p.NextHopIPv6}} {
			set, ok := famSets[nh.fam]
			if !nh.addr.IsValid() || !ok {
				continue
			}
			stmt(fmt.Sprintf("anycastd-nexthop-%d-%s", i, nh.fam), &api.Conditions{
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set},
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: peerSet(i)},
			}, &api.Actions{
				RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
				Nexthop:     &api.NexthopAction{Address: nh.addr.String()},
			})
		}
	}
	// 5. The VIP prefixes.
	for _, fam := range families {
		if set, ok := famSets[fam]; ok {
			stmt("anycastd-export-"+string(fam), &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set}},
				&api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT})
		}
	}

	plan.assigned = []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT, Policies: []*api.Policy{{Name: policyImport}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT},
		{Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: policyExport + sfx}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT},
	}
	return plan
}

// prependValues are the prepend values (above 0) of the config's VIPs, up
// degraded and guarded, and of the paths announced now, sorted.
func prependValues(cfg *config.Config, announced map[netip.Prefix]int) []int {
	var out []int
	add := func(n int) {
		if n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, v := range cfg.VIPs {
		add(v.Prepend)
		if v.Degraded != nil {
			add(v.Degraded.Prepend)
		}
		if v.MinSites > 0 {
			add(routes.GuardedPrependOf(v)) // the fleet guard may keep it announced
		}
	}
	for _, n := range announced {
		add(n)
	}
	slices.Sort(out)
	return out
}

// exportView is what the export policy sends peer p beyond the paths
// themselves: its communities and which of prefixes it is not sent. Two
// configurations with the same view of a peer send it the same UPDATEs.
func exportView(cfg *config.Config, p config.Peer, prefixes map[netip.Prefix]bool) string {
	var b strings.Builder
	fmt.Fprint(&b, p.Communities, p.LargeCommunities)
	for _, v := range cfg.VIPs {
		if v.SentTo(p) {
			continue
		}
		for _, x := range v.Prefixes {
			if prefixes[x] {
				fmt.Fprint(&b, " ", x)
			}
		}
	}
	return b.String()
}

// neighborEntry is a neighbor set entry for addr (a host prefix; a zone is
// left out, as GoBGP's neighbor sets have none).
func neighborEntry(a netip.Addr) string {
	a = a.WithZone("")
	return netip.PrefixFrom(a, a.BitLen()).String()
}

func famOf(p netip.Prefix) config.Family {
	if p.Addr().Is4() {
		return config.FamilyIPv4
	}
	return config.FamilyIPv6
}

func famPrefixes(ps []netip.Prefix, fam config.Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if famOf(p) == fam {
			out = append(out, p)
		}
	}
	return out
}

func apiPrefixes(ps []netip.Prefix) []*api.Prefix {
	out := make([]*api.Prefix, len(ps))
	for i, p := range ps {
		out[i] = apiPrefix(p)
	}
	return out
}

// apiPrefix matches exactly p.
func apiPrefix(p netip.Prefix) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())}
}

func communityStrings(cs []config.Community) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprint(uint32(c)) // GoBGP parses a decimal community
	}
	return out
}

func largeStrings(ls []config.LargeCommunity) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2)
	}
	return out
}

func hasSet(sets []*api.DefinedSet, name string) bool { return findSet(sets, name) != nil }

func findSet(sets []*api.DefinedSet, name string) *api.DefinedSet {
	for _, s := range sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}
