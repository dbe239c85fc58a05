package routes

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
)

// TestComputeGuarded: the fleet guard keeps a VIP announced only where its
// withdrawal is health-driven; a definite failure, a lost address, a drain
// or checks that have not decided yet withdraw whatever the guard says.
func TestComputeGuarded(t *testing.T) {
	med := uint32(500)
	plain := config.VIP{Name: "dns", Prefixes: []netip.Prefix{p1}, Checks: []string{"a", "b"}, Require: 2, Prepend: 1}
	withDeg := plain
	withDeg.Name = "web"
	withDeg.Prefixes = []netip.Prefix{p2}
	withDeg.Degraded = &config.Degraded{MED: &med, Communities: []config.Community{65001<<16 | 666}}
	guard := map[string]string{"dns": "only 1 other site announces it (min_sites 2)", "web": "coordinator lost"}
	definite := CheckStatus{Status: health.StatusDown, LastErr: "process 42 exited", Definite: true}
	now := time.Unix(1e9, 0)

	tests := []struct {
		name   string
		vip    config.VIP
		checks map[string]CheckStatus
		ov     Overrides
		state  State
		route  *Route
		guardb bool
	}{
		{"health-driven failure is guarded with the default prepend", plain,
			map[string]CheckStatus{"a": up(), "b": down("timeout after 1s")},
			Overrides{Now: now, Guarded: guard}, StateGuarded,
			&Route{Prefix: p1, VIP: "dns", Prepend: 1 + GuardedPrepend}, true},
		{"guarded with the degraded attributes", withDeg,
			map[string]CheckStatus{"a": down("status 503"), "b": down("status 503")},
			Overrides{Now: now, Guarded: guard}, StateGuarded,
			&Route{Prefix: p2, VIP: "web", Prepend: 1, MED: &med, Communities: []config.Community{65001<<16 | 666}}, true},
		{"without the guard's word it is down", plain,
			map[string]CheckStatus{"a": up(), "b": down("timeout after 1s")},
			Overrides{Now: now}, StateDown, nil, true},
		{"a definite failure always withdraws", plain,
			map[string]CheckStatus{"a": definite, "b": down("timeout after 1s")},
			Overrides{Now: now, Guarded: guard}, StateDown, nil, false},
		{"checks not yet decided are never guarded", plain,
			map[string]CheckStatus{"a": up()},
			Overrides{Now: now, Guarded: guard}, StateDown, nil, false},
		{"a lost address always withdraws", func() config.VIP { v := plain; v.OnAddressLost = config.AddressLostWithdraw; return v }(),
			map[string]CheckStatus{"a": up(), "b": down("x")},
			Overrides{Now: now, Guarded: guard, MissingAddresses: map[netip.Prefix]bool{p1: true}}, StateDown, nil, false},
		{"a drain is not the guard's", plain,
			map[string]CheckStatus{"a": up(), "b": down("x")},
			Overrides{Now: now, Guarded: guard, Drained: map[string]Drain{"dns": {Reason: "maintenance", Since: now.Add(-time.Hour)}}}, StateDisabled, nil, false},
		{"passing checks: up, the guard's word does not matter", plain,
			map[string]CheckStatus{"a": up(), "b": up()},
			Overrides{Now: now, Guarded: guard}, StateUp, &Route{Prefix: p1, VIP: "dns", Prepend: 1}, false},
		{"a held VIP is guarded too", plain,
			map[string]CheckStatus{"a": up(), "b": down("x")},
			Overrides{Now: now, Guarded: guard, HeldUntil: map[string]time.Time{"dns": now.Add(time.Minute)}}, StateGuarded,
			&Route{Prefix: p1, VIP: "dns", Prepend: 1 + GuardedPrepend}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Compute(cfgWith(tt.vip), tt.checks, tt.ov)
			st := d.VIPs[0]
			if st.State != tt.state || st.Guardable != tt.guardb {
				t.Fatalf("state %s guardable %v (%s), want %s guardable %v", st.State, st.Guardable, st.Reason, tt.state, tt.guardb)
			}
			var got *Route
			for _, r := range d.Routes {
				got = &r
			}
			if diff := cmp.Diff(tt.route, got); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}
