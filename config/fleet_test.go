package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const fleetBase = `
[bgp]
asn = 65001
router_id = "198.18.1.2"
[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
[[check]]
name = "web"
type = "tcp"
address = "127.0.0.1:80"
[[vip]]
name = "web"
prefixes = ["203.0.113.1/32"]
checks = ["web"]
[[vip]]
name = "dns"
prefixes = ["203.0.113.2/32"]
checks = ["web"]
min_sites = 0
`

func TestFleetDefaults(t *testing.T) {
	old := hostname
	hostname = func() (string, error) { return "edge1.ams1.example.net", nil }
	defer func() { hostname = old }()
	cfg, err := Parse([]byte(fleetBase + `
[fleet]
etcd_endpoints = ["http://198.18.100.1:2379", "http://[2001:db8::1]:2379"]
site = "ams1"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Fleet{EtcdEndpoints: []string{"http://198.18.100.1:2379", "http://[2001:db8::1]:2379"}, Site: "ams1", Node: "edge1",
		KeyPrefix: "/anycastd/", OnCoordinatorLost: "hold", LeaseTTL: 10 * time.Second, Timeout: 2 * time.Second}
	if diff := cmp.Diff(want, cfg.Fleet); diff != "" {
		t.Errorf("[fleet] (-want +got):\n%s", diff)
	}
	if cfg.VIPs[0].MinSites != 1 || cfg.VIPs[1].MinSites != 0 {
		t.Errorf("min_sites = %d, %d; want 1 (the default with [fleet]) and 0 (set)", cfg.VIPs[0].MinSites, cfg.VIPs[1].MinSites)
	}

	noFleet, err := Parse([]byte(strings.Replace(fleetBase, "min_sites = 0\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if noFleet.Fleet != nil || noFleet.VIPs[0].MinSites != 0 {
		t.Errorf("without [fleet]: Fleet %v, min_sites %d; want nil, 0", noFleet.Fleet, noFleet.VIPs[0].MinSites)
	}
}

func TestFleetReload(t *testing.T) {
	parse := func(fleet, minSites string) *Config {
		t.Helper()
		cfg, err := Parse([]byte(strings.Replace(fleetBase, "min_sites = 0", minSites, 1) + fleet))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const base = "[fleet]\netcd_endpoints = [\"http://198.18.100.1:2379\"]\nsite = \"ams1\"\nnode = \"edge1\"\n"
	tests := []struct {
		name     string
		old, new *Config
		want     string
		refused  bool
	}{
		{"site needs a restart", parse(base, "min_sites = 0"), parse(strings.Replace(base, "ams1", "ams2", 1), "min_sites = 0"),
			`! fleet: fleet.site ams1 -> ams2 needs a restart; a reload is refused`, true},
		{"max_drained and on_coordinator_lost apply", parse(base, "min_sites = 0"), parse(base+"max_drained = 2\non_coordinator_lost = \"local\"\n", "min_sites = 0"),
			`~ fleet: fleet.on_coordinator_lost hold -> local, fleet.max_drained 0 -> 2`, false},
		{"adding [fleet] needs a restart", parse("", ""), parse(base, ""),
			"! fleet: [fleet] added: needs a restart; a reload is refused\n" +
				`~ vip "web": min_sites 0 -> 1: its state is computed again at once; an UPDATE goes out only if the state changes; the fleet guard takes its decision again with min_sites 1` + "\n" +
				`~ vip "dns": min_sites 0 -> 1: its state is computed again at once; an UPDATE goes out only if the state changes; the fleet guard takes its decision again with min_sites 1`, true},
		{"min_sites", parse(base, "min_sites = 0"), parse(base, "min_sites = 2"),
			`~ vip "dns": min_sites 0 -> 2: its state is computed again at once; an UPDATE goes out only if the state changes; the fleet guard takes its decision again with min_sites 2`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Compare(tt.old, tt.new)
			if got := d.String(); got != tt.want {
				t.Errorf("diff:\n got %s\nwant %s", got, tt.want)
			}
			if got := len(d.Refused()) > 0; got != tt.refused {
				t.Errorf("refused = %v, want %v", got, tt.refused)
			}
		})
	}
}
