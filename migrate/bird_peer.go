package migrate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file turns what bird.go read of a protocol bgp into a [[bgp.peer]],
// and reads the export filters, protocol bfd and protocol kernel.

// peerOrder is the order of a [[bgp.peer]]'s fields in the output.
var peerOrder = []string{"address", "asn", "port", "description", "hold_time", "keepalive_interval", "connect_retry", "password",
	"multihop_ttl", "ttl_security_hops", "passive", "local_address", "families", "next_hop_ipv4", "next_hop_ipv6",
	"communities", "large_communities"}

// addPeer turns a protocol's statements into a [[bgp.peer]].
func (b *birdConv) addPeer(st *peerState) error {
	d, p := b.d, st.p
	at := fmt.Sprintf("protocol bgp %s (%s:%d)", st.name, st.file, st.line)
	if st.disabled {
		d.Notef("%s is disabled (or a neighbor range): left out.", at)
		return nil
	}
	if st.neighbor == "" {
		d.Fail(st.file, st.line, "protocol bgp %s has no neighbor address", st.name)
		return nil
	}
	addr := netip.MustParseAddr(st.neighbor)
	if addr.Is6() && addr.IsLinkLocalUnicast() && addr.Zone() == "" {
		if st.iface == "" {
			d.Fail(st.file, st.line, "protocol bgp %s: link-local neighbor %s without interface", st.name, addr)
			return nil
		}
		addr = addr.WithZone(st.iface)
	}
	if b.peers[addr.String()] {
		d.Fail(st.file, st.line, "protocol bgp %s: a second session with %s; anycastd has one per router", st.name, addr)
		return nil
	}
	if st.localAS != 0 {
		if old, ok := d.BGP.Get("asn"); ok && old != st.localAS {
			d.Fail(st.file, st.localLine, "protocol bgp %s: local as %d, where another protocol says %v: anycastd has one local AS", st.name, st.localAS, old)
			return nil
		}
		d.BGP.Set("asn", st.localAS, fmt.Sprintf("local as %d", st.localAS))
		if st.internal {
			p.Set("asn", st.localAS, "neighbor … internal")
		}
	}
	if _, ok := d.BGP.Get("router_id"); !ok {
		if v, ok := p.Get("local_address"); ok && netip.MustParseAddr(v.(string)).Is4() {
			d.BGP.Set("router_id", v, "the local address of protocol bgp "+st.name+": BIRD's file sets no router id")
		}
	}
	fams, err := b.exports(st)
	if err != nil {
		return err
	}
	if len(fams) == 0 {
		d.Notef("%s exports nothing (BIRD's default is export none): left out, as anycastd would send it every VIP.", at)
		return nil
	}
	if len(st.channels) > 0 {
		c := "channel " + fams[0]
		if len(fams) > 1 {
			c = "channels " + strings.Join(fams, ", ")
		}
		p.Set("families", fams, c)
	}
	if _, ok := p.Get("next_hop_ipv6"); !ok && addr.Is4() && slices.Contains(fams, "ipv6") {
		d.Fail(st.file, st.line, "protocol bgp %s: its ipv6 channel over an IPv4 session has no next hop address: anycastd needs next_hop_ipv6 for it", st.name)
	}
	if _, ok := p.Get("hold_time"); !ok {
		p.Set("hold_time", Duration(birdHoldTime*time.Second), "BIRD's default hold time; anycastd's is 9s")
	}
	if _, ok := p.Get("ttl_security_hops"); ok {
		if ttl, ok := p.Get("multihop_ttl"); ok {
			p.Set("ttl_security_hops", ttl, fmt.Sprintf("ttl security on with multihop %v: GTSM for a router that many hops away", ttl))
			p.Del("multihop_ttl")
		}
	}
	switch {
	case st.bfd != "" && b.bfd == nil:
		st.notes = append(st.notes, "bfd "+st.bfd+": BIRD's file has no protocol bfd, so BIRD ran no BFD session; none here either")
	case st.bfd != "":
		t := p.Child("bgp.peer.bfd")
		c := "protocol bfd (line " + strconv.Itoa(b.bfd.line) + ")"
		if !b.bfd.set {
			c = "BIRD's BFD defaults"
		}
		t.Set("min_tx", Duration(b.bfd.minTx), c)
		t.Set("min_rx", Duration(b.bfd.minRx), c)
		t.Set("multiplier", b.bfd.mult, c)
		if hops, ok := p.Get("ttl_security_hops"); ok && hops != 1 {
			d.Fail(st.file, st.line, "protocol bgp %s: bfd with multihop and ttl security: anycastd runs multihop BFD only with multihop_ttl, which excludes ttl_security_hops", st.name)
		}
		if st.bfd == "graceful" {
			t.Above = append(t.Above, "bfd graceful: BIRD kept the routes (graceful restart) when BFD went down; anycastd closes the session")
		}
	}
	switch st.gr {
	case "on":
		b.gr = append(b.gr, st.name)
	default:
		b.grOff = append(b.grOff, st.name)
	}
	above := []string{at}
	for _, n := range st.notes {
		above = append(above, "  "+n)
	}
	peer := d.AddPeer(addr.String(), above...)
	b.peers[addr.String()] = true
	if addr.Zone() != "" {
		peer.Set("address", addr.String(), "neighbor "+st.neighbor+", interface "+strconv.Quote(st.iface))
	}
	for _, k := range peerOrder[1:] {
		for _, f := range p.Fields {
			if f.Key == k {
				peer.Set(f.Key, f.Value, f.Comment)
			}
		}
	}
	peer.Children = p.Children
	return nil
}

