// Package migrate converts the configuration of another anycast health
// checker into an anycastd configuration: ExaBGP with its healthcheck
// program (exabgp.go), anycast-healthchecker with BIRD
// (healthchecker.go, bird.go) and keepalived (keepalived.go). Each source's
// grammar lives in its own file; brace-syntax files share the tokenizer in
// blocks.go, INI files are read with gopkg.in/ini.v1.
//
// The output is TOML that anycastd -check-config accepts. Whatever is not
// carried over exactly gets a comment saying why; whatever cannot be
// converted at all is an Issue, listed at the end of the output.
package migrate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// Input is one source file: its name as given (for messages) and its
// content.
type Input struct {
	Name string
	Data []byte
}

// Options supply or override the BGP side: keepalived has none, and
// anycast-healthchecker has none without BIRD's file.
type Options struct {
	// ASN is [bgp] asn; 0: from the source.
	ASN uint32
	// RouterID is [bgp] router_id; "": from the source.
	RouterID string
	// Peers are the routers' addresses. When set they replace the source's
	// peers; a source peer at one of these addresses keeps its other
	// settings.
	Peers []string
	// PeerASN is the asn of every peer; 0: from the source.
	PeerASN uint32
	// ReadFile reads a file a source refers to (ExaBGP's healthcheck
	// --config); nil: such files are not read.
	ReadFile func(name string) ([]byte, error)
}

// Sources are the names Convert takes, in the order shown in help.
var Sources = []string{"exabgp", "anycast-healthchecker", "keepalived"}

// converters holds each source's conversion, set by its file.
var converters = map[string]func(d *Doc, files []Input, o Options) error{}

// Result is a conversion's outcome.
type Result struct {
	// TOML is the anycastd configuration, with its comments.
	TOML []byte
	// Issues are what could not be converted at all (also written at the end
	// of TOML).
	Issues []Issue
	// Warnings are things converted that behave differently in a way the
	// user must know before the cutover (a check timeout shorter than the
	// source's), one per line, each also a comment in TOML.
	Warnings []string
	// Invalid is config.Parse's error for TOML, nil when anycastd accepts it
	// (a conversion with issues, or without a BGP side, may not be
	// accepted).
	Invalid error
}

