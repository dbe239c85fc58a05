package migrate

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file converts exabgp.conf's neighbor blocks into [[bgp.peer]]
// tables.

// neighbor converts a neighbor block; shared are its 3.x group's
// statements, which the neighbor's own override.
func (c *exaConv) neighbor(file string, s *Stmt, shared []*Stmt) error {
	if len(s.Words) != 2 || !s.HasBlock {
		return synErr(file, s.Line, "want \"neighbor ADDRESS { … }\"")
	}
	addr, err := netip.ParseAddr(s.Word(1))
	if err != nil {
		if _, perr := netip.ParsePrefix(s.Word(1)); perr == nil {
			c.fail(file, s.Line, "neighbor %s: a range of peers (auto-discovery) has no anycastd equivalent: list each router", s.Word(1))
			return nil
		}
		return synErr(file, s.Line, "neighbor %q: not an IP address", s.Word(1))
	}
	a := addr.String()
	if c.d.Peer(a) != nil {
		return synErr(file, s.Line, "neighbor %s is declared twice", a)
	}
	n := &exaNeighbor{addr: a, file: file, line: s.Line}
	n.peer = c.d.AddPeer(a, fmt.Sprintf("neighbor %s (%s:%d)", s.Word(1), file, s.Line))
	stmts := slices.Clone(shared)
	for _, t := range s.Block {
		if t.Word(0) == "inherit" {
			for _, name := range t.Args() {
				tpl, ok := c.templates[name]
				if !ok {
					return synErr(file, t.Line, "inherit %s: no template neighbor %s", name, name)
				}
				stmts = append(stmts, tpl...)
			}
		}
	}
	for _, t := range s.Block {
		if t.Word(0) != "inherit" {
			stmts = append(stmts, t)
		}
	}
	st := &nbState{}
	for _, t := range stmts {
		if err := c.neighborStmt(n, t, st); err != nil {
			return err
		}
	}
	if err := c.neighborAfter(n, st); err != nil {
		return err
	}
	c.neighbors = append(c.neighbors, n)
	return nil
}

// nbState holds what a neighbor's statements set that needs the others.
type nbState struct {
	peerAS                uint32
	peerASLine            int
	localAddr             string
	md5                   *Stmt
	md5b64                bool
	md5b64Line            int
	outTTL, inTTL         int
	outTTLLine, inTTLLine int
	holdSet               bool
}