// exports returns the families a protocol announces (its channels whose
// export is not none; BIRD 1.6: its address's family), setting the peer's
// communities from the export filters and noting the filters and imports.
func (b *birdConv) exports(st *peerState) ([]string, error) {
	chans := st.channels
	if len(chans) == 0 {
		fam := "ipv4"
		if netip.MustParseAddr(st.neighbor).Is6() {
			fam = "ipv6"
		}
		st.proto.fam = fam
		chans = []*birdChannel{&st.proto}
	}
	var fams, comms, large []string
	first := true
	for _, ch := range chans {
		if ch.imp == nil || ch.imp.Word(1) != "none" {
			what := "import all (BIRD's default)"
			if ch.imp != nil {
				what = strings.Join(wordTexts(ch.imp), " ")
				b.imports = append(b.imports, ch.imp)
			} else {
				b.imports = append(b.imports, &Stmt{Line: ch.line})
			}
			st.notes = append(st.notes, fmt.Sprintf("%s %s: anycastd accepts no route from a router", ch.fam, what))
		}
		x := ch.export
		if x == nil || x.Word(1) == "none" {
			continue
		}
		fams = append(fams, ch.fam)
		raw := strings.Join(wordTexts(x), " ")
		var c, l []string
		switch x.Word(1) {
		case "all":
			st.notes = append(st.notes, fmt.Sprintf("%s %s: BIRD sent this router every route of its table; anycastd sends exactly the VIPs", ch.fam, raw))
		case "filter":
			body := x
			if !x.HasBlock {
				f, ok := b.filters[x.Word(2)]
				if !ok {
					st.notes = append(st.notes, fmt.Sprintf("%s %s: the filter is not in the files given; check that it changes no attribute", ch.fam, raw))
					break
				}
				body = f
			}
			c, l = b.analyse(st, body.Block, true, map[string]bool{})
			st.notes = append(st.notes, fmt.Sprintf("%s %s: anycastd exports exactly the VIPs", ch.fam, raw))
		default:
			c, l = b.analyse(st, []*Stmt{x}, false, map[string]bool{})
			st.notes = append(st.notes, fmt.Sprintf("%s %s: anycastd exports exactly the VIPs", ch.fam, raw))
		}
		if !first && (!slices.Equal(c, comms) || !slices.Equal(l, large)) {
			b.d.Fail(st.file, x.Line, "protocol bgp %s: the channels' export filters add different communities; anycastd's peer communities go with both families", st.name)
		}
		comms, large, first = c, l, false
	}
	if len(comms) > 0 {
		st.p.Set("communities", comms, "bgp_community.add in the export filter")
	}
	if len(large) > 0 {
		st.p.Set("large_communities", large, "bgp_large_community.add in the export filter")
	}
	return fams, nil
}