// Convert converts files of source (one of Sources) into an anycastd
// configuration. A malformed file is an error (a *SyntaxError with the file
// and line, for the brace-syntax files); whatever is well formed but cannot
// be converted is a Result issue.
func Convert(source string, files []Input, o Options) (*Result, error) {
	conv, ok := converters[source]
	if !ok {
		return nil, fmt.Errorf("unknown source %q: want one of %s", source, strings.Join(Sources, ", "))
	}
	if len(files) == 0 {
		return nil, errors.New("no file given")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	d := NewDoc()
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	d.Header = []string{
		fmt.Sprintf("Converted by anycastd migrate %s from %s.", source, strings.Join(names, ", ")),
		"Comments say what was not carried over exactly, and why. Check it with: anycastd -check-config FILE",
	}
	if err := conv(d, files, o); err != nil {
		return nil, err
	}
	d.applyOptions(o)
	d.requireBGP(source)
	d.finish(source)
	d.sortIssues(names)
	out := d.Encode()
	r := &Result{TOML: out, Issues: d.Issues, Warnings: d.warnings()}
	if _, err := config.Parse(out); err != nil {
		r.Invalid = err
	}
	return r, nil
}

// validate checks the flags' values.
func (o Options) validate() error {
	if o.RouterID != "" {
		a, err := netip.ParseAddr(o.RouterID)
		if err != nil || !a.Is4() {
			return fmt.Errorf("--router-id %q: want an IPv4 address", o.RouterID)
		}
	}
	for _, p := range o.Peers {
		if _, err := netip.ParseAddr(p); err != nil {
			return fmt.Errorf("--peer %q: want an IP address", p)
		}
	}
	return nil
}

// applyOptions lets the flags supply or override the BGP side.
func (d *Doc) applyOptions(o Options) {
	override := func(t *Table, key string, v any, flag string) {
		if old, ok := t.Get(key); ok && old != v {
			t.Set(key, v, fmt.Sprintf("%s; the source said %s", flag, value(old)))
			return
		}
		t.Set(key, v, flag)
	}
	if o.ASN != 0 {
		override(d.BGP, "asn", o.ASN, "--asn")
	}
	if o.RouterID != "" {
		override(d.BGP, "router_id", o.RouterID, "--router-id")
	}
	if len(o.Peers) > 0 {
		var peers []*Table
		for _, addr := range o.Peers {
			a := netip.MustParseAddr(addr).String()
			if p := d.Peer(a); p != nil {
				if !slices.Contains(peers, p) {
					peers = append(peers, p)
				}
				continue
			}
			p := &Table{Name: "bgp.peer", Array: true}
			p.Set("address", a, "--peer")
			peers = append(peers, p)
		}
		for _, p := range d.Peers {
			if !slices.Contains(peers, p) {
				addr, _ := p.Get("address")
				d.Notef("The source's peer %s is left out: --peer did not name it.", addr)
			}
		}
		d.Peers = peers
	}
	if o.PeerASN != 0 {
		for _, p := range d.Peers {
			override(p, "asn", o.PeerASN, "--peer-asn")
		}
	}
}

// requireBGP records an issue for each part of the BGP side that neither
// the source nor the flags gave.
func (d *Doc) requireBGP(source string) {
	if _, ok := d.BGP.Get("asn"); !ok {
		d.Fail("", 0, "no local AS: the %s files give none; give --asn", source)
	}
	if _, ok := d.BGP.Get("router_id"); !ok {
		d.Fail("", 0, "no router ID: the %s files give none; give --router-id", source)
	}
	if len(d.Peers) == 0 {
		d.Fail("", 0, "no BGP peer: the %s files give none; give --peer ADDRESS (repeatable) and --peer-asn", source)
	}
	for _, p := range d.Peers {
		if _, ok := p.Get("asn"); !ok {
			addr, _ := p.Get("address")
			d.Fail("", 0, "peer %s has no AS: give --peer-asn", addr)
		}
	}
}

// finish applies what every source's output needs once the flags have
// given the BGP side: a VIP without a check, or guarded by a check that is
// not there, or with a family no peer carries, is commented out (the
// latter is an issue; the source has said why a check is missing), and a
// conversion without any VIP left is an issue.
func (d *Doc) finish(source string) {
	checks := map[string]bool{}
	for _, c := range d.Checks {
		if !c.Commented {
			checks[Name(c)] = true
		}
	}
	live := 0
	for _, v := range d.VIPs {
		if v.Commented {
			continue
		}
		cv, _ := v.Get("checks")
		names, _ := cv.([]string)
		guarded := len(names) > 0
		for _, n := range names {
			guarded = guarded && checks[n]
		}
		if !guarded {
			v.Commented = true
			v.Above = append(v.Above, "Commented out: every anycastd VIP needs a check (see NOT CONVERTED).")
			continue
		}
		if fam := d.uncarried(v); fam != "" && len(d.Peers) > 0 {
			d.Fail("", 0, "vip %s: no [[bgp.peer]] carries %s, so anycastd would refuse it: give a --peer of that family (or set families on a peer); the VIP is commented out", Name(v), fam)
			v.Commented = true
			v.Above = append(v.Above, fmt.Sprintf("Commented out: no [[bgp.peer]] carries %s (see NOT CONVERTED).", fam))
			continue
		}
		live++
	}
	switch {
	case live == 0 && len(d.VIPs) > 0:
		d.Fail("", 0, "no VIP left: every VIP is commented out (see above), so nothing would be announced")
	case live == 0:
		d.Fail("", 0, "no VIP: the %s files define no service to announce; give the files that do", source)
	}
}

// uncarried returns a family ("ipv4", "ipv6") of v's prefixes that none of
// its peers (its peers key, else every peer) carries, or "".
func (d *Doc) uncarried(v *Table) string {
	pv, _ := v.Get("prefixes")
	prefixes, _ := pv.([]string)
	sv, _ := v.Get("peers")
	only, _ := sv.([]string)
	for _, s := range prefixes {
		fam := "ipv4"
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() {
			fam = "ipv6"
		}
		carried := false
		for _, p := range d.Peers {
			addr, _ := p.Get("address")
			a, _ := addr.(string)
			if (len(only) == 0 || slices.Contains(only, a)) && peerCarries(p, fam) {
				carried = true
			}
		}
		if !carried {
			return fam
		}
	}
	return ""
}

// peerCarries reports whether peer p carries family fam: its families, or
// its address's family by default.
func peerCarries(p *Table, fam string) bool {
	if v, ok := p.Get("families"); ok {
		l, _ := v.([]string)
		return slices.Contains(l, fam)
	}
	addr, _ := p.Get("address")
	s, _ := addr.(string)
	a, err := netip.ParseAddr(s)
	return err == nil && (a.Is4() == (fam == "ipv4"))
}

// warnings returns the tables' warnings, each prefixed with its table.
func (d *Doc) warnings() []string {
	var w []string
	for _, group := range [][]*Table{d.Checks, d.VIPs} {
		for _, t := range group {
			if t.Commented {
				continue
			}
			for _, s := range t.Warnings {
				w = append(w, fmt.Sprintf("%s %s: %s", t.Name, Name(t), s))
			}
		}
	}
	return w
}

// sortIssues orders the issues as the files were given, by line within a
// file, and those of no file last, keeping the order of equal ones.
func (d *Doc) sortIssues(files []string) {
	rank := func(i Issue) int {
		if n := slices.Index(files, i.File); n >= 0 {
			return n
		}
		return len(files)
	}
	slices.SortStableFunc(d.Issues, func(a, b Issue) int {
		if r := rank(a) - rank(b); r != 0 {
			return r
		}
		return a.Line - b.Line
	})
}
