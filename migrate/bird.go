package migrate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file converts the BGP side of an anycast-healthchecker host: BIRD's
// bird.conf (BIRD 2 syntax, and BIRD 1.6's protocol-level import/export
// shape). Its `router id` and `protocol bgp` blocks (with the `template
// bgp` blocks they inherit through `from`) become [bgp] and [[bgp.peer]];
// the other protocols are host plumbing anycastd replaces (device, direct,
// kernel, static, the prefix list anycast-healthchecker writes), noted, or,
// where they announce routes to routers anycastd will not (ospf, rip,
// babel), issues.

// BIRD's defaults where anycastd's differ.
const (
	birdHoldTime    = 240 // seconds
	birdMultihopTTL = 64  // multihop without a number
	birdBFDMinRx    = 10 * time.Millisecond
	birdBFDMinTx    = 100 * time.Millisecond
	birdBFDMult     = 5
)

// birdConv holds what the top level of BIRD's files says.
type birdConv struct {
	d         *Doc
	defines   map[string]string
	templates map[string]*Stmt
	filters   map[string]*Stmt
	functions map[string]*Stmt
	files     map[*Stmt]string // top-level statement → its file
	protocols []*Stmt
	bfd       *birdBFD
	kernel    []Issue // where kernel protocols export routes
	imports   []*Stmt // import statements (or channels without one) of BGP channels
	gr        []string
	grOff     []string
	peers     map[string]bool // the addresses of the peers added
}

// birdBFD holds the timers of BIRD's protocol bfd.
type birdBFD struct {
	line          int
	minRx, minTx  time.Duration
	mult          int
	set           bool // the block sets a timer
	multipleTimer bool // several interface blocks with timers
}

