package metrics

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// fleetFixture registers the metrics of a node with [fleet] (web
// configured here, min_sites 2) over the view view returns.
func fleetFixture(t *testing.T, view func() *fleet.View) (*prometheus.Registry, *Metrics) {
	t.Helper()
	cfg := &config.Config{VIPs: []config.VIP{{Name: "web", Prefixes: []netip.Prefix{vip4}, MinSites: 2}}}
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "test", Sources{
		Config:   func() *config.Config { return cfg },
		Snapshot: func() announcer.Snapshot { return announcer.Snapshot{} },
		Checks:   func() []health.CheckState { return nil },
		Fleet:    view,
	}, Options{})
	return reg, m
}

const fleetNames = "anycastd_fleet_coordinator_up anycastd_fleet_vip_sites anycastd_fleet_vip_min_sites " +
	"anycastd_fleet_drain_slots_held anycastd_fleet_drain_slots_max anycastd_fleet_decision_duration_seconds"

func TestFleetGauges(t *testing.T) {
	now := time.Now()
	view := &fleet.View{
		Site: "ams1", Node: "edge1", MaxDrained: 1,
		Coordinator: fleet.Coordinator{Connected: true, Since: now},
		Entries: []fleet.Entry{
			{VIP: "dns", Site: "fra1", Node: "edge1", State: routes.StateUp},
			{VIP: "web", Site: "ams1", Node: "edge1", State: routes.StateGuarded},
			// Two nodes of fra1 differ: the site counts once, as up.
			{VIP: "web", Site: "fra1", Node: "edge1", State: routes.StateDown},
			{VIP: "web", Site: "fra1", Node: "edge2", State: routes.StateUp},
			{VIP: "web", Site: "lhr1", Node: "edge1", State: routes.StateDown},
		},
		Slots: []fleet.Slot{{Site: "lhr1", Node: "edge1", Since: now}},
	}
	var mu sync.Mutex
	reg, m := fleetFixture(t, func() *fleet.View { mu.Lock(); defer mu.Unlock(); return view })
	m.FleetDecision("guarded", 3*time.Millisecond)
	m.FleetDecision("permitted", 40*time.Millisecond)
	want := `
# HELP anycastd_fleet_coordinator_up Whether the fleet coordinator (etcd) can be reached and this node's lease is alive (1) or not (0).
# TYPE anycastd_fleet_coordinator_up gauge
anycastd_fleet_coordinator_up 1
# HELP anycastd_fleet_drain_slots_held Voluntary drain slots held fleet-wide.
# TYPE anycastd_fleet_drain_slots_held gauge
anycastd_fleet_drain_slots_held 1
# HELP anycastd_fleet_drain_slots_max Voluntary drain slots fleet-wide ([fleet] max_drained; 0: no limit).
# TYPE anycastd_fleet_drain_slots_max gauge
anycastd_fleet_drain_slots_max 1
# HELP anycastd_fleet_vip_min_sites The VIP's min_sites at this node: health-driven withdrawals never leave fewer sites announcing it.
# TYPE anycastd_fleet_vip_min_sites gauge
anycastd_fleet_vip_min_sites{vip="web"} 2
# HELP anycastd_fleet_vip_sites Sites publishing the VIP, by state, as this node sees the fleet; a site whose nodes differ counts once, in its best state (up, degraded, guarded, draining, held, down, disabled).
# TYPE anycastd_fleet_vip_sites gauge
anycastd_fleet_vip_sites{state="degraded",vip="dns"} 0
anycastd_fleet_vip_sites{state="degraded",vip="web"} 0
anycastd_fleet_vip_sites{state="disabled",vip="dns"} 0
anycastd_fleet_vip_sites{state="disabled",vip="web"} 0
anycastd_fleet_vip_sites{state="down",vip="dns"} 0
anycastd_fleet_vip_sites{state="down",vip="web"} 1
anycastd_fleet_vip_sites{state="draining",vip="dns"} 0
anycastd_fleet_vip_sites{state="draining",vip="web"} 0
anycastd_fleet_vip_sites{state="guarded",vip="dns"} 0
anycastd_fleet_vip_sites{state="guarded",vip="web"} 1
anycastd_fleet_vip_sites{state="held",vip="dns"} 0
anycastd_fleet_vip_sites{state="held",vip="web"} 0
anycastd_fleet_vip_sites{state="up",vip="dns"} 1
anycastd_fleet_vip_sites{state="up",vip="web"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), strings.Fields(fleetNames)[:5]...); err != nil {
		t.Error(err)
	}
	// The announcing sites (up, degraded, guarded) agree with the view.
	if ann, _ := view.Sites("web"); ann != 2 {
		t.Fatalf("view: %d sites announce web", ann)
	}

	wantHist := `
# HELP anycastd_fleet_decision_duration_seconds How long the fleet guard's floor decisions took (lock, read, write, unlock), by outcome: guarded, permitted, coordinator_lost.
# TYPE anycastd_fleet_decision_duration_seconds histogram
`
	var b strings.Builder
	for _, o := range []struct {
		name  string
		le    float64 // the first bucket holding the one observation; 0: none
		sum   string
		count int
	}{{"coordinator_lost", 0, "0", 0}, {"guarded", .005, "0.003", 1}, {"permitted", .05, "0.04", 1}} {
		for _, le := range fleetDecisionBuckets {
			n := 0
			if o.le != 0 && le >= o.le {
				n = 1
			}
			b.WriteString(bucketLine(o.name, le, n))
		}
		b.WriteString(bucketLine(o.name, 0, o.count))
		b.WriteString(`anycastd_fleet_decision_duration_seconds_sum{outcome="` + o.name + `"} ` + o.sum + "\n")
		b.WriteString(`anycastd_fleet_decision_duration_seconds_count{outcome="` + o.name + `"} ` + strconv.Itoa(o.count) + "\n")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantHist+b.String()), "anycastd_fleet_decision_duration_seconds"); err != nil {
		t.Error(err)
	}

	// The coordinator lost shows at the next scrape; a nil view sends none
	// of the gauges.
	mu.Lock()
	view = &fleet.View{Coordinator: fleet.Coordinator{Err: "context deadline exceeded"}}
	mu.Unlock()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP anycastd_fleet_coordinator_up Whether the fleet coordinator (etcd) can be reached and this node's lease is alive (1) or not (0).
# TYPE anycastd_fleet_coordinator_up gauge
anycastd_fleet_coordinator_up 0
`), "anycastd_fleet_coordinator_up"); err != nil {
		t.Errorf("coordinator lost: %v", err)
	}
	mu.Lock()
	view = nil
	mu.Unlock()
	if n, err := testutil.GatherAndCount(reg, strings.Fields(fleetNames)[:5]...); err != nil || n != 0 {
		t.Errorf("a nil view: %d fleet gauge series (%v), want none", n, err)
	}
}

