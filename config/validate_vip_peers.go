package config

import (
	"net/netip"
	"slices"
	"strings"
)

// SentTo reports whether the VIP is sent to peer p: every peer when the
// VIP's peers key is not set, else the peers it lists. The peer must also
// carry the prefix's family for a prefix to reach it.
func (v VIP) SentTo(p Peer) bool {
	return len(v.Peers) == 0 || slices.Contains(v.Peers, p.Address)
}

// vipPeers validates a VIP's peers key: the addresses of [[bgp.peer]]
// sessions, written as in their address key, each once; at least one of
// them must carry each of the VIP's families. peers are the validated
// peers; a peer whose address did not validate turns the unknown-address
// and family checks off (its own problem is reported already).
func (s scope) vipPeers(raw any, prefixes []netip.Prefix, peers []Peer) []netip.Addr {
	if raw == nil {
		return nil
	}
	xs, ok := s.strings("peers", raw)
	if ok && len(xs) == 0 {
		s.keyErr("peers", "must not be empty; leave it out to send the VIP to every peer")
		return nil
	}
	known := true
	byAddr := make(map[netip.Addr]Peer, len(peers))
	for _, p := range peers {
		if !p.Address.IsValid() {
			known = false
		}
		byAddr[p.Address] = p
	}
	var out []netip.Addr
	for _, e := range xs {
		a, err := netip.ParseAddr(e.s)
		if err != nil {
			s.elemErr("peers", e.i, "%q is not an IP address", e.s)
			ok = false
			continue
		}
		_, isPeer := byAddr[a]
		switch {
		case slices.Contains(out, a):
			s.elemErr("peers", e.i, "%q is listed twice", e.s)
		case known && !isPeer:
			s.elemErr("peers", e.i, "%s is not the address of a [[bgp.peer]]", a)
			ok = false
		default:
			out = append(out, a)
		}
	}
	if !ok || !known {
		return out
	}
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		var of []string
		for _, p := range prefixes {
			if familyOf(p.Addr()) == f {
				of = append(of, p.String())
			}
		}
		if len(of) == 0 || slices.ContainsFunc(out, func(a netip.Addr) bool { return byAddr[a].HasFamily(f) }) {
			continue
		}
		s.keyErr("peers", "none of them carries %s, so %s would be sent nowhere", f, strings.Join(of, ", "))
	}
	return out
}