// convertBIRD reads BIRD's files and fills d's [bgp] and [[bgp.peer]].
func convertBIRD(d *Doc, files []Input) error {
	b := &birdConv{d: d, defines: map[string]string{}, templates: map[string]*Stmt{}, filters: map[string]*Stmt{},
		functions: map[string]*Stmt{}, files: map[*Stmt]string{}, peers: map[string]bool{}}
	var other []string
	for _, f := range files {
		stmts, err := parseBlocks(f.Name, f.Data, syntax{semicolons: true, blockComments: true})
		if err != nil {
			return err
		}
		for _, s := range stmts {
			b.files[s] = f.Name
			at := fmt.Sprintf("%s:%d", f.Name, s.Line)
			switch w0, w1 := s.Word(0), s.Word(1); {
			case w0 == "router" && w1 == "id" && !s.HasBlock:
				if s.Word(2) == "from" {
					other = append(other, "router id from … ("+at+"): give --router-id")
					continue
				}
				a, err := netip.ParseAddr(b.resolve(s.Word(2)))
				if err != nil || !a.Is4() || len(s.Words) != 3 {
					return &SyntaxError{File: f.Name, Line: s.Line, Msg: fmt.Sprintf("router id %q: want an IPv4 address", s.Word(2))}
				}
				if old, ok := d.BGP.Get("router_id"); ok && old != a.String() {
					d.Notef("router id %s (%s) is left out: %s came first.", a, at, old)
					continue
				}
				d.BGP.Set("router_id", a.String(), "router id")
			case w0 == "define":
				def := strings.Join(s.Args(), " ")
				name, val, ok := strings.Cut(def, "=")
				if !ok {
					return &SyntaxError{File: f.Name, Line: s.Line, Msg: "define without '='"}
				}
				b.defines[strings.TrimSpace(name)] = strings.TrimSpace(val)
			case w0 == "template" && w1 == "bgp" && s.HasBlock && s.Word(2) != "":
				b.templates[s.Word(2)] = s
			case w0 == "protocol" && w1 == "bgp" && s.HasBlock:
				b.protocols = append(b.protocols, s)
			case w0 == "protocol" && w1 == "bfd" && s.HasBlock:
				b.readBFD(s)
			case w0 == "protocol" && w1 == "kernel" && s.HasBlock:
				b.readKernel(f.Name, s)
				other = append(other, "protocol kernel ("+at+")")
			case w0 == "protocol" && (w1 == "ospf" || w1 == "rip" || w1 == "babel"):
				d.Fail(f.Name, s.Line, "protocol %s: anycastd speaks BGP only; if this protocol announces the VIPs (or anything) to routers, keep it in BIRD or move it to BGP", w1)
			case w0 == "protocol" || w0 == "template":
				other = append(other, strings.Join(wordTexts(s), " ")+" ("+at+")")
			case w0 == "filter" && s.HasBlock:
				b.filters[w1] = s
			case w0 == "function":
				b.functions[strings.TrimSuffix(strings.SplitN(w1, "(", 2)[0], "()")] = s
			case w0 == "include":
				d.Notef("include %q (%s) is not read: the prefix list anycast-healthchecker writes becomes the [[vip]] tables; give any other file with protocol bgp blocks too.", s.Word(1), at)
			default:
				other = append(other, strings.Join(wordTexts(s), " ")+" ("+at+")")
			}
		}
	}
	for _, p := range b.protocols {
		if err := b.protocol(p); err != nil {
			return err
		}
	}
	b.finish(other)
	// [bgp] in anycastd's order: asn, router_id, then the rest.
	slices.SortStableFunc(d.BGP.Fields, func(a, b Field) int {
		rank := func(k string) int {
			return map[string]int{"asn": 0, "router_id": 1}[k] + 2*boolInt(k != "asn" && k != "router_id")
		}
		return rank(a.Key) - rank(b.Key)
	})
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolve returns a define's value for its name, else w.
func (b *birdConv) resolve(w string) string {
	if v, ok := b.defines[w]; ok {
		return v
	}
	return w
}

// flatten returns the statements of protocol or template s after those of
// the templates it inherits (`from T`), outermost first.
func (b *birdConv) flatten(s *Stmt, seen map[*Stmt]bool) ([]*Stmt, error) {
	if seen[s] {
		return nil, &SyntaxError{File: b.files[s], Line: s.Line, Msg: "templates inherit from each other in a loop"}
	}
	if len(seen) > maxDepth {
		return nil, &SyntaxError{File: b.files[s], Line: s.Line, Msg: fmt.Sprintf("templates inherit more than %d deep", maxDepth)}
	}
	seen[s] = true
	var out []*Stmt
	for i, w := range s.Words {
		if w.Text == "from" && i+1 < len(s.Words) {
			t, ok := b.templates[s.Words[i+1].Text]
			if !ok {
				return nil, &SyntaxError{File: b.files[s], Line: s.Line, Msg: fmt.Sprintf("template %q is not defined", s.Words[i+1].Text)}
			}
			if _, ok := b.files[t]; !ok {
				b.files[t] = b.files[s]
			}
			inh, err := b.flatten(t, seen)
			if err != nil {
				return nil, err
			}
			out = append(out, inh...)
		}
	}
	return append(out, s.Block...), nil
}

// peerState is what one protocol bgp says, statement by statement.
type peerState struct {
	name, file string
	line       int
	p          *Table
	localAS    uint32
	localLine  int
	neighbor   string
	internal   bool
	iface      string
	disabled   bool
	bfd        string
	gr         string
	channels   []*birdChannel
	proto      birdChannel // BIRD 1.6: import/export at protocol level
	notes      []string
	errf       func(s *Stmt, format string, args ...any) error
}

// birdChannel is an ipv4 or ipv6 channel of a protocol bgp.
type birdChannel struct {
	fam    string
	line   int
	export *Stmt // nil: BIRD's default, export none
	imp    *Stmt // nil: BIRD's default, import all
}

// protocol converts one protocol bgp block into a [[bgp.peer]].
func (b *birdConv) protocol(s *Stmt) error {
	file := b.files[s]
	name := s.Word(2)
	if name == "from" || name == "" {
		name = fmt.Sprintf("(unnamed, line %d)", s.Line)
	}
	st := &peerState{name: name, file: file, line: s.Line, p: &Table{Name: "bgp.peer", Array: true}}
	st.errf = func(x *Stmt, format string, args ...any) error {
		return &SyntaxError{File: file, Line: x.Line, Msg: fmt.Sprintf(format, args...)}
	}
	stmts, err := b.flatten(s, map[*Stmt]bool{})
	if err != nil {
		return err
	}
	for _, x := range stmts {
		if err := b.statement(st, x); err != nil {
			return err
		}
	}
	return b.addPeer(st)
}

// num parses a whole number in 0..max from a word (or a define).
func (b *birdConv) num(st *peerState, x *Stmt, w string, max uint64) (uint64, error) {
	n, err := count(b.resolve(w), max)
	if err != nil {
		return 0, st.errf(x, "%s: %v", strings.Join(x.Args(), " "), err)
	}
	return n, nil
}

// on reads BIRD's switch: empty, on, yes, off, no.
func on(st *peerState, x *Stmt, w string) (bool, error) {
	switch w {
	case "", "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	return false, st.errf(x, "%q: want on or off", w)
}

// statement applies one statement of a protocol bgp (or its templates).
func (b *birdConv) statement(st *peerState, x *Stmt) error {
	p, raw := st.p, strings.Join(wordTexts(x), " ")
	switch w0, w1 := x.Word(0), x.Word(1); {
	case w0 == "local":
		return b.local(st, x)
	case w0 == "neighbor":
		return b.neighbor(st, x)
	case w0 == "interface":
		st.iface = x.Word(1)
	case w0 == "hold" && w1 == "time":
		n, err := b.num(st, x, x.Word(2), 65535)
		if err != nil {
			return err
		}
		if n < 3 {
			b.d.Fail(st.file, x.Line, "protocol bgp %s: hold time %d: anycastd's hold_time is 3s..65535s", st.name, n)
			return nil
		}
		p.Set("hold_time", Duration(time.Duration(n)*time.Second), raw)
	case w0 == "keepalive" && w1 == "time":
		n, err := b.num(st, x, x.Word(2), 65535)
		if err != nil {
			return err
		}
		p.Set("keepalive_interval", Duration(time.Duration(n)*time.Second), raw)
	case w0 == "connect" && w1 == "retry":
		n, err := b.num(st, x, x.Word(3), 65535)
		if err != nil {
			return err
		}
		p.Set("connect_retry", Duration(time.Duration(max(n, 1))*time.Second), raw)
	case w0 == "password":
		if len(x.Word(1)) > 80 {
			b.d.Fail(st.file, x.Line, "protocol bgp %s: the password is longer than 80 bytes, anycastd's (TCP MD5) limit", st.name)
			return nil
		}
		p.Set("password", x.Word(1), "password")
	case w0 == "multihop":
		ttl := uint64(birdMultihopTTL)
		if x.Word(1) != "" {
			n, err := b.num(st, x, x.Word(1), 255)
			if err != nil {
				return err
			}
			ttl = n
		}
		p.Set("multihop_ttl", int(ttl), raw)
	case w0 == "direct":
		p.Del("multihop_ttl")
	case w0 == "ttl" && w1 == "security":
		v, err := on(st, x, x.Word(2))
		if err != nil {
			return err
		}
		if v {
			p.Set("ttl_security_hops", 1, raw+": GTSM, the router directly connected")
		} else {
			p.Del("ttl_security_hops")
		}
	case w0 == "source" && w1 == "address":
		a, err := netip.ParseAddr(b.resolve(x.Word(2)))
		if err != nil {
			return st.errf(x, "source address %q: not an IP address", x.Word(2))
		}
		p.Set("local_address", a.String(), raw)
	case w0 == "passive":
		v, err := on(st, x, x.Word(1))
		if err != nil {
			return err
		}
		if v {
			p.Set("passive", true, raw)
		} else {
			p.Del("passive")
		}
	case w0 == "graceful" && w1 == "restart" && x.Word(2) == "time":
		n, err := b.num(st, x, x.Word(3), 4095)
		if err != nil {
			return err
		}
		if n < 1 {
			b.d.Fail(st.file, x.Line, "protocol bgp %s: graceful restart time 0: anycastd's is 1s..4095s", st.name)
			return nil
		}
		b.d.BGP.Set("graceful_restart_time", Duration(time.Duration(n)*time.Second), raw+" (protocol bgp "+st.name+")")
	case w0 == "graceful" && w1 == "restart":
		if x.Word(2) == "aware" {
			st.gr = "aware"
			return nil
		}
		v, err := on(st, x, x.Word(2))
		if err != nil {
			return err
		}
		st.gr = map[bool]string{true: "on", false: "off"}[v]
	case w0 == "description":
		p.Set("description", x.Word(1), "")
	case w0 == "bfd":
		if x.Word(1) == "graceful" {
			st.bfd = "graceful"
			return nil
		}
		v, err := on(st, x, x.Word(1))
		if err != nil {
			return err
		}
		st.bfd = map[bool]string{true: "on", false: ""}[v]
	case w0 == "disabled":
		v, err := on(st, x, x.Word(1))
		if err != nil {
			return err
		}
		st.disabled = v
	case (w0 == "ipv4" || w0 == "ipv6") && w1 == "":
		return b.channel(st, x)
	case w0 == "import" || w0 == "export":
		// BIRD 1.6: the protocol's own filters.
		if w0 == "import" {
			st.proto.imp = x
		} else {
			st.proto.export = x
		}
		st.proto.line = x.Line
	case w0 == "router" && w1 == "id":
		st.notes = append(st.notes, raw+": anycastd has one router ID, [bgp] router_id")
	default:
		if x.HasBlock && (strings.HasPrefix(w0, "ipv4") || strings.HasPrefix(w0, "ipv6") || strings.HasPrefix(w0, "vpn") || strings.HasPrefix(w0, "flow") || w0 == "l2vpn") || w1 != "" && (w0 == "ipv4" || w0 == "ipv6") {
			st.notes = append(st.notes, fmt.Sprintf("channel %s (line %d): anycastd announces IPv4 and IPv6 unicast only", raw, x.Line))
			return nil
		}
		st.notes = append(st.notes, fmt.Sprintf("%s (line %d): no anycastd setting", raw, x.Line))
	}
	return nil
}

func wordTexts(x *Stmt) []string {
	out := make([]string, len(x.Words))
	for i, w := range x.Words {
		out[i] = w.Text
		if w.Quoted {
			out[i] = strconv.Quote(w.Text)
		}
	}
	return out
}

// local reads `local [ADDR] [port P] [as N]`.
func (b *birdConv) local(st *peerState, x *Stmt) error {
	args := x.Args()
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "as":
			if i+1 >= len(args) {
				return st.errf(x, "local as: no AS number")
			}
			i++
			n, err := b.num(st, x, args[i], 1<<32-1)
			if err != nil || n == 0 {
				return st.errf(x, "local as %q: want an AS number 1..4294967295", args[i])
			}
			st.localAS, st.localLine = uint32(n), x.Line
		case "port":
			i++
			st.notes = append(st.notes, fmt.Sprintf("local port (line %d): anycastd connects from any port; [bgp] listen_port is where it listens", x.Line))
		default:
			a, err := netip.ParseAddr(b.resolve(args[i]))
			if err != nil {
				return st.errf(x, "local %q: not an IP address", args[i])
			}
			st.p.Set("local_address", a.String(), "local "+args[i])
		}
	}
	return nil
}

