package metrics

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

var (
	vip4 = netip.MustParsePrefix("203.0.113.42/32")
	vip6 = netip.MustParsePrefix("2001:db8:42::1/128")
	peer = netip.MustParseAddr("198.18.1.1")
)

// fixture is one VIP with two prefixes, one announced, one check, one peer.
func fixture(t *testing.T, opts ...Options) (*prometheus.Registry, *Metrics, *announcer.Snapshot) {
	t.Helper()
	cfg := &config.Config{
		BGP:  config.BGP{ASN: 65001, Peers: []config.Peer{{Address: peer, ASN: 65000, Families: []config.Family{config.FamilyIPv4}}}},
		VIPs: []config.VIP{{Name: "web", Prefixes: []netip.Prefix{vip4, vip6}}},
	}
	snap := &announcer.Snapshot{
		VIPs:      []routes.VIPStatus{{Name: "web", State: routes.StateUp, Since: time.Now().Add(-time.Minute)}},
		Announced: []routes.Route{{Prefix: vip4, VIP: "web"}},
	}
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, "test", Sources{
		Config:   func() *config.Config { return cfg },
		Snapshot: func() announcer.Snapshot { return *snap },
		Checks: func() []health.CheckState {
			return []health.CheckState{{Name: "web", Type: config.CheckHTTP, Status: health.StatusUp}}
		},
		Peers: func(context.Context) ([]announcer.PeerStatus, error) {
			return []announcer.PeerStatus{{Address: peer, ASN: 65000, State: "established"}}, nil
		},
	}, append(opts, Options{})[0])
	return reg, m, snap
}