// neighborStmt converts one statement of a neighbor (or its group or
// template). The file of a statement is its neighbor's: templates and
// groups live in the same file as their neighbors.
func (c *exaConv) neighborStmt(n *exaNeighbor, t *Stmt, st *nbState) error {
	file, p := n.file, n.peer
	kw := t.Word(0)
	arg := t.Word(1)
	one := func() error {
		if len(t.Words) != 2 || t.HasBlock {
			return synErr(file, t.Line, "%s wants one value", kw)
		}
		return nil
	}
	src := fmt.Sprintf("%s %s", kw, arg)
	switch kw {
	case "router-id":
		if err := one(); err != nil {
			return err
		}
		a, err := netip.ParseAddr(arg)
		if err != nil || !a.Is4() {
			return synErr(file, t.Line, "router-id %q: want an IPv4 address", arg)
		}
		n.routerID, n.routerIDFrom, n.ridLine = a.String(), "router-id", t.Line
	case "local-as", "peer-as":
		if err := one(); err != nil {
			return err
		}
		if arg == "auto" {
			c.fail(file, t.Line, "%s auto: anycastd needs the AS number", kw)
			return nil
		}
		v, err := count(arg, 1<<32-1)
		if err != nil || v == 0 {
			return synErr(file, t.Line, "%s %q: want an AS number in 1..4294967295", kw, arg)
		}
		if kw == "local-as" {
			n.localAS, n.asLine = uint32(v), t.Line
		} else {
			st.peerAS, st.peerASLine = uint32(v), t.Line
			p.Set("asn", uint32(v), "peer-as")
		}
	case "local-address":
		if err := one(); err != nil {
			return err
		}
		if arg == "auto" {
			p.Del("local_address")
			return nil
		}
		a, err := netip.ParseAddr(arg)
		if err != nil {
			return synErr(file, t.Line, "local-address %q: not an IP address", arg)
		}
		st.localAddr = a.String()
		p.Set("local_address", a.String(), "local-address")
	case "description":
		if err := one(); err != nil {
			return err
		}
		p.Set("description", arg, "")
	case "hold-time":
		if err := one(); err != nil {
			return err
		}
		v, err := count(arg, 65535)
		if err != nil {
			return synErr(file, t.Line, "hold-time %q: want seconds in 0..65535", arg)
		}
		st.holdSet = true
		switch {
		case v == 0:
			p.Set("hold_time", Duration(65535e9), "hold-time 0 (no keepalives): anycastd needs 3s..65535s; the longest, so the router's own hold time applies")
		case v < 3:
			p.Set("hold_time", Duration(3e9), fmt.Sprintf("hold-time %d: BGP allows 0 or at least 3 s", v))
		default:
			p.Set("hold_time", Duration(int64(v)*1e9), src)
		}
	case "md5-password":
		if err := one(); err != nil {
			return err
		}
		st.md5 = t
	case "md5-base64":
		b, ok := exaBool(t)
		if !ok {
			return synErr(file, t.Line, "md5-base64 %q: want true or false", arg)
		}
		st.md5b64, st.md5b64Line = b, t.Line
	case "md5-ip":
		c.note(file, t.Line, "%s: anycastd sets the MD5 key for the session's addresses itself", src)
	case "passive":
		b, ok := exaBool(t)
		if !ok {
			return synErr(file, t.Line, "passive %q: want true or false", arg)
		}
		if b {
			p.Set("passive", true, "passive")
		} else {
			p.Del("passive")
		}
	case "connect":
		if err := one(); err != nil {
			return err
		}
		v, err := count(arg, 65535)
		if err != nil || v == 0 {
			return synErr(file, t.Line, "connect %q: want a port", arg)
		}
		if v != 179 {
			p.Set("port", int(v), "connect")
		}
	case "listen":
		if err := one(); err != nil {
			return err
		}
		v, err := count(arg, 65535)
		if err != nil || v == 0 {
			return synErr(file, t.Line, "listen %q: want a port", arg)
		}
		c.listen[strconv.FormatUint(v, 10)] = fmt.Sprintf("%s:%d", file, t.Line)
	case "outgoing-ttl", "incoming-ttl", "ttl-security":
		if err := one(); err != nil {
			return err
		}
		v, err := count(arg, 255)
		if err != nil || v == 0 {
			return synErr(file, t.Line, "%s %q: want 1..255", kw, arg)
		}
		switch kw {
		case "outgoing-ttl":
			st.outTTL, st.outTTLLine = int(v), t.Line
		case "incoming-ttl":
			st.inTTL, st.inTTLLine = int(v), t.Line
		default: // 3.x: ttl-security N is the minimum TTL accepted
			st.outTTL, st.outTTLLine = 255, t.Line
			st.inTTL, st.inTTLLine = int(v), t.Line
		}
	case "family":
		return c.family(n, t)
	case "nexthop":
		c.note(file, t.Line, "nexthop { … }: nothing to set; anycastd offers the extended next hop (RFC 8950) on every session")
	case "capability":
		return c.capability(n, t)
	case "api":
		c.anyAPI = true
		for _, u := range t.Block {
			switch u.Word(0) {
			case "processes":
				for _, w := range u.Args() {
					if w == "[" || w == "]" {
						continue
					}
					w = strings.Trim(w, "[]")
					if w != "" && !slices.Contains(n.procs, w) {
						n.procs = append(n.procs, w)
					}
				}
			case "processes-match":
				for _, w := range u.Args() {
					w = strings.Trim(w, "[]")
					if w == "" {
						continue
					}
					// Python's re.match: anchored at the start.
					re, err := regexp.Compile("^(?:" + w + ")")
					if err != nil {
						return synErr(file, u.Line, "processes-match %q: not a regular expression anycastd reads: %v", w, err)
					}
					n.match = append(n.match, re)
				}
			}
		}
	case "process":
		// a 3.x process in the neighbor or its group: collected already.
	case "static", "announce", "flow", "l2vpn", "operational", "route":
		c.routes(n, t)
	case "add-path":
		c.note(file, t.Line, "%s: anycastd does not do ADD-PATH", kw)
	case "group-updates", "auto-flush", "adj-rib-out", "adj-rib-in", "manual-eor", "rate-limit", "host-name", "domain-name", "source-interface", "multi-session":
		why := "no anycastd setting; not needed"
		switch kw {
		case "host-name", "domain-name":
			why = "GoBGP always sends the FQDN capability with this host's name"
		case "source-interface":
			why = "set local_address to an address of that interface if the session must use it"
		case "rate-limit":
			why = "anycastd sends UPDATEs on changes only"
		}
		c.note(file, t.Line, "%s: %s", stmtText(t), why)
	default:
		c.fail(file, t.Line, "%q is not a neighbor setting anycastd knows", stmtText(t))
	}
	return nil
}

