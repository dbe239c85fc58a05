package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// errNoFleet is the answer of a daemon without [fleet] (exit status 1, as
// for restart without graceful_restart).
var errNoFleet = errors.New("this anycastd has no [fleet] in its configuration: no fleet guard, no fleet view")

// cmdFleet shows the fleet as the daemon sees it: a line for the
// coordinator and drain slots, then one row per VIP and node.
func cmdFleet(ctx context.Context, c *cli, args []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.api.GetFleet(ctx, &pb.GetFleetRequest{Vip: arg(args)})
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		if err := printJSON(c.stdout, resp); err != nil {
			return err
		}
	} else if resp.Configured {
		renderFleet(c.stdout, time.Now(), resp.Fleet)
	}
	if !resp.Configured {
		return errNoFleet
	}
	return nil
}

// renderFleet writes the summary line, then the table: VIP, MIN (this
// node's min_sites), SITES (announcing/known), and per node SITE, NODE
// (this node's marked "*"), STATE, SINCE, REASON. A VIP no node publishes
// has one row of "-".
func renderFleet(w io.Writer, now time.Time, f *pb.Fleet) {
	fmt.Fprintln(w, clean(fleetSummary(now, f)))
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "VIP", "MIN", "SITES", "SITE", "NODE", "STATE", "SINCE", "REASON")
	for _, v := range f.Vips {
		head := []string{v.Name, strconv.FormatUint(uint64(v.MinSites), 10), fmt.Sprintf("%d/%d", v.AnnouncingSites, v.KnownSites)}
		if len(v.Nodes) == 0 {
			row(tw, append(head, "", "", "", "", "")...)
		}
		for _, n := range v.Nodes {
			node := n.Node
			if n.Site == f.Site && n.Node == f.Node {
				node += "*"
			}
			state := vipState(n.State)
			if n.NoBgp {
				state += " (no BGP session)"
			}
			row(tw, append(head[:3:3], n.Site, node, state, ago(now, n.Since), n.Reason)...)
		}
	}
	tw.Flush()
}

// fleetSummary is the line above the table, e.g. "this node: ams1/edge1
// (*); coordinator connected for 5m0s; drain slots: 1 of 1 held:
// lhr1/edge1 for 3m0s (kernel upgrade)".
func fleetSummary(now time.Time, f *pb.Fleet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "this node: %s/%s (*); ", f.Site, f.Node)
	co := f.GetCoordinator()
	if co.GetConnected() {
		b.WriteString("coordinator connected")
	} else {
		b.WriteString("coordinator LOST")
	}
	if co.GetSince() != nil {
		b.WriteString(" for " + ago(now, co.Since))
	}
	if !co.GetConnected() && co.GetError() != "" {
		b.WriteString(" (" + co.Error + ")")
	}
	b.WriteString("; drain slots: ")
	if f.MaxDrained == 0 {
		fmt.Fprintf(&b, "no limit, %d held", len(f.DrainSlots))
	} else {
		fmt.Fprintf(&b, "%d of %d held", len(f.DrainSlots), f.MaxDrained)
	}
	for i, s := range f.DrainSlots {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s/%s", sep, s.Site, s.Node)
		if s.Since != nil {
			b.WriteString(" for " + ago(now, s.Since))
		}
		if s.Reason != "" {
			b.WriteString(" (" + s.Reason + ")")
		}
	}
	return b.String()
}
