package announcer

import (
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/anycastd/anycastd/config"
)

func TestPeerConfigTTLSecurity(t *testing.T) {
	cfg := &config.Config{}
	p := config.Peer{Address: netip.MustParseAddr("198.18.1.1"), ASN: 65000, HoldTime: 9 * time.Second, Families: []config.Family{config.FamilyIPv4}}
	if got := peerConfig(cfg, p).TtlSecurity; got != nil {
		t.Errorf("ttl_security_hops unset: TtlSecurity = %v, want none", got)
	}
	for hops, min := range map[uint8]uint32{1: 255, 2: 254, 254: 2} {
		p.TTLSecurityHops = hops
		got := peerConfig(cfg, p).TtlSecurity
		if got == nil || !got.Enabled || got.TtlMin != min {
			t.Errorf("ttl_security_hops %d: TtlSecurity = %v, want enabled with TtlMin %d", hops, got, min)
		}
	}
}

func TestSessionProblem(t *testing.T) {
	v6 := config.Peer{Address: netip.MustParseAddr("2001:db8::1"), Families: []config.Family{config.FamilyIPv4, config.FamilyIPv6}}
	mp4 := bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC)
	mp6 := bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC)
	enh := bgp.NewCapExtendedNexthop([]*bgp.CapExtendedNexthopTuple{bgp.NewCapExtendedNexthopTuple(bgp.RF_IPv4_UC, bgp.AFI_IP6)})
	withNH := v6
	withNH.NextHopIPv4 = netip.MustParseAddr("198.18.1.2")
	v4 := v6
	v4.Address = netip.MustParseAddr("198.18.1.1")
	tests := []struct {
		name   string
		p      config.Peer
		remote []bgp.ParameterCapabilityInterface
		want   string
	}{
		{"negotiated", v6, []bgp.ParameterCapabilityInterface{mp4, mp6, enh}, ""},
		{"not offered", v6, []bgp.ParameterCapabilityInterface{mp4, mp6}, errNoExtendedNextHop},
		{"router has no ipv4", v6, []bgp.ParameterCapabilityInterface{mp6}, ""},
		{"next_hop_ipv4 set", withNH, []bgp.ParameterCapabilityInterface{mp4, mp6}, ""},
		{"IPv4 session", v4, []bgp.ParameterCapabilityInterface{mp4, mp6}, ""},
	}
	for _, tt := range tests {
		if got := sessionProblem(tt.p, tt.remote); got != tt.want {
			t.Errorf("%s: sessionProblem = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExplainReason(t *testing.T) {
	tests := []struct{ prev, reason, want string }{
		{"opensent", "invalid-msg", invalidWhileOpening},
		{"openconfirm", "invalid-msg", invalidWhileOpening},
		{"established", "invalid-msg", "invalid-msg"},
		{"opensent", "hold-timer-expired", "hold-timer-expired"},
	}
	for _, tt := range tests {
		if got := explainReason(tt.prev, tt.reason); got != tt.want {
			t.Errorf("explainReason(%q, %q) = %q, want %q", tt.prev, tt.reason, got, tt.want)
		}
	}
}

// A link-local session's Adj-RIB-Out holds the local address with its
// zone; the router gets the address alone.
func TestAdvertisedNextHopWithoutZone(t *testing.T) {
	nlri, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix("2001:db8:40::1/128"))
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, netip.MustParseAddr("fe80::2%eth-e"))
	if err != nil {
		t.Fatal(err)
	}
	var r AdvertisedRoute
	r.addAttr(mp)
	if r.NextHop != "fe80::2" {
		t.Errorf("next hop %q, want fe80::2", r.NextHop)
	}
}

// A change may have missed a session coming up only if it returned after
// the session came up and started before GoBGP was seen counting it
// Established; with more changes than the log holds, assume it did.
func TestChangeLogMayHaveMissed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	up, seen := at(10), at(20)
	for _, tc := range []struct {
		name  string
		spans [][2]int
		want  bool
	}{
		{"none", nil, false},
		{"returned before up", [][2]int{{1, 5}}, false},
		{"ran across up", [][2]int{{5, 12}}, true},
		{"between up and seen", [][2]int{{12, 15}}, true},
		{"started after seen", [][2]int{{21, 22}}, false},
		{"an earlier one in the window, a later one after seen", [][2]int{{12, 15}, {21, 22}}, true},
	} {
		var c changeLog
		for _, s := range tc.spans {
			c.add(at(s[0]), at(s[1]))
		}
		if got := c.mayHaveMissed(up, seen); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var c changeLog
	for i := range changeLogSize {
		c.add(at(30+i), at(31+i)) // all after seen, but the log is full
	}
	if !c.mayHaveMissed(up, seen) {
		t.Errorf("a full log of changes since up: false, want true")
	}
}
