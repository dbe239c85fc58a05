package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// Text output: aligned tables for people. An empty cell is "-", so that
// every column is there for the eye (and for `awk`).

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes cells as one table row, each made safe for a terminal (clean).
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		cells[i] = clean(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// clean makes text from the daemon (check output and errors, reasons, ttl
// reports, peers' messages) safe to print on a terminal: control characters
// (ESC, BEL, CR, newline, tab and the rest of C0, DEL, C1), other characters
// that do not print (bidi overrides, zero-width marks) and invalid UTF-8 are
// shown as Go escapes (\x1b, \a, \r, \n, \u202e, \xff); the rest is
// unchanged. Every table cell and event line goes through it; -o json is
// left as the API says.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unprintable(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// unprintable reports whether r must be escaped to be shown.
func unprintable(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// printJSON writes m as indented JSON, with every field present.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// enumName turns VIP_STATE_UP into "up", given the prefix "VIP_STATE_".
func enumName(s fmt.Stringer, prefix string) string {
	n := strings.TrimPrefix(s.String(), prefix)
	if n == "UNSPECIFIED" {
		return "none"
	}
	return strings.ToLower(n)
}

func vipState(s pb.VIPState) string       { return enumName(s, "VIP_STATE_") }
func checkStatus(s pb.CheckStatus) string { return enumName(s, "CHECK_STATUS_") }
func peerState(s pb.PeerState) string     { return enumName(s, "PEER_STATE_") }
func outcome(o pb.Outcome) string         { return enumName(o, "OUTCOME_") }

func ago(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return since(now, ts.AsTime())
}

func renderStatus(w io.Writer, now time.Time, n *pb.Node) {
	tw := newTable(w)
	row(tw, "version", fmt.Sprintf("%s (%s)", n.Version, n.GoVersion))
	row(tw, "started", fmt.Sprintf("%s (up %s)", n.StartTime.AsTime().Local().Format(time.RFC3339), human(n.Uptime.AsDuration())))
	row(tw, "AS", strconv.FormatUint(uint64(n.Asn), 10))
	row(tw, "router ID", n.RouterId)
	drained := "no"
	if d := n.GetDrain(); d.GetDrained() {
		drained = "yes: " + d.Reason
	} else if d.GetWaiting() != "" {
		drained = "not yet, " + d.Waiting
	}
	row(tw, "node drained", drained)
	row(tw, "VIPs", fmt.Sprintf("%d of %d announced (%d prefixes)", n.VipsAnnounced, n.Vips, n.PrefixesAnnounced))
	row(tw, "BGP sessions", fmt.Sprintf("%d of %d established", n.PeersEstablished, n.Peers))
	tw.Flush()
}

// attributes formats route attributes the way -check-config does.
func attributes(communities, large []string, med, localPref *uint32, prepend uint32) string {
	var parts []string
	for _, c := range communities {
		parts = append(parts, "community "+c)
	}
	for _, c := range large {
		parts = append(parts, "large-community "+c)
	}
	if med != nil {
		parts = append(parts, fmt.Sprintf("med %d", *med))
	}
	if localPref != nil {
		parts = append(parts, fmt.Sprintf("local-pref %d", *localPref))
	}
	if prepend > 0 {
		parts = append(parts, fmt.Sprintf("prepend %d", prepend))
	}
	return strings.Join(parts, ", ")
}

func renderVIPs(w io.Writer, now time.Time, vips []*pb.VIP) {
	tw := newTable(w)
	row(tw, "VIP", "STATE", "FOR", "PREFIXES", "ANNOUNCED", "CHECKS", "ATTRIBUTES", "REASON")
	for _, v := range vips {
		var prefixes, checks []string
		n, attrs := 0, ""
		for _, p := range v.Prefixes {
			prefixes = append(prefixes, p.Prefix)
			if p.Announced {
				n++
				if a := p.Attributes; attrs == "" && a != nil {
					attrs = attributes(a.Communities, a.LargeCommunities, a.Med, a.LocalPref, a.Prepend)
				}
			}
		}
		for _, c := range v.Checks {
			checks = append(checks, c.Name+":"+checkStatus(c.Status))
		}
		row(tw, v.Name, vipState(v.State), ago(now, v.Since), strings.Join(prefixes, ","),
			fmt.Sprintf("%d/%d", n, len(v.Prefixes)), strings.Join(checks, ","), attrs, v.Reason)
	}
	tw.Flush()
}

// lastResult is "pass 312µs" or "fail 1.2ms: connection refused".
func lastResult(r *pb.ProbeResult) string {
	if r == nil {
		return ""
	}
	s := outcome(r.Outcome) + " " + latency(r.Latency.AsDuration())
	if r.Error != "" {
		s += ": " + r.Error
	}
	return s
}

// latency rounds d for a table: 312µs, 1.2ms, 45ms, 1.5s.
func latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func renderChecks(w io.Writer, now time.Time, checks []*pb.Check) {
	tw := newTable(w)
	row(tw, "CHECK", "TYPE", "TARGET", "STATUS", "FOR", "PASSES", "FAILS", "RISE/FALL", "VIPS", "LAST RESULT")
	for _, c := range checks {
		var last *pb.ProbeResult
		if n := len(c.Results); n > 0 {
			last = c.Results[n-1]
		}
		row(tw, c.Name, c.Type, c.Target, checkStatus(c.Status), ago(now, c.Since),
			strconv.Itoa(int(c.ConsecutivePasses)), strconv.Itoa(int(c.ConsecutiveFailures)),
			fmt.Sprintf("%d/%d", c.Rise, c.Fall), strings.Join(c.Vips, ","), lastResult(last))
	}
	tw.Flush()
}

// renderCheck shows one check with its recent probes.
func renderCheck(w io.Writer, now time.Time, c *pb.Check) {
	tw := newTable(w)
	row(tw, "check", c.Name)
	row(tw, "type", c.Type)
	row(tw, "target", c.Target)
	row(tw, "status", fmt.Sprintf("%s for %s (%d consecutive passes, %d failures; rise %d, fall %d)",
		checkStatus(c.Status), ago(now, c.Since), c.ConsecutivePasses, c.ConsecutiveFailures, c.Rise, c.Fall))
	row(tw, "interval", fmt.Sprintf("%s (timeout %s)", c.Interval.AsDuration(), c.Timeout.AsDuration()))
	row(tw, "probes", fmt.Sprintf("%d passed, %d failed", c.TotalPasses, c.TotalFailures))
	row(tw, "guards", strings.Join(c.Vips, ", "))
	tw.Flush()
	fmt.Fprintln(w)
	withOutput := false
	for _, r := range c.Results {
		withOutput = withOutput || r.Output != ""
	}
	tw = newTable(w)
	head := []string{"TIME", "LATENCY", "OUTCOME", "ERROR"}
	if withOutput {
		head = append(head, "OUTPUT")
	}
	row(tw, head...)
	for _, r := range c.Results {
		cells := []string{r.Time.AsTime().Local().Format("15:04:05.000"), latency(r.Latency.AsDuration()), outcome(r.Outcome), r.Error}
		if withOutput {
			out, _, _ := strings.Cut(strings.TrimSpace(r.Output), "\n")
			cells = append(cells, out)
		}
		row(tw, cells...)
	}
	tw.Flush()
}

func renderPeers(w io.Writer, now time.Time, peers []*pb.Peer) {
	tw := newTable(w)
	row(tw, "PEER", "AS", "TYPE", "STATE", "FOR", "BFD", "FAMILIES", "UPDATES SENT", "UPDATES RCVD",
		"PREFIXES SENT", "PREFIXES RCVD", "FLAPS", "LAST ERROR", "DESCRIPTION")
	for _, p := range peers {
		typ := "eBGP"
		if p.Internal {
			typ = "iBGP"
		}
		row(tw, p.Address, strconv.FormatUint(uint64(p.Asn), 10), typ, peerState(p.State), ago(now, p.Since), bfdText(p.Bfd),
			strings.Join(p.Families, ","), u64(p.GetSent().GetUpdate()), u64(p.GetReceived().GetUpdate()),
			u64(p.PrefixesSent), received(p), u64(uint64(p.Flaps)), p.LastError, p.Description)
	}
	tw.Flush()
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// bfdText is a peer's BFD session: "-" without one, "up 300ms×3" (the
// negotiated transmit interval and detection time), or the state and, when
// it left up, why: "down (control_detection_time_expired)".
func bfdText(b *pb.BFDSession) string {
	switch {
	case b == nil:
		return "-"
	case b.State == "up":
		return fmt.Sprintf("up tx %v detect %v", b.GetTxInterval().AsDuration(), b.GetDetectionTime().AsDuration())
	case b.Diag != "" && b.Diag != "none":
		return b.State + " (" + b.Diag + ")"
	}
	return b.State
}

// received is the prefixes received on the session, with the limit per
// family when there is one, and how often the limit closed the session.
func received(p *pb.Peer) string {
	s := u64(p.PrefixesReceived)
	if p.MaxReceivedPrefixes > 0 {
		s += " (max " + u64(uint64(p.MaxReceivedPrefixes)) + ")"
	}
	if p.MaxPrefixesExceeded > 0 {
		s += ", exceeded " + u64(p.MaxPrefixesExceeded) + "x"
	}
	return s
}

// renderRoutes shows the routes of every peer in one table, then a line for
// each peer that is sent none.
func renderRoutes(w io.Writer, peers []*pb.PeerRoutes) {
	var b strings.Builder
	tw := newTable(&b)
	row(tw, "PEER", "PREFIX", "VIP", "NEXT HOP", "AS PATH", "ATTRIBUTES")
	var notes []string
	n := 0
	for _, p := range peers {
		n += len(p.Routes)
		if len(p.Routes) == 0 {
			if p.State == pb.PeerState_PEER_STATE_ESTABLISHED {
				notes = append(notes, fmt.Sprintf("%s: nothing advertised", p.Peer))
			} else {
				notes = append(notes, fmt.Sprintf("%s: session %s, nothing advertised", p.Peer, peerState(p.State)))
			}
		}
		for _, r := range p.Routes {
			path := make([]string, len(r.AsPath))
			for i, a := range r.AsPath {
				path[i] = strconv.FormatUint(uint64(a), 10)
			}
			row(tw, p.Peer, r.Prefix, r.Vip, r.NextHop, strings.Join(path, " "),
				attributes(r.Communities, r.LargeCommunities, r.Med, r.LocalPref, 0))
		}
	}
	tw.Flush()
	if n > 0 {
		io.WriteString(w, b.String())
		if len(notes) > 0 {
			fmt.Fprintln(w)
		}
	}
	for _, note := range notes {
		fmt.Fprintln(w, clean(note))
	}
}

// eventLine formats one event on one line, without a table: events are
// printed as they arrive.
func eventLine(ev *pb.Event) string {
	t := ev.Time.AsTime().Local().Format("2006-01-02T15:04:05.000Z07:00")
	var kind, name, from, to, detail string
	switch k := ev.Kind.(type) {
	case *pb.Event_Vip:
		kind, name, from, to = "vip", k.Vip.Vip, vipState(k.Vip.From), vipState(k.Vip.To)
		detail = k.Vip.Reason
	case *pb.Event_Check:
		kind, name, from, to = "check", k.Check.Check, checkStatus(k.Check.From), checkStatus(k.Check.To)
		detail = lastResult(k.Check.Last)
	case *pb.Event_Peer:
		kind, name, from, to = "peer", k.Peer.Peer, peerState(k.Peer.From), peerState(k.Peer.To)
		detail = fmt.Sprintf("AS %d", k.Peer.Asn)
	case *pb.Event_Bfd:
		kind, name, from, to = "bfd", k.Bfd.Peer, k.Bfd.From, k.Bfd.To
		detail = "diag " + k.Bfd.Diag + ", peer " + k.Bfd.Remote
	default:
		kind = "unknown"
	}
	line := fmt.Sprintf("%-6d %s  %-5s  %-16s %s -> %s", ev.Seq, t, kind, clean(name), from, to)
	if detail != "" {
		line += "  (" + clean(detail) + ")"
	}
	return line
}