// analyse looks through filter statements for what changes the routes
// sent: a community added at the filter's top level becomes the peer's;
// any other change of a bgp_ attribute is an issue. Functions the
// statements call are looked through too.
func (b *birdConv) analyse(st *peerState, stmts []*Stmt, top bool, seen map[string]bool) (comms, large []string) {
	for _, x := range stmts {
		var sb strings.Builder
		for _, w := range x.Words {
			sb.WriteString(w.Text)
		}
		raw := sb.String()
		if c, ok := b.communityAdd(raw, "bgp_community.add((", 2); ok && top {
			comms = append(comms, c)
			continue
		}
		if c, ok := b.communityAdd(raw, "bgp_large_community.add((", 3); ok && top {
			large = append(large, c)
			continue
		}
		if attr := changedAttr(raw); attr != "" {
			b.d.Fail(st.file, x.Line, "protocol bgp %s: the export filter changes %s: set med, prepend or communities on the [[vip]] (or communities on the [[bgp.peer]]) by hand", st.name, attr)
		}
		for _, n := range calls(strings.Join(wordTexts(x), " ")) {
			if fn, ok := b.functions[n]; ok && !seen[n] {
				seen[n] = true // each function once per filter
				c, l := b.analyse(st, fn.Block, false, seen)
				comms, large = append(comms, c...), append(large, l...)
			}
		}
		if x.HasBlock {
			c, l := b.analyse(st, x.Block, false, seen)
			comms, large = append(comms, c...), append(large, l...)
		}
	}
	return comms, large
}

// calls returns the names written before a '(' in raw, in order: the
// functions a statement may call.
func calls(raw string) []string {
	var out []string
	for i := 0; i < len(raw); i++ {
		if raw[i] != '(' {
			continue
		}
		j := i
		for j > 0 && (raw[j-1] == '_' || raw[j-1] >= 'a' && raw[j-1] <= 'z' || raw[j-1] >= 'A' && raw[j-1] <= 'Z' || raw[j-1] >= '0' && raw[j-1] <= '9') {
			j--
		}
		if j < i {
			out = append(out, raw[j:i])
		}
	}
	return out
}

// communityAdd reads "bgp_community.add((A,B))" (n = 2) or
// "bgp_large_community.add((A,B,C))" (n = 3) as "A:B" or "A:B:C".
func (b *birdConv) communityAdd(raw, prefix string, n int) (string, bool) {
	if !strings.HasPrefix(raw, prefix) || !strings.HasSuffix(raw, "))") {
		return "", false
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(raw, prefix), "))"), ",")
	if len(parts) != n {
		return "", false
	}
	for i, p := range parts {
		v, err := count(b.resolve(p), 1<<32-1)
		if err != nil || (n == 2 && v > 65535) {
			return "", false
		}
		parts[i] = strconv.FormatUint(v, 10)
	}
	return strings.Join(parts, ":"), true
}

// changedAttr returns the bgp_ attribute a filter statement (its words
// joined without spaces) assigns or modifies, or "".
func changedAttr(raw string) string {
	for i := 0; ; {
		j := strings.Index(raw[i:], "bgp_")
		if j < 0 {
			return ""
		}
		start := i + j
		end := start
		for end < len(raw) && (raw[end] == '_' || raw[end] >= 'a' && raw[end] <= 'z' || raw[end] >= '0' && raw[end] <= '9') {
			end++
		}
		rest := raw[end:]
		switch {
		case strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=="):
			return raw[start:end]
		case strings.HasPrefix(rest, ".add("), strings.HasPrefix(rest, ".delete("), strings.HasPrefix(rest, ".prepend("),
			strings.HasPrefix(rest, ".filter("), strings.HasPrefix(rest, ".empty"):
			return raw[start:end]
		}
		i = end
	}
}