// Without [fleet] no anycastd_fleet_* series exists, and FleetDecision is
// harmless.
func TestNoFleetNoSeries(t *testing.T) {
	reg, m, _ := fixture(t)
	m.FleetDecision("guarded", time.Millisecond)
	var nilM *Metrics
	nilM.FleetDecision("guarded", time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "anycastd_fleet_") {
			t.Errorf("without [fleet]: %s", mf.GetName())
		}
	}
}

// The fleet series pass the linter, and a guarded VIP shows in
// anycastd_vip_state (routes.States names it).
func TestFleetLintAndGuardedState(t *testing.T) {
	reg, m := fleetFixture(t, func() *fleet.View { return &fleet.View{} })
	m.FleetDecision("coordinator_lost", 2*time.Second)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	reg, _, snap := fixture(t)
	snap.VIPs[0].State = routes.StateGuarded
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP anycastd_vip_state The VIP's state: one series per state, 1 for the current one.
# TYPE anycastd_vip_state gauge
anycastd_vip_state{state="degraded",vip="web"} 0
anycastd_vip_state{state="disabled",vip="web"} 0
anycastd_vip_state{state="down",vip="web"} 0
anycastd_vip_state{state="draining",vip="web"} 0
anycastd_vip_state{state="guarded",vip="web"} 1
anycastd_vip_state{state="held",vip="web"} 0
anycastd_vip_state{state="up",vip="web"} 0
`), "anycastd_vip_state"); err != nil {
		t.Error(err)
	}
}

func bucketLine(outcome string, le float64, n int) string {
	bound := "+Inf"
	if le != 0 {
		bound = strconv.FormatFloat(le, 'g', -1, 64)
	}
	return `anycastd_fleet_decision_duration_seconds_bucket{outcome="` + outcome + `",le="` + bound + `"} ` + strconv.Itoa(n) + "\n"
}
