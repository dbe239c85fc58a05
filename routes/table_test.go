package routes

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
)

var (
	p1 = netip.MustParsePrefix("203.0.113.1/32")
	p2 = netip.MustParsePrefix("2001:db8::1/128")
	p3 = netip.MustParsePrefix("203.0.113.3/32")
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Prefix{}), cmpopts.EquateEmpty()}

func cfgWith(vips ...config.VIP) *config.Config { return &config.Config{VIPs: vips} }

func up() CheckStatus             { return CheckStatus{Status: health.StatusUp} }
func down(err string) CheckStatus { return CheckStatus{Status: health.StatusDown, LastErr: err} }

func TestCompute(t *testing.T) {
	med := uint32(5)
	web := config.VIP{Name: "web", Prefixes: []netip.Prefix{p1, p2}, Checks: []string{"a", "b"}, Require: 2,
		Communities: []config.Community{65001<<16 | 100}, MED: &med, Prepend: 2}
	any := config.VIP{Name: "dns", Prefixes: []netip.Prefix{p3}, Checks: []string{"a", "b"}, Require: 1}
	webRoute := func(p netip.Prefix) Route {
		return Route{Prefix: p, VIP: "web", Communities: web.Communities, MED: &med, Prepend: 2}
	}
	tests := []struct {
		name   string
		cfg    *config.Config
		checks map[string]CheckStatus
		ov     Overrides
		want   Desired
	}{
		{
			name: "nothing before checks rise",
			cfg:  cfgWith(web),
			want: Desired{VIPs: []VIPStatus{{Name: "web", State: StateDown, Require: 2,
				Reason: "0 of 2 checks passing, 2 required: a has not risen yet; b has not risen yet"}}},
		},
		{
			name:   "all checks pass",
			cfg:    cfgWith(web),
			checks: map[string]CheckStatus{"a": up(), "b": up()},
			want: Desired{
				Routes: Table{p1: webRoute(p1), p2: webRoute(p2)},
				VIPs:   []VIPStatus{{Name: "web", State: StateUp, Passing: 2, Require: 2, Reason: "2 of 2 checks passing, 2 required"}},
			},
		},
		{
			name:   "one of two failing with require all",
			cfg:    cfgWith(web),
			checks: map[string]CheckStatus{"a": up(), "b": down("connection refused")},
			want: Desired{VIPs: []VIPStatus{{Name: "web", State: StateDown, Passing: 1, Require: 2, Guardable: true,
				Reason: "1 of 2 checks passing, 2 required: b is down (connection refused)"}}},
		},
		{
			name:   "one of two failing with require any",
			cfg:    cfgWith(any),
			checks: map[string]CheckStatus{"a": down("timeout after 1s"), "b": up()},
			want: Desired{
				Routes: Table{p3: {Prefix: p3, VIP: "dns"}},
				VIPs:   []VIPStatus{{Name: "dns", State: StateUp, Passing: 1, Require: 1, Reason: "1 of 2 checks passing, 1 required: a is down (timeout after 1s)"}},
			},
		},
		{
			name:   "unknown status counts as not passing",
			cfg:    cfgWith(any),
			checks: map[string]CheckStatus{"a": {Status: health.StatusUnknown}, "b": {Status: health.StatusDown}},
			want: Desired{VIPs: []VIPStatus{{Name: "dns", State: StateDown, Require: 1,
				Reason: "0 of 2 checks passing, 1 required: a has not risen yet; b is down"}}},
		},
		{
			name:   "drained after its drain time: disabled, whatever the checks say",
			cfg:    cfgWith(web, any),
			checks: map[string]CheckStatus{"a": up(), "b": up()},
			ov:     Overrides{Now: t0.Add(6 * time.Second), Drained: map[string]Drain{"web": {Reason: "maintenance", Since: t0}}},
			want: Desired{
				Routes: Table{p3: {Prefix: p3, VIP: "dns"}},
				VIPs: []VIPStatus{
					{Name: "web", State: StateDisabled, Passing: 2, Require: 2, Reason: "drained: maintenance"},
					{Name: "dns", State: StateUp, Passing: 2, Require: 1, Reason: "2 of 2 checks passing, 1 required"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.cfg, tt.checks, tt.ov)
			if d := cmp.Diff(tt.want, got, cmpOpts); d != "" {
				t.Errorf("Compute (-want +got):\n%s", d)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a := Route{Prefix: p1, VIP: "a"}
	b := Route{Prefix: p2, VIP: "b"}
	c := Route{Prefix: p3, VIP: "c"}
	c2 := Route{Prefix: p3, VIP: "c", Communities: []config.Community{1}}
	tests := []struct {
		name               string
		announced, desired Table
		update             []Route
		withdraw           []netip.Prefix
	}{
		{"empty", nil, nil, nil, nil},
		{"add", Table{}, Table{p1: a, p3: c}, []Route{a, c}, nil},
		{"withdraw", Table{p1: a, p2: b}, Table{p1: a}, nil, []netip.Prefix{p2}},
		{"unchanged sends nothing", Table{p1: a, p3: c}, Table{p1: a, p3: c}, nil, nil},
		{"changed attributes replace, no withdrawal", Table{p3: c}, Table{p3: c2}, []Route{c2}, nil},
		{"mixed, IPv4 before IPv6", Table{p1: a, p3: c}, Table{p2: b, p3: c2}, []Route{c2, b}, []netip.Prefix{p1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, w := Diff(tt.announced, tt.desired, nil)
			if d := cmp.Diff(tt.update, u, cmpOpts); d != "" {
				t.Errorf("update (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.withdraw, w, cmpOpts); d != "" {
				t.Errorf("withdraw (-want +got):\n%s", d)
			}
		})
	}
}

func TestComputeMissingAddress(t *testing.T) {
	withdraw := config.VIP{Name: "w", Prefixes: []netip.Prefix{p1}, Checks: []string{"a"}, Require: 1, OnAddressLost: config.AddressLostWithdraw}
	restore := config.VIP{Name: "r", Prefixes: []netip.Prefix{p3}, Checks: []string{"a"}, Require: 1, OnAddressLost: config.AddressLostRestore}
	got := Compute(cfgWith(withdraw, restore), map[string]CheckStatus{"a": up()},
		Overrides{MissingAddresses: map[netip.Prefix]bool{p1: true, p3: true}})
	want := Desired{
		Routes: Table{p3: {Prefix: p3, VIP: "r"}},
		VIPs: []VIPStatus{
			{Name: "w", State: StateDown, Passing: 1, Require: 1, Reason: `address 203.0.113.1 missing from the interface (on_address_lost = "withdraw")`},
			{Name: "r", State: StateUp, Passing: 1, Require: 1, Reason: "1 of 1 checks passing, 1 required"},
		},
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Compute (-want +got):\n%s", d)
	}
}

func TestComputeDrainDegradeHold(t *testing.T) {
	med, dmed := uint32(5), uint32(500)
	vip := config.VIP{Name: "web", Prefixes: []netip.Prefix{p1}, Checks: []string{"a", "b", "c"}, Require: 3,
		Communities: []config.Community{65001<<16 | 100}, MED: &med, Prepend: 1, OnFailure: config.OnFailureWithdraw,
		Degraded: &config.Degraded{Prepend: 3, MED: &dmed, Communities: []config.Community{65001<<16 | 666}, MinPassing: 2}}
	degrade := vip
	degrade.Degraded = &config.Degraded{Prepend: 4}
	degrade.OnFailure = config.OnFailureDegrade
	cfg := func(v config.VIP) *config.Config {
		return &config.Config{Node: config.Node{DrainTime: 5 * time.Second}, VIPs: []config.VIP{v}}
	}
	all := map[string]CheckStatus{"a": up(), "b": up(), "c": up()}
	twoOfThree := map[string]CheckStatus{"a": up(), "b": up(), "c": down("refused")}
	noneUp := map[string]CheckStatus{"a": down("x"), "b": down("x"), "c": down("x")}
	upRoute := Route{Prefix: p1, VIP: "web", Communities: vip.Communities, MED: &med, Prepend: 1}
	degradedRoute := Route{Prefix: p1, VIP: "web", Communities: []config.Community{65001<<16 | 100, 65001<<16 | 666}, MED: &dmed, Prepend: 3}
	zero := uint32(0)
	drainingRoute := Route{Prefix: p1, VIP: "web", Communities: []config.Community{65001<<16 | 100, config.CommunityGracefulShutdown}, MED: &med, Prepend: 1, LocalPref: &zero}
	tests := []struct {
		name   string
		vip    config.VIP
		checks map[string]CheckStatus
		ov     Overrides
		state  State
		route  *Route
		reason string
		next   time.Time
	}{
		{"all pass", vip, all, Overrides{Now: t0}, StateUp, &upRoute, "3 of 3 checks passing, 3 required", time.Time{}},
		{"below require, at min_passing: degraded", vip, twoOfThree, Overrides{Now: t0}, StateDegraded, &degradedRoute,
			"2 of 3 checks passing, 3 required: c is down (refused) (degraded: at least 2 passing)", time.Time{}},
		{"below min_passing: down", vip, noneUp, Overrides{Now: t0}, StateDown, nil,
			"0 of 3 checks passing, 3 required: a is down (x); b is down (x); c is down (x)", time.Time{}},
		{"on_failure degrade keeps announcing", degrade, noneUp, Overrides{Now: t0}, StateDegraded,
			&Route{Prefix: p1, VIP: "web", Communities: vip.Communities, MED: &med, Prepend: 4},
			`0 of 3 checks passing, 3 required: a is down (x); b is down (x); c is down (x) (on_failure = "degrade")`, time.Time{}},
		{"on_failure degrade announces nothing before checks rise", degrade, map[string]CheckStatus{}, Overrides{Now: t0}, StateDown, nil,
			"0 of 3 checks passing, 3 required: a has not risen yet; b has not risen yet; c has not risen yet", time.Time{}},
		{"draining: graceful-shutdown and local-pref 0 until the drain time", vip, all,
			Overrides{Now: t0.Add(time.Second), Drained: map[string]Drain{"web": {Reason: "api", Since: t0}}},
			StateDraining, &drainingRoute, "draining until 12:00:05: api", t0.Add(5 * time.Second)},
		{"drained VIP that was down is disabled at once", vip, noneUp,
			Overrides{Now: t0.Add(time.Second), Drained: map[string]Drain{"web": {Reason: "api", Since: t0}}},
			StateDisabled, nil, "drained: api", time.Time{}},
		{"held while flapping", vip, all, Overrides{Now: t0, HeldUntil: map[string]time.Time{"web": t0.Add(time.Minute)}},
			StateHeld, nil, "flapping: held until 12:01:00; checks: 3 of 3 checks passing, 3 required", t0.Add(time.Minute)},
		{"hold over", vip, all, Overrides{Now: t0.Add(2 * time.Minute), HeldUntil: map[string]time.Time{"web": t0.Add(time.Minute)}},
			StateUp, &upRoute, "3 of 3 checks passing, 3 required", time.Time{}},
		{"held with on_failure degrade: announced degraded", degrade, all,
			Overrides{Now: t0, HeldUntil: map[string]time.Time{"web": t0.Add(time.Minute)}}, StateHeld,
			&Route{Prefix: p1, VIP: "web", Communities: vip.Communities, MED: &med, Prepend: 4},
			"flapping: held until 12:01:00; checks: 3 of 3 checks passing, 3 required", t0.Add(time.Minute)},
		{"startup delay holds everything", vip, all, Overrides{Now: t0, HoldAll: "startup delay: waiting for a BGP session"},
			StateDown, nil, "startup delay: waiting for a BGP session", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Compute(cfg(tt.vip), tt.checks, tt.ov)
			st := d.VIPs[0]
			if st.State != tt.state || st.Reason != tt.reason {
				t.Errorf("state %s %q, want %s %q", st.State, st.Reason, tt.state, tt.reason)
			}
			var want Table = Table{}
			if tt.route != nil {
				want[p1] = *tt.route
			}
			if diff := cmp.Diff(want, d.Routes, cmpOpts); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if !d.Next.Equal(tt.next) {
				t.Errorf("Next = %v, want %v", d.Next, tt.next)
			}
		})
	}
}
