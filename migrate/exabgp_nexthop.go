package migrate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// This file works out the next hop of each [[bgp.peer]]. The healthcheck
// sends a next hop per service (--next-hop IP, or "self" without it);
// anycastd has one per session and family (next_hop_ipv4, next_hop_ipv6).
// So the services a session carries must agree on it, family by family,
// or the conversion would silently move a service's next hop.

// exaNH is the next hop one healthcheck sent with its VIPs of one family
// to one neighbor.
type exaNH struct {
	proc     string
	hop      netip.Addr // invalid: next-hop self
	prefixes []string   // its VIPs of that family
	file     string     // where --next-hop is, else the run line
	line     int
}

// recordNextHop notes, for each peer the VIP v goes to and each family of
// its prefixes, the next hop the healthcheck sent.
func (h *hcConv) recordNextHop(v *Table) error {
	use := exaNH{proc: h.p.name, file: h.p.file, line: h.run.Line}
	if nh, ok := h.a.last("next-hop"); ok {
		use.file, use.line = nh.file, nh.line
		if strings.EqualFold(strings.TrimSpace(nh.v), "self") {
			h.c.fail(nh.file, nh.line, "process %s: --next-hop self: the healthcheck takes an IP address only and does not start with \"self\" (without --next-hop it sends self): converted as no --next-hop; drop the option", h.p.name)
		} else {
			ad, err := netip.ParseAddr(strings.TrimSpace(nh.v))
			if err != nil || ad.Zone() != "" {
				return h.errf(nh, "--next-hop %q: not an IP address", nh.v)
			}
			use.hop = ad.Unmap()
		}
	}
	pv, _ := v.Get("prefixes")
	byFam := map[string][]string{}
	for _, s := range pv.([]string) {
		byFam[prefixFamily(s)] = append(byFam[prefixFamily(s)], s)
	}
	for _, p := range h.vipPeers(v) {
		for _, f := range []string{"ipv4", "ipv6"} {
			if len(byFam[f]) == 0 {
				continue
			}
			m := h.c.nhUses[p]
			if m == nil {
				m = map[string][]exaNH{}
				h.c.nhUses[p] = m
			}
			i := slices.IndexFunc(m[f], func(u exaNH) bool { return u.proc == use.proc })
			if i >= 0 {
				m[f][i].prefixes = append(m[f][i].prefixes, byFam[f]...)
				continue
			}
			u := use
			u.prefixes = slices.Clone(byFam[f])
			m[f] = append(m[f], u)
		}
	}
	return nil
}