// stmtText returns a statement's words joined by spaces.
func stmtText(t *Stmt) string {
	return strings.Join(append([]string{t.Word(0)}, t.Args()...), " ")
}

// exaBool reads "kw;", "kw true;" or "kw false;" (also enable/disable).
func exaBool(t *Stmt) (bool, bool) {
	if len(t.Words) == 1 {
		return true, true
	}
	if len(t.Words) != 2 {
		return false, false
	}
	switch t.Word(1) {
	case "true", "enable", "enabled", "yes":
		return true, true
	case "false", "disable", "disabled", "no":
		return false, true
	}
	return false, false
}

// neighborAfter settles what depends on several statements.
func (c *exaConv) neighborAfter(n *exaNeighbor, st *nbState) error {
	p, file := n.peer, n.file
	if _, ok := p.Get("asn"); !ok {
		c.fail(file, n.line, "neighbor %s has no peer-as", n.addr)
	}
	if n.localAS == 0 {
		c.fail(file, n.line, "neighbor %s has no local-as", n.addr)
	}
	if n.routerID == "" && st.localAddr != "" {
		if a := netip.MustParseAddr(st.localAddr); a.Is4() {
			n.routerID, n.routerIDFrom, n.ridLine = a.String(), "local-address (ExaBGP's default router-id)", n.line
		}
	}
	if !st.holdSet {
		p.Set("hold_time", Duration(180e9), "ExaBGP's default hold-time 180 (anycastd's is 9s)")
	}
	if st.md5 != nil {
		pw := st.md5.Word(1)
		why := "md5-password"
		if st.md5b64 {
			b, err := base64.StdEncoding.DecodeString(pw)
			if err != nil {
				return synErr(file, st.md5.Line, "md5-password: not base64, as md5-base64 says")
			}
			if !utf8.Valid(b) || strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				c.fail(file, st.md5.Line, "neighbor %s: the base64 md5-password decodes to bytes that are not text; anycastd's password is a string", n.addr)
				pw = ""
			} else {
				pw, why = string(b), "md5-password, decoded from base64 (md5-base64)"
			}
		}
		switch {
		case len(pw) > 80:
			c.fail(file, st.md5.Line, "neighbor %s: md5-password is longer than 80 bytes (TCP MD5's limit)", n.addr)
		case pw != "":
			p.Set("password", pw, why)
		}
	}
	switch {
	case st.inTTL > 0:
		hops := 256 - st.inTTL
		why := fmt.Sprintf("incoming-ttl %d (GTSM): anycastd sends with TTL 255 and accepts at least 256 - hops", st.inTTL)
		if st.outTTL != 255 && st.outTTL != 0 {
			why += fmt.Sprintf("; outgoing-ttl %d becomes 255", st.outTTL)
		}
		p.Set("ttl_security_hops", hops, why)
	case st.outTTL > 0:
		p.Set("multihop_ttl", st.outTTL, "outgoing-ttl")
	case st.peerAS != 0 && n.localAS != 0 && st.peerAS != n.localAS && !netip.MustParseAddr(n.addr).IsLinkLocalUnicast():
		p.Set("multihop_ttl", 64, "ExaBGP sent with the system's default TTL; 0 would allow directly connected routers only")
	}
	return nil
}

