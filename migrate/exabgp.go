package migrate

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file reads ExaBGP's exabgp.conf (4.x; the 3.x "group NAME {
// neighbor … }" shape and 4.x "template { neighbor NAME { … } }" with
// "inherit NAME;" too): its neighbor blocks become [[bgp.peer]] tables and
// [bgp], its healthcheck processes (exabgp_healthcheck.go) [[check]] and
// [[vip]] tables.

func init() { converters["exabgp"] = convertExaBGP }

// exaProc is one "process NAME { run …; }" block.
type exaProc struct {
	name string
	file string
	stmt *Stmt
	// scope holds the addresses of the neighbors of the 3.x group (or the
	// neighbor) the process was declared in; nil for a top-level process.
	scope []string
	// feeds are the neighbors whose api names the process (or its scope).
	feeds []string
}

// exaNeighbor is one neighbor with what the processes need from it.
type exaNeighbor struct {
	addr    string
	file    string
	line    int
	peer    *Table
	procs   []string         // api { processes [ … ] }
	match   []*regexp.Regexp // api { processes-match [ … ] }
	localAS uint32
	asLine  int
	// routerID is the neighbor's router-id (or its IPv4 local-address).
	routerID, routerIDFrom string
	ridLine                int
	families               []string // nil: no family block
	familyLine             int
}

// exaConv is one conversion.
type exaConv struct {
	d         *Doc
	o         Options
	procs     []*exaProc
	byName    map[string]*exaProc
	templates map[string][]*Stmt
	neighbors []*exaNeighbor
	anyAPI    bool
	failed    map[string]bool
	// node-wide settings, with where they came from
	listen, gr          map[string]string // value -> "file:line"
	grTime              map[string]Duration
	nhUses              map[string]map[string][]exaNH // peer -> VIP family -> the healthchecks' next hops
	vipFamilies         map[string]map[string]bool    // peer -> families its VIPs need
	maintenanceFiles    map[string]bool
	maintenanceVIPs     []*Table
	maintenanceComments map[*Table]string
	prefixes            map[netip.Prefix]string // announced, by process
}

func convertExaBGP(d *Doc, files []Input, o Options) error {
	c := &exaConv{d: d, o: o, byName: map[string]*exaProc{}, templates: map[string][]*Stmt{}, failed: map[string]bool{},
		listen: map[string]string{}, gr: map[string]string{}, grTime: map[string]Duration{},
		nhUses: map[string]map[string][]exaNH{}, vipFamilies: map[string]map[string]bool{},
		maintenanceFiles: map[string]bool{}, maintenanceComments: map[*Table]string{}, prefixes: map[netip.Prefix]string{}}
	type top struct {
		file string
		ss   []*Stmt
	}
	var tops []top
	for _, f := range files {
		ss, err := parseBlocks(f.Name, f.Data, syntax{semicolons: true})
		if err != nil {
			return err
		}
		tops = append(tops, top{f.Name, ss})
	}
	// First the processes and templates, which neighbors refer to.
	for _, t := range tops {
		for _, s := range t.ss {
			if err := c.collect(t.file, s); err != nil {
				return err
			}
		}
	}
	for _, t := range tops {
		for _, s := range t.ss {
			if err := c.top(t.file, s); err != nil {
				return err
			}
		}
	}
	c.linkProcesses()
	for _, p := range c.procs {
		if err := c.process(p); err != nil {
			return err
		}
	}
	c.finish()
	return nil
}

// fail records an issue once (a group's statement is seen once per
// neighbor).
func (c *exaConv) fail(file string, line int, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	k := fmt.Sprintf("%s:%d:%s", file, line, what)
	if c.failed[k] {
		return
	}
	c.failed[k] = true
	c.d.Fail(file, line, "%s", what)
}

// note adds a note about file:line once (a group's or template's
// statement is seen once per neighbor).
func (c *exaConv) note(file string, line int, format string, args ...any) {
	k := fmt.Sprintf("note %s:%d: %s", file, line, fmt.Sprintf(format, args...))
	if c.failed[k] {
		return
	}
	c.failed[k] = true
	c.d.Notef("%s:%d: %s.", file, line, fmt.Sprintf(format, args...))
}

