package fleet

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

func TestRemovalWarnings(t *testing.T) {
	old := &config.Config{VIPs: []config.VIP{{Name: "dns", MinSites: 2}, {Name: "web", MinSites: 1}, {Name: "ntp", MinSites: 1}, {Name: "api", MinSites: 0}}}
	new := &config.Config{VIPs: []config.VIP{{Name: "ntp", MinSites: 1}}}
	e := func(vip, site, node string, st routes.State) Entry {
		return Entry{VIP: vip, Site: site, Node: node, State: st}
	}
	v := View{Site: "ams1", Node: "edge1", Entries: []Entry{
		e("dns", "ams1", "edge1", routes.StateUp),
		e("dns", "ams1", "edge2", routes.StateUp), // my site stays, but counts once
		e("dns", "fra1", "edge1", routes.StateDown),
		e("web", "ams1", "edge1", routes.StateGuarded),
		e("web", "fra1", "edge1", routes.StateUp), // enough left
		e("api", "ams1", "edge1", routes.StateUp), // min_sites 0
		e("ntp", "ams1", "edge1", routes.StateUp), // kept
	}}
	want := []string{`removing VIP "dns" here leaves 1 site announcing it fleet-wide (ams1), below its min_sites 2`}
	if diff := cmp.Diff(want, RemovalWarnings(v, old, new)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Not announced here: removing it changes no count.
	v.Entries[0].State = routes.StateDown
	if got := RemovalWarnings(v, old, new); len(got) != 0 {
		t.Errorf("got %q, want none", got)
	}
}
