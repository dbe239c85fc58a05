package fleet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// RemovalWarnings says, for each VIP of old that new no longer has, whose
// removal at this node (v.Site, v.Node) would leave fewer than its
// min_sites sites announcing it fleet-wide, how many would be left, e.g.
// `removing VIP "dns" here leaves 1 site announcing it fleet-wide (fra1),
// below its min_sites 2`. A VIP this node does not announce now is left out
// (removing it changes no count). A reload or -check-config -diff warns
// with them; they refuse nothing.
func RemovalWarnings(v View, old, new *config.Config) []string {
	keep := make(map[string]bool, len(new.VIPs))
	for _, x := range new.VIPs {
		keep[x.Name] = true
	}
	var out []string
	for _, x := range old.VIPs {
		if keep[x.Name] || x.MinSites == 0 {
			continue
		}
		mine := false
		sites := map[string]bool{}
		for _, e := range v.Entries {
			if e.VIP != x.Name || !e.Announcing() {
				continue
			}
			if e.Site == v.Site && e.Node == v.Node {
				mine = true
				continue
			}
			sites[e.Site] = true
		}
		if !mine || len(sites) >= x.MinSites {
			continue
		}
		names := make([]string, 0, len(sites))
		for s := range sites {
			names = append(names, s)
		}
		slices.Sort(names)
		what := "no site announcing it fleet-wide"
		switch len(names) {
		case 0:
		case 1:
			what = fmt.Sprintf("1 site announcing it fleet-wide (%s)", names[0])
		default:
			what = fmt.Sprintf("%d sites announcing it fleet-wide (%s)", len(names), strings.Join(names, ", "))
		}
		out = append(out, fmt.Sprintf("removing VIP %q here leaves %s, below its min_sites %d", x.Name, what, x.MinSites))
	}
	return out
}