func synErr(file string, line int, format string, args ...any) error {
	return &SyntaxError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// collect records the processes (top-level, or in a 3.x group or
// neighbor) and the 4.x templates.
func (c *exaConv) collect(file string, s *Stmt) error {
	switch s.Word(0) {
	case "process":
		return c.addProc(file, s, nil)
	case "template":
		if !s.HasBlock {
			return synErr(file, s.Line, "template wants a block")
		}
		for _, t := range s.Block {
			if t.Word(0) != "neighbor" || len(t.Words) != 2 || !t.HasBlock {
				return synErr(file, t.Line, "a template holds \"neighbor NAME { … }\" blocks")
			}
			c.templates[t.Word(1)] = append(c.templates[t.Word(1)], t.Block...)
		}
	case "group":
		if !s.HasBlock {
			return synErr(file, s.Line, "group wants a block")
		}
		var addrs []string
		for _, t := range s.Block {
			if t.Word(0) == "neighbor" && len(t.Words) >= 2 {
				addrs = append(addrs, t.Word(1))
			}
		}
		for _, t := range s.Block {
			switch t.Word(0) {
			case "process":
				if err := c.addProc(file, t, addrs); err != nil {
					return err
				}
			case "neighbor":
				for _, u := range t.Block {
					if u.Word(0) == "process" {
						if err := c.addProc(file, u, []string{t.Word(1)}); err != nil {
							return err
						}
					}
				}
			}
		}
	case "neighbor":
		for _, u := range s.Block {
			if u.Word(0) == "process" {
				if err := c.addProc(file, u, []string{s.Word(1)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *exaConv) addProc(file string, s *Stmt, scope []string) error {
	if len(s.Words) != 2 || !s.HasBlock {
		return synErr(file, s.Line, "want \"process NAME { run …; }\"")
	}
	name := s.Word(1)
	if c.byName[name] != nil {
		return synErr(file, s.Line, "process %s is declared twice", name)
	}
	p := &exaProc{name: name, file: file, stmt: s, scope: scope}
	c.procs = append(c.procs, p)
	c.byName[name] = p
	return nil
}

// top converts one top-level statement.
func (c *exaConv) top(file string, s *Stmt) error {
	switch s.Word(0) {
	case "process", "template":
		return nil
	case "neighbor":
		return c.neighbor(file, s, nil)
	case "group":
		var shared []*Stmt
		for _, t := range s.Block {
			if t.Word(0) != "neighbor" && t.Word(0) != "process" {
				shared = append(shared, t)
			}
		}
		for _, t := range s.Block {
			if t.Word(0) == "neighbor" {
				if err := c.neighbor(file, t, shared); err != nil {
					return err
				}
			}
		}
		return nil
	default:
		c.fail(file, s.Line, "%q: not an ExaBGP configuration statement anycastd knows", strings.Join(s.Args(), " "))
		return nil
	}
}

// linkProcesses works out which neighbors each process feeds: in 4.x the
// neighbors whose api names it; a 3.x process declared in a group or
// neighbor feeds those; with no api anywhere (3.x), a top-level process
// feeds every neighbor.
func (c *exaConv) linkProcesses() {
	for _, n := range c.neighbors {
		for _, name := range n.procs {
			p := c.byName[name]
			if p == nil {
				c.fail(n.file, n.line, "neighbor %s: api names process %s, which is not declared", n.addr, name)
				continue
			}
			p.feeds = append(p.feeds, n.addr)
		}
	}
	for _, n := range c.neighbors {
		for _, re := range n.match {
			for _, p := range c.procs {
				if re.MatchString(p.name) && !slices.Contains(p.feeds, n.addr) {
					p.feeds = append(p.feeds, n.addr)
				}
			}
		}
	}
	top := false
	for _, p := range c.procs {
		top = top || p.scope == nil
		if len(p.feeds) > 0 {
			continue
		}
		switch {
		case p.scope != nil:
			for _, s := range p.scope {
				if a, err := netip.ParseAddr(s); err == nil && c.d.Peer(a.String()) != nil {
					p.feeds = append(p.feeds, a.String())
				}
			}
		case !c.anyAPI:
			for _, n := range c.neighbors {
				p.feeds = append(p.feeds, n.addr)
			}
		}
	}
	if top && !c.anyAPI && len(c.neighbors) > 0 {
		c.d.Notef("No neighbor has an api block (ExaBGP 3's shape): each top-level process is taken to feed every neighbor, as ExaBGP 3 did (ExaBGP 4 sends a process's routes only to the neighbors whose api names it).")
	}
}

// finish sets [bgp] from the neighbors and checks what is node-wide.
func (c *exaConv) finish() {
	var asns, rids []string
	asFrom, ridFrom := map[string]string{}, map[string]*exaNeighbor{}
	for _, n := range c.neighbors {
		if n.localAS != 0 {
			k := strconv.FormatUint(uint64(n.localAS), 10)
			if _, ok := asFrom[k]; !ok {
				asns = append(asns, k)
				asFrom[k] = fmt.Sprintf("%s:%d", n.file, n.asLine)
			}
		}
		if n.routerID != "" {
			if _, ok := ridFrom[n.routerID]; !ok {
				rids = append(rids, n.routerID)
				ridFrom[n.routerID] = n
			}
		}
	}
	switch {
	case len(asns) == 1:
		v, _ := strconv.ParseUint(asns[0], 10, 32)
		c.d.BGP.Set("asn", uint32(v), "local-as")
	case len(asns) > 1:
		c.fail("", 0, "the neighbors have different local-as (%s): anycastd has one AS per node", strings.Join(asns, ", "))
	}
	switch {
	case len(rids) == 1:
		c.d.BGP.Set("router_id", rids[0], ridFrom[rids[0]].routerIDFrom)
	case len(rids) > 1:
		c.fail("", 0, "the neighbors have different router-ids (%s): anycastd has one per node", strings.Join(rids, ", "))
	}
	if len(c.listen) == 1 {
		for port, at := range c.listen {
			if port != "179" {
				v, _ := strconv.Atoi(port)
				c.d.BGP.Set("listen_port", v, "listen ("+at+")")
			}
		}
	} else if len(c.listen) > 1 {
		c.fail("", 0, "the neighbors listen on different ports: anycastd has one listener for all sessions")
	}
	if len(c.gr) > 1 {
		c.fail("", 0, "graceful-restart is on for some neighbors and off for others: anycastd's is node-wide")
	} else if at, ok := c.gr["true"]; ok {
		why := "capability graceful-restart (" + at + ")"
		if len(c.grTime) == 0 {
			why += "; no time given: anycastd's graceful_restart_time (120s)"
		}
		c.d.BGP.Set("graceful_restart", true, why)
		if len(c.grTime) > 1 {
			c.fail("", 0, "the neighbors have different graceful-restart times: anycastd's is node-wide")
		}
		for s, d := range c.grTime {
			c.d.BGP.Set("graceful_restart_time", d, "graceful-restart "+s)
		}
	}
	// Families: the block's, else those the VIPs sent to the peer need
	// (ExaBGP negotiates every family without a block).
	for _, n := range c.neighbors {
		need := c.vipFamilies[n.addr]
		addr := netip.MustParseAddr(n.addr)
		own := "ipv4"
		if addr.Is6() && !addr.Is4In6() {
			own = "ipv6"
		}
		fams := n.families
		why := "family"
		if fams == nil {
			why = "no family block: ExaBGP negotiated every family; these are what the VIPs need"
			fams = []string{own}
			for _, f := range []string{"ipv4", "ipv6"} {
				if need[f] && !slices.Contains(fams, f) {
					fams = append(fams, f)
				}
			}
			slices.Sort(fams)
		}
		if own == "ipv4" && slices.Contains(fams, "ipv6") && !need["ipv6"] {
			fams = slices.DeleteFunc(slices.Clone(fams), func(f string) bool { return f == "ipv6" })
			why += "; ipv6 unicast left out: no IPv6 VIP goes to this IPv4 session, which would need next_hop_ipv6"
		}
		if len(fams) == 0 {
			c.fail(n.file, n.familyLine, "neighbor %s negotiates no unicast family: anycastd has nothing to send it", n.addr)
		} else if len(fams) != 1 || fams[0] != own || n.families != nil {
			n.peer.Set("families", fams, why)
		}
		c.setNextHops(n, own, fams)
		if own == "ipv4" && slices.Contains(fams, "ipv6") && need["ipv6"] {
			if _, ok := n.peer.Get("next_hop_ipv6"); !ok {
				c.fail(n.file, n.line, "neighbor %s: IPv6 VIPs over an IPv4 session need an IPv6 next hop: give the healthcheck --next-hop, or set next_hop_ipv6", n.addr)
			}
		}
		order(n.peer, "address", "asn", "description", "local_address", "port", "hold_time", "password", "passive", "multihop_ttl", "ttl_security_hops", "families", "next_hop_ipv4", "next_hop_ipv6")
	}
	c.maintenance()
}

// order puts t's fields in the order of keys (others after, as they
// were).
func order(t *Table, keys ...string) {
	rank := func(k string) int {
		if i := slices.Index(keys, k); i >= 0 {
			return i
		}
		return len(keys)
	}
	slices.SortStableFunc(t.Fields, func(a, b Field) int { return rank(a.Key) - rank(b.Key) })
}

// maintenance puts a --disable file shared by every VIP in [node].
func (c *exaConv) maintenance() {
	if len(c.maintenanceFiles) != 1 || len(c.maintenanceVIPs) != len(c.d.VIPs) || len(c.d.VIPs) < 2 {
		return
	}
	whys := map[string]bool{}
	for _, v := range c.maintenanceVIPs {
		whys[c.maintenanceComments[v]] = true
		v.Del("maintenance_file")
	}
	why := "--disable of every healthcheck: differs: while the file existed the healthcheck withdrew (--withdraw-on-down) or announced with its --disabled-metric MED; anycastd drains, then withdraws"
	if len(whys) == 1 {
		for w := range whys {
			why = strings.Replace(w, "--disable:", "--disable of every healthcheck:", 1)
		}
	}
	for f := range c.maintenanceFiles {
		c.d.Node.Set("maintenance_file", f, why)
	}
}
