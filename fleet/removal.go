package fleet

import (
	"fmt"
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
		var entries []Entry
		mine := false
		for _, e := range v.Entries {
			if e.VIP == x.Name {
				entries = append(entries, e)
				mine = mine || (e.Site == v.Site && e.Node == v.Node && e.Announcing())
			}
		}
		others := otherSites(entries, v.Site, v.Node)
		if !mine || len(others) >= x.MinSites {
			continue
		}
		what := "no site announcing it fleet-wide"
		if n := len(others); n == 1 {
			what = fmt.Sprintf("1 site announcing it fleet-wide (%s)", others[0])
		} else if n > 1 {
			what = fmt.Sprintf("%d sites announcing it fleet-wide (%s)", n, strings.Join(others, ", "))
		}
		out = append(out, fmt.Sprintf("removing VIP %q here leaves %s, below its min_sites %d", x.Name, what, x.MinSites))
	}
	return out
}