// readBFD reads protocol bfd's timers (the first block that sets any).
func (b *birdConv) readBFD(s *Stmt) {
	bf := &birdBFD{line: s.Line, minRx: birdBFDMinRx, minTx: birdBFDMinTx, mult: birdBFDMult}
	var walk func(stmts []*Stmt, block *Stmt)
	var setIn *Stmt
	walk = func(stmts []*Stmt, block *Stmt) {
		for _, x := range stmts {
			if x.HasBlock {
				walk(x.Block, x)
				continue
			}
			w := wordTexts(x)
			var key string
			var rest []string
			switch {
			case len(w) >= 2 && w[0] == "interval":
				key, rest = "interval", w[1:]
			case len(w) >= 4 && w[0] == "min" && w[2] == "interval":
				key, rest = w[1], w[3:]
			case len(w) == 2 && w[0] == "multiplier":
				key, rest = "multiplier", w[1:]
			default:
				continue
			}
			if setIn != nil && setIn != block {
				bf.multipleTimer = true
				continue
			}
			setIn = block
			if key == "multiplier" {
				if n, err := count(b.resolve(rest[0]), 255); err == nil && n > 0 {
					bf.mult, bf.set, bf.line = int(n), true, x.Line
				}
				continue
			}
			dur, ok := birdTime(rest)
			if !ok || dur < 10*time.Millisecond || dur > time.Minute {
				b.d.Notef("protocol bfd, line %d: %s is not a time in 10ms..60s; BIRD's default kept.", x.Line, strings.Join(w, " "))
				continue
			}
			bf.set, bf.line = true, x.Line
			switch key {
			case "interval":
				bf.minRx, bf.minTx = dur, dur
			case "rx":
				bf.minRx = dur
			case "tx":
				bf.minTx = dur
			}
		}
	}
	walk(s.Block, s)
	if bf.multipleTimer {
		b.d.Notef("protocol bfd (line %d) has timers in several blocks: the first block's are used for every BFD session.", s.Line)
	}
	b.bfd = bf
}

// birdTime reads "100 ms", "100ms", "1 s", "500 us".
func birdTime(w []string) (time.Duration, bool) {
	s := strings.Join(w, "")
	unit := time.Second
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"ms", time.Millisecond}, {"us", time.Microsecond}, {"s", time.Second}} {
		if strings.HasSuffix(s, u.suffix) {
			s, unit = strings.TrimSuffix(s, u.suffix), u.d
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// readKernel records the exports of a protocol kernel (protocol-level in
// BIRD 1.6, in its channel in BIRD 2).
func (b *birdConv) readKernel(file string, s *Stmt) {
	for _, x := range s.Block {
		stmts := []*Stmt{x}
		if x.HasBlock {
			stmts = x.Block
		}
		for _, y := range stmts {
			if y.Word(0) == "export" && y.Word(1) != "none" && y.Word(1) != "limit" {
				b.kernel = append(b.kernel, Issue{File: file, Line: y.Line})
			}
		}
	}
}

// finish writes what concerns every session: graceful restart, the
// routes BIRD put in the kernel, and the top-level statements with no
// anycastd meaning.
func (b *birdConv) finish(other []string) {
	d := b.d
	if len(b.gr) > 0 {
		d.BGP.Set("graceful_restart", true, "graceful restart on (protocol bgp "+strings.Join(b.gr, ", ")+")")
		if len(b.grOff) > 0 {
			d.Notef("graceful restart is on in protocol bgp %s but not in %s: anycastd's graceful_restart is for every session.",
				strings.Join(b.gr, ", "), strings.Join(b.grOff, ", "))
		}
	}
	if len(b.kernel) > 0 && len(b.imports) > 0 {
		d.Fail(b.kernel[0].File, b.kernel[0].Line, "protocol kernel exports routes, and protocol bgp imports the routers' (line %d): BIRD put those routes in the host's routing table; anycastd installs none, so keep BIRD (or another daemon) for them", b.imports[0].Line)
	}
	if len(other) > 0 {
		d.Notef("BIRD's host plumbing, which anycastd replaces (it announces the [[vip]] prefixes itself and puts their addresses on [interface]): %s.", strings.Join(other, "; "))
	}
}
