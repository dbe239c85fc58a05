package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// vips validates the [[vip]] tables. checks holds the names of the checks,
// fams the families carried by the peers, peers the peers (for vip.peers).
func (c *collector) vips(rs []*rawVIP, checks map[string]int, fams carried, peers []Peer) []VIP {
	out := make([]VIP, 0, len(rs))
	names := map[string]int{}
	type owner struct {
		index int
		path  string
	}
	owners := map[netip.Prefix]owner{}
	for i, r := range rs {
		s := scope{c: c, path: fmt.Sprintf("vip[%d]", i+1), node: r.Pos.Node, hdr: r.Pos.At}
		v := VIP{Line: r.Pos.At.line}
		v.Name, _ = s.name("vip", r.Name, names)
		v.AllowAggregate, _ = s.boolean("allow_aggregate", r.AllowAggregate)
		allowDefault, _ := s.boolean("allow_default_route", r.AllowDefault)

		if r.Prefixes == nil {
			s.missing("prefixes")
		} else {
			xs, ok := s.strings("prefixes", r.Prefixes)
			if ok && len(xs) == 0 {
				s.keyErr("prefixes", "must not be empty")
			}
			for _, e := range xs {
				j, x := e.i, e.s
				p, ok := s.prefix(j, x, v.AllowAggregate, allowDefault, fams)
				if !ok || !s.usable(j, p, peers) {
					continue
				}
				if o, dup := owners[p]; dup {
					if o.index == i {
						s.elemErr("prefixes", j, "%q is listed twice", p)
					} else {
						s.elemErr("prefixes", j, "%q is already announced by %s", p, o.path)
					}
					continue
				}
				owners[p] = owner{i, s.path}
				v.Prefixes = append(v.Prefixes, p)
			}
		}

		checksOK := false
		if r.Checks == nil {
			s.missing("checks")
		} else {
			xs, ok := s.strings("checks", r.Checks)
			checksOK = ok
			if ok && len(xs) == 0 {
				s.keyErr("checks", "must not be empty")
				checksOK = false
			}
			for _, e := range xs {
				j, x := e.i, e.s
				elem := fmt.Sprintf("checks[%d]", j)
				switch _, defined := checks[x]; {
				case v.hasCheck(x):
					s.elemErr("checks", j, "%q is listed twice", x)
				case !defined:
					s.at(elem, "check %q is not defined", x)
					v.Checks = append(v.Checks, x)
				default:
					v.Checks = append(v.Checks, x)
				}
			}
		}
		v.Require = s.require(r.Require, len(v.Checks), checksOK)

		v.Communities = s.communities("communities", r.Communities)
		v.LargeCommunities = s.largeCommunities("large_communities", r.LargeCommunities)
		if x, ok := s.integer("med", r.MED, 0, maxUint32); ok {
			u := uint32(x)
			v.MED = &u
		}
		if x, ok := s.integer("local_pref", r.LocalPref, 0, maxUint32); ok {
			u := uint32(x)
			v.LocalPref = &u
		}
		if x, ok := s.integer("prepend", r.Prepend, 0, maxPrepend); ok {
			v.Prepend = int(x)
		}
		v.RemoveOnWithdraw, _ = s.boolean("remove_on_withdraw", r.RemoveOnWithdraw)
		v.OnAddressLost = AddressLostRestore
		if x, ok := s.oneOf("on_address_lost", r.OnAddressLost, AddressLostRestore, AddressLostWithdraw); ok {
			v.OnAddressLost = x
		}
		s.behaviour(&v, r)
		v.Peers = s.vipPeers(r.Peers, v.Prefixes, peers)
		out = append(out, v)
	}
	return out
}

// communities parses a list of communities, reporting duplicates.
func (s scope) communities(key string, raw any) []Community {
	var out []Community
	xs, _ := s.strings(key, raw)
	for _, e := range xs {
		cm, err := ParseCommunity(e.s)
		switch {
		case err != nil:
			s.elemErr(key, e.i, "%v", err)
		case containsCommunity(out, cm):
			s.elemErr(key, e.i, "%q is listed twice", e.s)
		default:
			out = append(out, cm)
		}
	}
	return out
}

// largeCommunities parses a list of large communities, reporting duplicates.
func (s scope) largeCommunities(key string, raw any) []LargeCommunity {
	var out []LargeCommunity
	xs, _ := s.strings(key, raw)
	for _, e := range xs {
		lc, err := ParseLargeCommunity(e.s)
		switch {
		case err != nil:
			s.elemErr(key, e.i, "%v", err)
		case containsLarge(out, lc):
			s.elemErr(key, e.i, "%q is listed twice", e.s)
		default:
			out = append(out, lc)
		}
	}
	return out
}

func (v *VIP) hasCheck(name string) bool {
	for _, c := range v.Checks {
		if c == name {
			return true
		}
	}
	return false
}

func containsCommunity(cs []Community, c Community) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func containsLarge(ls []LargeCommunity, l LargeCommunity) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// prefix parses the j-th element x of prefixes: a canonical prefix, or an
// address meaning its host route.
func (s scope) prefix(j int, x string, allowAggregate, allowDefault bool, fams carried) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(x, "/") {
		var err error
		if p, err = netip.ParsePrefix(x); err != nil {
			s.elemErr("prefixes", j, "%q is not a prefix or an IP address", x)
			return p, false
		}
	} else {
		a, err := netip.ParseAddr(x)
		if err != nil || a.Zone() != "" {
			s.elemErr("prefixes", j, "%q is not a prefix or an IP address", x)
			return p, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		s.elemErr("prefixes", j, "%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix", x)
	case p != p.Masked():
		s.elemErr("prefixes", j, "%q has host bits set; did you mean %q?", x, p.Masked())
	case p.Bits() == 0 && !allowDefault:
		s.elemErr("prefixes", j, "%q is a default route; set allow_default_route = true to announce it", p)
	case !p.IsSingleIP() && p.Bits() > 0 && !allowAggregate:
		s.elemErr("prefixes", j, "%q is not a host route; set allow_aggregate = true to announce it", p)
	case fams.known && !fams.fams[familyOf(p.Addr())]:
		s.elemErr("prefixes", j, "%q is %s but no bgp.peer carries %s", p, familyName(p.Addr()), familyOf(p.Addr()))
	default:
		return p, true
	}
	return p, false
}

// require returns the number of checks that must pass: "all" (the default)
// is n, "any" is 1. nOK is false when n is not known for sure.
func (s scope) require(v any, n int, nOK bool) int {
	switch x := v.(type) {
	case nil:
	case string:
		switch x {
		case "all":
		case "any":
			return 1
		default:
			s.keyErr("require", `%q is not "all", "any" or a number`, x)
		}
	case int64:
		switch {
		case nOK && (x < 1 || x > int64(n)):
			s.keyErr("require", "%d is out of range 1..%d (the number of checks)", x, n)
		case x < 1:
			s.keyErr("require", "must be at least 1, got %d", x)
		default:
			return int(x)
		}
	default:
		s.typeErr("require", `"all", "any" or an integer`, x)
	}
	return n
}