// neighbor reads `neighbor [ADDR] [port P] [as N] [internal|external]`.
func (b *birdConv) neighbor(st *peerState, x *Stmt) error {
	args := x.Args()
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "range":
			b.d.Fail(st.file, x.Line, "protocol bgp %s: neighbor range: anycastd needs each router's address (no dynamic BGP)", st.name)
			st.disabled = true
			return nil
		case "as":
			if i+1 >= len(args) {
				return st.errf(x, "neighbor as: no AS number")
			}
			i++
			n, err := b.num(st, x, args[i], 1<<32-1)
			if err != nil || n == 0 {
				return st.errf(x, "neighbor as %q: want an AS number 1..4294967295", args[i])
			}
			st.p.Set("asn", uint32(n), strings.Join(wordTexts(x), " "))
		case "port":
			if i+1 >= len(args) {
				return st.errf(x, "neighbor port: no port")
			}
			i++
			n, err := b.num(st, x, args[i], 65535)
			if err != nil || n == 0 {
				return st.errf(x, "neighbor port %q: want 1..65535", args[i])
			}
			if n != 179 {
				st.p.Set("port", int(n), "neighbor … port "+args[i])
			}
		case "internal":
			st.internal = true
		case "external":
		default:
			a, err := netip.ParseAddr(b.resolve(args[i]))
			if err != nil {
				return st.errf(x, "neighbor %q: not an IP address", args[i])
			}
			st.neighbor = a.String()
		}
	}
	return nil
}

