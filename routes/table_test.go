package routes

import (
	"net/netip"
	"testing"

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
			want: Desired{VIPs: []VIPStatus{{Name: "web", State: StateDown, Passing: 1, Require: 2,
				Reason: "1 of 2 checks passing, 2 required: b is down (connection refused)"}}},
		},
		{
			name:   "one of two failing with require any",
			cfg:    cfgWith(any),
			checks: map[string]CheckStatus{"a": down("timeout after 1s"), "b": up()},
			want: Desired{
				Routes: Table{p3: {Prefix: p3, VIP: "dns"}},
				VIPs:   []VIPStatus{{Name: "dns", State: StateUp, Passing: 1, Require: 1, Reason: "1 of 2 checks passing, 1 required"}},
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
			name:   "disabled by operator wins over passing checks",
			cfg:    cfgWith(web, any),
			checks: map[string]CheckStatus{"a": up(), "b": up()},
			ov:     Overrides{Disabled: map[string]string{"web": "maintenance"}},
			want: Desired{
				Routes: Table{p3: {Prefix: p3, VIP: "dns"}},
				VIPs: []VIPStatus{
					{Name: "web", State: StateDisabled, Passing: 2, Require: 2, Reason: "disabled by operator: maintenance"},
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
			u, w := Diff(tt.announced, tt.desired)
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
