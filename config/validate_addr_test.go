package config

import (
	"net/netip"
	"strings"
	"testing"
)

// A default route is announced only with allow_default_route; allow_aggregate
// alone is not enough (see invalid-addresses.toml).
func TestDefaultRouteOptIn(t *testing.T) {
	const src = `[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
families = ["ipv4", "ipv6"]
next_hop_ipv6 = "2001:db8::2"

[[check]]
name = "web"
type = "tcp"
address = "127.0.0.1:80"

# A default route needs its own opt-in, not allow_aggregate alone.
[[vip]]
name = "default"
prefixes = ["0.0.0.0/0", "::/0"]
checks = ["web"]
allow_default_route = true
`
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	if got := cfg.VIPs[0].Prefixes; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("prefixes = %v, want %v", got, want)
	}
	_, err = Parse([]byte(strings.Replace(src, "allow_default_route = true", "allow_aggregate = true", 1)))
	if err == nil || !strings.Contains(err.Error(), `"0.0.0.0/0" is a default route; set allow_default_route = true to announce it (line 19)`) {
		t.Errorf("without allow_default_route: %v", err)
	}
}

// Peers on loopback and on a link-local address with its interface stay
// allowed.
func TestPeerAddressesAllowed(t *testing.T) {
	for _, a := range []string{"127.0.0.2", "::1", "fe80::1%eth0", "169.254.0.1"} {
		src := "[bgp]\nasn = 65001\nrouter_id = \"198.18.1.2\"\n[[bgp.peer]]\naddress = \"" + a + "\"\nasn = 65000\n"
		if _, err := Parse([]byte(src)); err != nil {
			t.Errorf("peer %s: %v", a, err)
		}
	}
}