// prefixFamily returns "ipv4" or "ipv6" for a prefix anycastd writes.
func prefixFamily(s string) string {
	if netip.MustParsePrefix(s).Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// nhMeaning is what the router got as the next hop of a use: the address
// (invalid when exabgp.conf does not tell), a key equal for equal next
// hops, and the words for a message.
type nhMeaning struct {
	addr netip.Addr
	key  string
	says string
}

// meaning resolves a use's next hop on neighbor n, whose session family
// is own, for its VIPs of family fam, as ExaBGP did: self is the
// session's local-address in its own family, the router-id for IPv4
// routes over an IPv6 session, and nothing ExaBGP can send for IPv6 routes
// over an IPv4 session.
func (c *exaConv) meaning(n *exaNeighbor, own, fam string, u exaNH) nhMeaning {
	if u.hop.IsValid() {
		return nhMeaning{u.hop, u.hop.String(), "--next-hop " + u.hop.String()}
	}
	la, _ := n.peer.Get("local_address")
	local, _ := la.(string)
	switch {
	case fam == own && local != "":
		return nhMeaning{netip.MustParseAddr(local), local, fmt.Sprintf("next-hop self, that is %s (the session's local-address)", local)}
	case fam == own:
		return nhMeaning{key: "self", says: fmt.Sprintf("next-hop self, that is the session's local address (neighbor %s gives no local-address)", n.addr)}
	case fam == "ipv4" && n.routerID != "":
		return nhMeaning{netip.MustParseAddr(n.routerID), n.routerID, fmt.Sprintf("next-hop self, that is %s (ExaBGP's self for IPv4 routes over an IPv6 session is the router-id)", n.routerID)}
	case fam == "ipv4":
		return nhMeaning{key: "self", says: "next-hop self, that is the router-id (ExaBGP's self for IPv4 routes over an IPv6 session)"}
	default:
		return nhMeaning{key: "self", says: "next-hop self, which ExaBGP cannot send for IPv6 routes over an IPv4 session"}
	}
}

// setNextHops checks that the VIPs of each family that neighbor n
// carries (fams: the families it negotiates) agree on their next hop,
// and sets next_hop_ipv4 / next_hop_ipv6 where ExaBGP's differs from
// anycastd's default, the session's address.
func (c *exaConv) setNextHops(n *exaNeighbor, own string, fams []string) {
	la, _ := n.peer.Get("local_address")
	local, _ := la.(string)
	for _, fam := range []string{"ipv4", "ipv6"} {
		if !slices.Contains(fams, fam) {
			continue // ExaBGP did not send them either
		}
		var uses []exaNH
		for _, u := range c.nhUses[n.addr][fam] {
			if u.hop.IsValid() && u.hop.Is4() != (fam == "ipv4") {
				// A next hop of the other family: anycastd has one only
				// as RFC 8950's default, the IPv6 session's own address.
				if fam == "ipv4" && own == "ipv6" && u.hop.String() == local {
					uses = append(uses, u)
					continue
				}
				why := "next_hop_ipv6 must be an IPv6 address"
				if fam == "ipv4" {
					why = "next_hop_ipv4 must be an IPv4 address; anycastd sends IPv4 VIPs with an IPv6 next hop only over an IPv6 session, as its own address (RFC 8950)"
				}
				c.fail(u.file, u.line, "process %s: --next-hop %s for its %s VIPs (%s) to neighbor %s: %s; give the IPv4 and the IPv6 addresses separate healthchecks, each with its own --next-hop",
					u.proc, u.hop, famName(fam), strings.Join(u.prefixes, ", "), n.addr, why)
				continue
			}
			uses = append(uses, u)
		}
		if len(uses) == 0 {
			continue
		}
		first := c.meaning(n, own, fam, uses[0])
		agreed := true
		for _, u := range uses[1:] {
			m := c.meaning(n, own, fam, u)
			if m.key == first.key {
				continue
			}
			agreed = false
			key := map[string]string{"ipv4": "next_hop_ipv4", "ipv6": "next_hop_ipv6"}[fam]
			c.fail(u.file, u.line, "neighbor %s: process %s sent its %s VIPs (%s) with %s, while process %s (%s:%d) sent its own (%s) with %s: anycastd has one next hop per session and family (%s of the [[bgp.peer]]), not per service: give both healthchecks the same --next-hop (or none), or announce them over separate sessions",
				n.addr, u.proc, famName(fam), strings.Join(u.prefixes, ", "), m.says, uses[0].proc, uses[0].file, uses[0].line, strings.Join(uses[0].prefixes, ", "), first.says, key)
		}
		c.setNextHop(n, own, fam, uses, agreed)
	}
}

// setNextHop sets the peer's next hop of family fam from what the uses
// sent; when they do not agree (an issue says so), from the first
// --next-hop.
func (c *exaConv) setNextHop(n *exaNeighbor, own, fam string, uses []exaNH, agreed bool) {
	key := "next_hop_" + fam
	i := slices.IndexFunc(uses, func(u exaNH) bool { return u.hop.IsValid() })
	if i >= 0 {
		hop := uses[i].hop
		if hop.Is4() != (fam == "ipv4") {
			return // the IPv6 session's own address: anycastd's default
		}
		why := "--next-hop: per session in anycastd, not per service"
		var self []string
		for _, u := range uses {
			if !u.hop.IsValid() {
				self = append(self, u.proc)
			}
		}
		switch {
		case !agreed:
			why = fmt.Sprintf("--next-hop of process %s; the other healthchecks' differ (see NOT CONVERTED): anycastd has one per session, not per service", uses[i].proc)
		case len(self) > 0:
			why += fmt.Sprintf("; process %s sent next-hop self, the same address", strings.Join(self, ", "))
		}
		n.peer.Set(key, hop.String(), why)
		return
	}
	if fam == "ipv4" && own == "ipv6" && n.routerID != "" {
		n.peer.Set(key, n.routerID, "no --next-hop: ExaBGP's next-hop self for IPv4 routes over an IPv6 session is the router-id (anycastd's default would be the session's IPv6 address, RFC 8950)")
	}
}

// famName returns "IPv4" or "IPv6".
func famName(fam string) string {
	return map[string]string{"ipv4": "IPv4", "ipv6": "IPv6"}[fam]
}