func TestMetricsLint(t *testing.T) {
	reg, m, _ := fixture(t)
	m.VIPChanged(announcer.VIPEvent{VIP: "web", From: routes.StateDown, To: routes.StateUp})
	m.ProbeResult("web", config.CheckHTTP, health.Result{Latency: 3 * time.Millisecond})
	m.PeerChanged(announcer.PeerEvent{Address: peer, From: "openconfirm", To: "established"})
	m.ConfigLoaded(true, time.Now())
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestStateGauges(t *testing.T) {
	reg, _, snap := fixture(t)
	want := `
# HELP anycastd_vip_announced Whether the VIP prefix is announced (1) or not (0).
# TYPE anycastd_vip_announced gauge
anycastd_vip_announced{prefix="2001:db8:42::1/128",vip="web"} 0
anycastd_vip_announced{prefix="203.0.113.42/32",vip="web"} 1
# HELP anycastd_vip_state The VIP's state: one series per state, 1 for the current one.
# TYPE anycastd_vip_state gauge
anycastd_vip_state{state="degraded",vip="web"} 0
anycastd_vip_state{state="disabled",vip="web"} 0
anycastd_vip_state{state="down",vip="web"} 0
anycastd_vip_state{state="draining",vip="web"} 0
anycastd_vip_state{state="guarded",vip="web"} 0
anycastd_vip_state{state="held",vip="web"} 0
anycastd_vip_state{state="up",vip="web"} 1
# HELP anycastd_check_up Whether the health check is up (1) or not (0: down, or not yet risen).
# TYPE anycastd_check_up gauge
anycastd_check_up{check="web",type="http"} 1
# HELP anycastd_peer_up Whether the BGP session is Established (1) or not (0).
# TYPE anycastd_peer_up gauge
anycastd_peer_up{peer="198.18.1.1",peer_asn="65000"} 1
# HELP anycastd_peer_prefixes_advertised VIP prefixes advertised on the session.
# TYPE anycastd_peer_prefixes_advertised gauge
anycastd_peer_prefixes_advertised{peer="198.18.1.1"} 1
`
	names := []string{"anycastd_vip_announced", "anycastd_vip_state", "anycastd_check_up", "anycastd_peer_up", "anycastd_peer_prefixes_advertised"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// After the VIP goes down, the gauges follow the snapshot.
	snap.VIPs[0].State = routes.StateDown
	snap.Announced = nil
	want = `
# HELP anycastd_vip_state The VIP's state: one series per state, 1 for the current one.
# TYPE anycastd_vip_state gauge
anycastd_vip_state{state="degraded",vip="web"} 0
anycastd_vip_state{state="disabled",vip="web"} 0
anycastd_vip_state{state="down",vip="web"} 1
anycastd_vip_state{state="draining",vip="web"} 0
anycastd_vip_state{state="guarded",vip="web"} 0
anycastd_vip_state{state="held",vip="web"} 0
anycastd_vip_state{state="up",vip="web"} 0
# HELP anycastd_peer_prefixes_advertised VIP prefixes advertised on the session.
# TYPE anycastd_peer_prefixes_advertised gauge
anycastd_peer_prefixes_advertised{peer="198.18.1.1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "anycastd_vip_state", "anycastd_peer_prefixes_advertised"); err != nil {
		t.Error(err)
	}
}

func TestEventCounters(t *testing.T) {
	_, m, _ := fixture(t)
	m.VIPChanged(announcer.VIPEvent{VIP: "web", From: "none", To: routes.StateDown})
	m.VIPChanged(announcer.VIPEvent{VIP: "web", From: routes.StateDown, To: routes.StateUp})
	m.VIPChanged(announcer.VIPEvent{VIP: "web", From: routes.StateUp, To: routes.StateDown})
	if got := m.series.vipCount("web", routes.StateDown); got != 2 {
		t.Errorf("transitions to down = %v, want 2", got)
	}
	m.ProbeResult("web", config.CheckHTTP, health.Result{Latency: time.Millisecond})
	m.ProbeResult("web", config.CheckHTTP, health.Result{Latency: time.Millisecond, Err: "status 503, want 200-299"})
	m.ProbeResult("web", config.CheckHTTP, health.Result{Latency: time.Second, Err: "timeout after 1s", Kind: health.KindTimeout})
	for outcome, want := range map[string]float64{"pass": 1, "fail": 1, "timeout": 1} {
		if got := m.series.resultCount("web", config.CheckHTTP, outcome); got != want {
			t.Errorf("results{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	m.ConfigLoaded(false, time.Now())
	if got := testutil.ToFloat64(m.reloadOK); got != 0 {
		t.Errorf("config_last_reload_successful = %v after a refused reload, want 0", got)
	}
}

func TestVIPLastTransition(t *testing.T) {
	reg, _, snap := fixture(t)
	// The value is the time of the change, not its age: it is the same at
	// every scrape.
	snap.VIPs[0].Since = time.Unix(1700000000, 500_000_000)
	want := `
# HELP anycastd_vip_last_transition_timestamp_seconds When the VIP last changed state, as a Unix time.
# TYPE anycastd_vip_last_transition_timestamp_seconds gauge
anycastd_vip_last_transition_timestamp_seconds{vip="web"} 1700000000.5
`
	for range 2 {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "anycastd_vip_last_transition_timestamp_seconds"); err != nil {
			t.Error(err)
		}
	}

	// A VIP whose Since the announcer has not set has no series.
	snap.VIPs[0].Since = time.Time{}
	if n, err := testutil.GatherAndCount(reg, "anycastd_vip_last_transition_timestamp_seconds"); err != nil || n != 0 {
		t.Errorf("series with a zero Since = %d (err %v), want 0", n, err)
	}
}

// A configured session that never came up still has its counter, at 0.
func TestPeerCounterStartsAtZero(t *testing.T) {
	reg, m, _ := fixture(t)
	m.PeersConfigured(&config.Config{BGP: config.BGP{Peers: []config.Peer{{Address: peer}}}})
	want := `
# HELP anycastd_peer_established_transitions_total Times the BGP session reached Established.
# TYPE anycastd_peer_established_transitions_total counter
anycastd_peer_established_transitions_total{peer="` + peer.String() + `"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "anycastd_peer_established_transitions_total"); err != nil {
		t.Error(err)
	}
}

// A probe's duration is a summary (sum and count, 2 series a check) unless
// check_duration_histogram asks for the 13 buckets.
func TestCheckDurationSeries(t *testing.T) {
	for _, tc := range []struct {
		opts    Options
		typ     string
		buckets bool
	}{{Options{}, "summary", false}, {Options{CheckDurationHistogram: true}, "histogram", true}} {
		reg, m, _ := fixture(t, tc.opts)
		m.ProbeResult("web", config.CheckHTTP, health.Result{Latency: 3 * time.Millisecond})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != "anycastd_check_duration_seconds" {
				continue
			}
			found = true
			if got := strings.ToLower(mf.GetType().String()); got != tc.typ {
				t.Errorf("%+v: type %s, want %s", tc.opts, got, tc.typ)
			}
			mt := mf.GetMetric()[0]
			if got := len(mt.GetHistogram().GetBucket()) > 0; got != tc.buckets {
				t.Errorf("%+v: buckets %v, want %v", tc.opts, got, tc.buckets)
			}
			if n := mt.GetSummary().GetSampleCount() + mt.GetHistogram().GetSampleCount(); n != 1 {
				t.Errorf("%+v: %d samples, want 1", tc.opts, n)
			}
			if q := mt.GetSummary().GetQuantile(); len(q) > 0 {
				t.Errorf("%+v: summary has quantiles %v, want none", tc.opts, q)
			}
		}
		if !found {
			t.Errorf("%+v: no anycastd_check_duration_seconds", tc.opts)
		}
	}
}
