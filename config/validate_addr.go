package config

import (
	"fmt"
	"net/netip"
)

// specialRanges are the addresses that can be neither a VIP nor (but for
// loopback and IPv4 link-local) a BGP peer or a next hop.
var specialRanges = []struct {
	p    netip.Prefix
	what string
}{
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
}

// special returns what kind of special range p lies within, "" if none.
func special(p netip.Prefix) string {
	for _, r := range specialRanges {
		if r.p.Bits() <= p.Bits() && r.p.Contains(p.Addr()) {
			return r.what
		}
	}
	return ""
}

// notUnicast returns why a cannot be a BGP peer or a next hop ("" if it
// can): unspecified, broadcast or multicast.
func notUnicast(a netip.Addr) string {
	switch what := special(netip.PrefixFrom(a.WithZone(""), a.BitLen())); what {
	case "the unspecified address", "the broadcast address", "multicast":
		return what
	}
	return ""
}

// usable reports whether the j-th VIP prefix p can be announced and put on
// an interface: not within a special range, not a peer's address.
func (s scope) usable(j int, p netip.Prefix, peers []Peer) bool {
	if what := special(p); what != "" {
		s.elemErr("prefixes", j, "%q is %s: it cannot be a VIP", p, what)
		return false
	}
	if p.IsSingleIP() {
		for _, peer := range peers {
			if peer.Address.IsValid() && peer.Address.WithZone("") == p.Addr() {
				s.elemErr("prefixes", j, "%q is the address of bgp.peer %q%s", p, peer.Address.String(), onLine(peer.Line))
				return false
			}
		}
	}
	return true
}

func onLine(line int) string {
	if line > 0 {
		return fmt.Sprintf(" on line %d", line)
	}
	return ""
}