// family converts "family { ipv4 unicast; … }".
func (c *exaConv) family(n *exaNeighbor, t *Stmt) error {
	n.familyLine = t.Line
	n.families = []string{}
	var other []string
	add := func(f string) {
		if !slices.Contains(n.families, f) {
			n.families = append(n.families, f)
		}
	}
	for _, u := range t.Block {
		switch stmtText(u) {
		case "ipv4 unicast":
			add("ipv4")
		case "ipv6 unicast":
			add("ipv6")
		case "all", "minimal":
			add("ipv4")
			add("ipv6")
			if u.Word(0) == "all" {
				other = append(other, "all (the other families)")
			}
		default:
			other = append(other, stmtText(u))
		}
	}
	if len(other) > 0 {
		c.note(n.file, t.Line, "family %s: not carried; anycastd announces unicast host routes only", strings.Join(other, ", "))
	}
	return nil
}

// capability converts "capability { … }".
func (c *exaConv) capability(n *exaNeighbor, t *Stmt) error {
	for _, u := range t.Block {
		switch u.Word(0) {
		case "graceful-restart":
			if len(u.Words) == 1 || u.Word(1) == "enable" || u.Word(1) == "true" {
				c.gr["true"] = fmt.Sprintf("%s:%d", n.file, u.Line)
				continue
			}
			if u.Word(1) == "disable" || u.Word(1) == "false" {
				c.gr["false"] = fmt.Sprintf("%s:%d", n.file, u.Line)
				continue
			}
			v, err := count(u.Word(1), 4095)
			if err != nil || len(u.Words) != 2 {
				return synErr(n.file, u.Line, "graceful-restart %q: want seconds in 0..4095", u.Word(1))
			}
			if v == 0 {
				c.gr["false"] = fmt.Sprintf("%s:%d", n.file, u.Line)
				continue
			}
			c.gr["true"] = fmt.Sprintf("%s:%d", n.file, u.Line)
			c.grTime[strconv.FormatUint(v, 10)] = Duration(int64(v) * 1e9)
		case "add-path":
			c.note(n.file, u.Line, "capability add-path: anycastd does not do ADD-PATH; one path per VIP")
		default:
			c.note(n.file, u.Line, "capability %s: GoBGP negotiates what it supports itself", stmtText(u))
		}
	}
	return nil
}

// routes records every route of a static/announce/flow/… block as an
// issue: anycastd announces only VIPs guarded by checks.
func (c *exaConv) routes(n *exaNeighbor, t *Stmt) {
	var walk func(s *Stmt)
	found := false
	walk = func(s *Stmt) {
		if !s.HasBlock || (len(s.Words) > 1 && s.Word(0) == "route") {
			found = true
			c.fail(n.file, s.Line, "%s %q: anycastd announces only VIPs guarded by checks, no %s routes", t.Word(0), stmtText(s), t.Word(0))
			return
		}
		for _, u := range s.Block {
			walk(u)
		}
	}
	if t.HasBlock {
		for _, u := range t.Block {
			walk(u)
		}
	} else {
		walk(t)
	}
	if !found {
		c.note(n.file, t.Line, "an empty %s block", t.Word(0))
	}
}
