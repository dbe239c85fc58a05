package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/routes"
)

// The fleet guard's series ([fleet]): gauges read from the guard's view at
// scrape time (Sources.Fleet), and the decisions' latency. Without [fleet]
// none is registered.

var (
	descFleetCoordinatorUp = prometheus.NewDesc(namespace+"_fleet_coordinator_up",
		"Whether the fleet coordinator (etcd) can be reached and this node's lease is alive (1) or not (0).", nil, nil)
	descFleetVIPSites = prometheus.NewDesc(namespace+"_fleet_vip_sites",
		"Sites publishing the VIP, by state, as this node sees the fleet; a site whose nodes differ counts once, "+
			"in its best state (up, degraded, guarded, draining, held, down, disabled).", []string{"vip", "state"}, nil)
	descFleetVIPMinSites = prometheus.NewDesc(namespace+"_fleet_vip_min_sites",
		"The VIP's min_sites at this node: health-driven withdrawals never leave fewer sites announcing it.", []string{"vip"}, nil)
	descFleetSlotsHeld = prometheus.NewDesc(namespace+"_fleet_drain_slots_held",
		"Voluntary drain slots held fleet-wide.", nil, nil)
	descFleetSlotsMax = prometheus.NewDesc(namespace+"_fleet_drain_slots_max",
		"Voluntary drain slots fleet-wide ([fleet] max_drained; 0: no limit).", nil, nil)
)

// fleetOutcomes are the outcome label values of
// anycastd_fleet_decision_duration_seconds, each present from the start.
var fleetOutcomes = []string{"guarded", "permitted", "coordinator_lost"}

// fleetDecisionBuckets are the decision histogram's upper bounds, in
// seconds: a lock, a read and a write on etcd, up to [fleet] timeout.
var fleetDecisionBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// siteRank orders states for a site's best one: announcing states first.
var siteRank = map[routes.State]int{
	routes.StateUp: 0, routes.StateDegraded: 1, routes.StateGuarded: 2, routes.StateDraining: 3,
	routes.StateHeld: 4, routes.StateDown: 5, routes.StateDisabled: 6,
}

func rank(s routes.State) int {
	if r, ok := siteRank[s]; ok {
		return r
	}
	return len(siteRank)
}

// registerFleet registers the fleet series on reg, reading the view from
// src.Fleet at each scrape; it returns the decision histogram.
func registerFleet(reg prometheus.Registerer, src Sources) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "fleet_decision_duration_seconds",
		Help:    "How long the fleet guard's floor decisions took (lock, read, write, unlock), by outcome: guarded, permitted, coordinator_lost.",
		Buckets: fleetDecisionBuckets,
	}, []string{"outcome"})
	for _, o := range fleetOutcomes {
		h.WithLabelValues(o)
	}
	reg.MustRegister(h, &fleetCollector{src: src})
	return h
}

// FleetDecision records one fleet guard decision: its outcome (one of
// fleetOutcomes) and how long it took. It has the signature of
// fleet.Options.Observe. Safe for concurrent use; without [fleet]
// (Sources.Fleet nil) or on a nil *Metrics it does nothing.
func (m *Metrics) FleetDecision(outcome string, took time.Duration) {
	if m == nil || m.fleetDecision == nil {
		return
	}
	m.fleetDecision.WithLabelValues(outcome).Observe(took.Seconds())
}

// fleetCollector reads the fleet gauges from the view at scrape time.
type fleetCollector struct{ src Sources }

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFleetCoordinatorUp, descFleetVIPSites, descFleetVIPMinSites,
		descFleetSlotsHeld, descFleetSlotsMax} {
		ch <- d
	}
}

// Collect sends nothing while the view is nil. The VIPs are those
// configured here and those other sites publish; every VIP has a series
// for each state of routes.States (0 when no site is in it), plus any
// other state a site publishes.
func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.src.Fleet()
	if v == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descFleetCoordinatorUp, prometheus.GaugeValue, b2f(v.Coordinator.Connected))
	ch <- prometheus.MustNewConstMetric(descFleetSlotsHeld, prometheus.GaugeValue, float64(len(v.Slots)))
	ch <- prometheus.MustNewConstMetric(descFleetSlotsMax, prometheus.GaugeValue, float64(v.MaxDrained))

	// best[vip][site] is the site's best state of the VIP.
	best := map[string]map[string]routes.State{}
	for _, e := range v.Entries {
		sites := best[e.VIP]
		if sites == nil {
			sites = map[string]routes.State{}
			best[e.VIP] = sites
		}
		if s, ok := sites[e.Site]; !ok || rank(e.State) < rank(s) {
			sites[e.Site] = e.State
		}
	}
	configured := map[string]bool{}
	if c.src.Config != nil {
		for _, vc := range c.src.Config().VIPs {
			configured[vc.Name] = true
			ch <- prometheus.MustNewConstMetric(descFleetVIPMinSites, prometheus.GaugeValue, float64(vc.MinSites), vc.Name)
		}
	}
	for name := range best {
		configured[name] = true
	}
	for name := range configured {
		counts := make(map[routes.State]int, len(routes.States))
		for _, s := range routes.States {
			counts[s] = 0
		}
		for _, s := range best[name] {
			counts[s]++
		}
		for s, n := range counts {
			ch <- prometheus.MustNewConstMetric(descFleetVIPSites, prometheus.GaugeValue, float64(n), name, string(s))
		}
	}
}
