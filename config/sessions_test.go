package config

import (
	"testing"
)

// Session settings of [[bgp.peer]]: GTSM, extended next hop, link-local
// peering. The invalid cases are testdata/invalid-peer-session.toml.

func TestPeerSessionValid(t *testing.T) {
	cfg, err := Parse([]byte(`[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
ttl_security_hops = 1

[[bgp.peer]]
address = "198.18.2.1"
asn = 65000
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.BGP.Peers[0].TTLSecurityHops; got != 1 {
		t.Errorf("ttl_security_hops = %d, want 1", got)
	}
	if got := cfg.BGP.Peers[1].TTLSecurityHops; got != 0 {
		t.Errorf("default ttl_security_hops = %d, want 0 (off)", got)
	}
}

// A reload that changes ttl_security_hops resets that session; IPv4 over
// an IPv6 session needs no next_hop_ipv4 (RFC 8950); a link-local peer
// keeps its zone.
func TestPeerSessionReloadAndAddresses(t *testing.T) {
	base := `[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "fe80::1%eth0"
asn = 65000
families = ["ipv4", "ipv6"]
`
	old := mustParse(t, base)
	p := old.BGP.Peers[0]
	if p.Address.Zone() != "eth0" || p.NextHopIPv4.IsValid() || !p.HasFamily(FamilyIPv4) {
		t.Errorf("peer %s: zone %q, next_hop_ipv4 %v, families %v", p.Address, p.Address.Zone(), p.NextHopIPv4, p.Families)
	}
	got := Compare(old, mustParse(t, base+"ttl_security_hops = 1\n")).String()
	want := `~ bgp.peer "fe80::1%eth0": ttl_security_hops 0 -> 1: only this session is reset`
	if got != want {
		t.Errorf("Compare:\n got %s\nwant %s", got, want)
	}
}