// channel reads an ipv4 or ipv6 channel, with or without its block.
func (b *birdConv) channel(st *peerState, x *Stmt) error {
	fam := x.Word(0)
	var ch *birdChannel
	for _, c := range st.channels {
		if c.fam == fam {
			ch = c // a protocol adds to its template's channel
		}
	}
	if ch == nil {
		ch = &birdChannel{fam: fam, line: x.Line}
		st.channels = append(st.channels, ch)
	}
	for _, y := range x.Block {
		raw := strings.Join(wordTexts(y), " ")
		switch w0, w1 := y.Word(0), y.Word(1); {
		case w0 == "import" && w1 != "limit" && w1 != "table" && w1 != "keep":
			ch.imp = y
		case w0 == "export" && w1 != "limit" && w1 != "table":
			ch.export = y
		case w0 == "next" && w1 == "hop" && y.Word(2) == "address":
			a, err := netip.ParseAddr(b.resolve(y.Word(3)))
			if err != nil {
				return st.errf(y, "next hop address %q: not an IP address", y.Word(3))
			}
			if a.Is4() != (fam == "ipv4") {
				b.d.Fail(st.file, y.Line, "protocol bgp %s: %s channel's next hop address %s is of the other family: anycastd's next_hop_%s must be an %s address", st.name, fam, a, fam, fam)
				continue
			}
			st.p.Set("next_hop_"+fam, a.String(), raw)
		case w0 == "next" && w1 == "hop" && y.Word(2) == "self":
			st.p.Del("next_hop_" + fam) // the session's address: anycastd's default
		case w0 == "extended" && w1 == "next":
			st.notes = append(st.notes, fmt.Sprintf("%s %s (line %d): anycastd offers extended next hop for ipv4 on every session", fam, raw, y.Line))
		default:
			st.notes = append(st.notes, fmt.Sprintf("%s channel: %s (line %d): no anycastd setting", fam, raw, y.Line))
		}
	}
	return nil
}
