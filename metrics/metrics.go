// Package metrics exposes anycastd's state to Prometheus.
//
// Gauges that mirror state (VIP states, announced prefixes, check and peer
// status) are read from the owners' snapshots at scrape time, so no second
// copy of that state exists. Counters and histograms that count events
// (transitions, probe results) are updated by the owners through the
// observer methods below.
package metrics

import (
	"context"
	"net/netip"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

const namespace = "anycastd"

// Sources are the snapshots the collector reads at scrape time.
type Sources struct {
	Config   func() *config.Config
	Snapshot func() announcer.Snapshot
	Checks   func() []health.CheckState
	Peers    func(ctx context.Context) ([]announcer.PeerStatus, error)
	// Fleet gives the fleet guard's view ([fleet]; fleet.Guard.View); nil:
	// no [fleet], and no anycastd_fleet_* series is registered. A nil view
	// at a scrape sends none of the fleet gauges.
	Fleet func() *fleet.View
}

// Metrics holds anycastd's event-driven metrics and registers a collector
// for its state gauges.
type Metrics struct {
	series          *series // per-check and per-VIP event counts (series.go)
	peerEstablished *prometheus.CounterVec
	reloadOK        prometheus.Gauge
	reloadTime      prometheus.Gauge
	bfd             *bfdMetrics              // bfd.go
	fleetDecision   *prometheus.HistogramVec // fleet.go; nil without [fleet]
}

// Options are New's choices.
type Options struct {
	// CheckDurationHistogram makes anycastd_check_duration_seconds a
	// histogram (13 buckets, 15 series a check); false: a summary without
	// quantiles, only _sum and _count (2 series a check). [metrics]
	// check_duration_histogram.
	CheckDurationHistogram bool
}

// checkDurationBuckets are the histogram's upper bounds, in seconds.
var checkDurationBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New registers anycastd's metrics, Go and process collectors and build
// info on reg, with state gauges read from src.
func New(reg prometheus.Registerer, version string, src Sources, opts Options) *Metrics {
	m := &Metrics{
		series: newSeries(opts.CheckDurationHistogram),
		peerEstablished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "peer_established_transitions_total",
			Help: "Times the BGP session reached Established.",
		}, []string{"peer"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "Whether the last configuration load succeeded (1) or was refused (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully, as a Unix time.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "anycastd's version and the Go version it was built with; value 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.bfd = newBFDMetrics(reg)
	if src.Fleet != nil {
		m.fleetDecision = registerFleet(reg, src)
	}
	reg.MustRegister(m.peerEstablished,
		m.reloadOK, m.reloadTime, build, &stateCollector{src: src, series: m.series},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// VIPChanged counts a VIP transition.
func (m *Metrics) VIPChanged(ev announcer.VIPEvent) {
	m.series.transition(ev)
}

// PeersConfigured starts the per-session counters of the configured peers
// at 0, so a session that never came up still has its series (a rate or
// an alert on it sees 0, not nothing). Call it at start and after each
// reload.
func (m *Metrics) PeersConfigured(cfg *config.Config) {
	for _, p := range cfg.BGP.Peers {
		m.peerEstablished.WithLabelValues(p.Address.String())
	}
}

// PeerChanged counts sessions reaching Established.
func (m *Metrics) PeerChanged(ev announcer.PeerEvent) {
	if ev.Established() {
		m.peerEstablished.WithLabelValues(ev.Address.String()).Inc()
	}
}

// ProbeResult records one health probe: its outcome and its latency (in
// seconds, in anycastd_check_duration_seconds). Safe for concurrent use;
// it does not allocate once the check has recorded a probe.
func (m *Metrics) ProbeResult(check string, typ config.CheckType, r health.Result) {
	m.series.probe(check, typ, r)
}

// ConfigLoaded records the outcome of a configuration load or reload.
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(at.UnixNano()) / 1e9)
}

// stateCollector reads state gauges from their owners at scrape time, and
// sends the per-check and per-VIP event series, first dropping those of
// checks and VIPs a reload removed.
type stateCollector struct {
	src    Sources
	series *series
}

var (
	descVIPState = prometheus.NewDesc(namespace+"_vip_state",
		"The VIP's state: one series per state, 1 for the current one.", []string{"vip", "state"}, nil)
	descAnnounced = prometheus.NewDesc(namespace+"_vip_announced",
		"Whether the VIP prefix is announced (1) or not (0).", []string{"vip", "prefix"}, nil)
	descLastTransition = prometheus.NewDesc(namespace+"_vip_last_transition_timestamp_seconds",
		"When the VIP last changed state, as a Unix time.", []string{"vip"}, nil)
	descCheckUp = prometheus.NewDesc(namespace+"_check_up",
		"Whether the health check is up (1) or not (0: down, or not yet risen).", []string{"check", "type"}, nil)
	descPeerUp = prometheus.NewDesc(namespace+"_peer_up",
		"Whether the BGP session is Established (1) or not (0).", []string{"peer", "peer_asn"}, nil)
	descPeerPrefixes = prometheus.NewDesc(namespace+"_peer_prefixes_advertised",
		"VIP prefixes advertised on the session.", []string{"peer"}, nil)
	descPeerMaxPrefixes = prometheus.NewDesc(namespace+"_peer_max_prefixes_exceeded_total",
		"Times the session was closed because the peer sent more than max_received_prefixes in one family.", []string{"peer"}, nil)
	descDraining = prometheus.NewDesc(namespace+"_draining",
		"Whether the whole node is drained (1: draining, then withdrawn until undrained) or not (0).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVIPState, descAnnounced, descLastTransition,
		descCheckUp, descPeerUp, descPeerPrefixes, descPeerMaxPrefixes, descDraining} {
		ch <- d
	}
	c.series.describe(ch)
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.src.Config()
	snap := c.src.Snapshot()
	announced := make(map[netip.Prefix]bool, len(snap.Announced))
	perFamily := map[config.Family]int{}
	for _, r := range snap.Announced {
		announced[r.Prefix] = true
		if r.Prefix.Addr().Is4() {
			perFamily[config.FamilyIPv4]++
		} else {
			perFamily[config.FamilyIPv6]++
		}
	}
	for _, v := range snap.VIPs {
		for _, s := range routes.States {
			ch <- prometheus.MustNewConstMetric(descVIPState, prometheus.GaugeValue, b2f(v.State == s), v.Name, string(s))
		}
		if !v.Since.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastTransition, prometheus.GaugeValue, float64(v.Since.UnixNano())/1e9, v.Name)
		}
	}
	for _, v := range cfg.VIPs {
		for _, p := range v.Prefixes {
			ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, b2f(announced[p]), v.Name, p.String())
		}
	}
	var checks []health.CheckState
	read := false
	c.series.sweep(cfg, func() []health.CheckState {
		checks, read = c.src.Checks(), true
		return checks
	})
	if !read {
		checks = c.src.Checks() // another scrape is sweeping
	}
	for _, s := range checks {
		ch <- prometheus.MustNewConstMetric(descCheckUp, prometheus.GaugeValue, b2f(s.Status == health.StatusUp), s.Name, string(s.Type))
	}
	c.series.collect(ch)
	if c.src.Peers != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		peers, err := c.src.Peers(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descPeerUp, err)
		}
		for _, p := range peers {
			addr := p.Address.String()
			ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, b2f(p.Established()), addr, strconv.FormatUint(uint64(p.ASN), 10))
			n := 0
			if p.Established() {
				for _, pc := range cfg.BGP.Peers {
					if pc.Address == p.Address {
						for _, f := range pc.Families {
							n += perFamily[f]
						}
					}
				}
			}
			ch <- prometheus.MustNewConstMetric(descPeerPrefixes, prometheus.GaugeValue, float64(n), addr)
			ch <- prometheus.MustNewConstMetric(descPeerMaxPrefixes, prometheus.CounterValue, float64(p.MaxPrefixesExceeded), addr)
		}
	}
	ch <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, b2f(snap.NodeDrained))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
