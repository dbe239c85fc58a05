package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anycastd/anycastd/config"
)

// describe prints what a valid configuration would do: sessions, what is
// announced to whom, and which checks guard it.
func describe(w io.Writer, path string, cfg *config.Config) {
	fmt.Fprintf(w, "%s: configuration OK\n\n", path)
	listen := "no listener (outbound sessions only)"
	if cfg.BGP.ListenPort != 0 {
		listen = fmt.Sprintf("listening on port %d", cfg.BGP.ListenPort)
	}
	if cfg.BGP.GracefulRestart {
		listen += fmt.Sprintf(", graceful restart (restart time %ds)", int(cfg.BGP.GracefulRestartTime/time.Second))
	}
	fmt.Fprintf(w, "BGP: AS %d, router ID %s, %s\n", cfg.BGP.ASN, cfg.BGP.RouterID, listen)
	fmt.Fprintf(w, "Drain: %s\n", drainText(cfg.Node.DrainTime, cfg.Node.MaintenanceFile, "every VIP"))
	if f := cfg.Fleet; f != nil {
		fmt.Fprintf(w, "Fleet: site %s, node %s, etcd %s; %s\n", f.Site, f.Node, strings.Join(f.EtcdEndpoints, ", "), fleetText(cfg))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tAS\tTYPE\tFAMILIES\tNEXT HOP\tHOLD\tOPTIONS")
	for _, p := range cfg.BGP.Peers {
		kind := "eBGP"
		if p.Internal(cfg.BGP.ASN) {
			kind = "iBGP"
		}
		var fams, nhs, opts []string
		for _, f := range p.Families {
			fams = append(fams, string(f))
		}
		if p.NextHopIPv4.IsValid() {
			nhs = append(nhs, p.NextHopIPv4.String())
		}
		if p.NextHopIPv6.IsValid() {
			nhs = append(nhs, p.NextHopIPv6.String())
		}
		if len(nhs) == 0 {
			nhs = []string{"session address"}
		}
		if p.Password != "" {
			opts = append(opts, "md5")
		}
		if p.Passive {
			opts = append(opts, "passive")
		}
		if p.MultihopTTL > 0 {
			opts = append(opts, fmt.Sprintf("multihop %d", p.MultihopTTL))
		}
		if p.BFD != nil {
			opts = append(opts, fmt.Sprintf("bfd tx %v rx %v ×%d", p.BFD.MinTx, p.BFD.MinRx, p.BFD.Multiplier))
		}
		if p.TTLSecurityHops > 0 {
			opts = append(opts, fmt.Sprintf("gtsm %d hop(s)", p.TTLSecurityHops))
		}
		for _, c := range p.Communities {
			opts = append(opts, "+community "+c.String())
		}
		for _, c := range p.LargeCommunities {
			opts = append(opts, "+large-community "+c.String())
		}
		if p.Description != "" {
			opts = append(opts, fmt.Sprintf("%q", p.Description))
		}
		addr := p.Address.String()
		if p.Port != 179 {
			addr = fmt.Sprintf("%s port %d", addr, p.Port)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", addr, p.ASN, kind,
			strings.Join(fams, ","), strings.Join(nhs, ","), p.HoldTime, dash(strings.Join(opts, ", ")))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tPREFIX\tANNOUNCED TO\tCHECKED BY\tATTRIBUTES")
	for _, v := range cfg.VIPs {
		guard := fmt.Sprintf("%s (%s)", strings.Join(v.Checks, ", "), requireText(v))
		for _, p := range v.Prefixes {
			fam := config.FamilyIPv4
			if p.Addr().Is6() {
				fam = config.FamilyIPv6
			}
			var to []string
			for _, peer := range cfg.BGP.Peers {
				if peer.HasFamily(fam) && v.SentTo(peer) {
					to = append(to, peer.Address.String())
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, p, strings.Join(to, ","), guard, dash(attributes(v)))
		}
	}
	tw.Flush()
	for _, v := range cfg.VIPs {
		if v.DrainTime > 0 || v.MaintenanceFile != "" {
			drain := v.DrainTime
			if drain == 0 {
				drain = cfg.Node.DrainTime
			}
			fmt.Fprintf(w, "Drain of VIP %s: %s\n", v.Name, drainText(drain, v.MaintenanceFile, "it"))
		}
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTYPE\tTARGET\tINTERVAL\tTIMEOUT\tRISE\tFALL")
	for _, c := range cfg.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.Name, c.Type, target(c), c.Interval, c.Timeout, c.Rise, c.Fall)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nNothing is announced until its checks have passed `rise` times.")
}

func requireText(v config.VIP) string {
	switch {
	case v.Require == len(v.Checks) && v.Require == 1:
		return "must pass"
	case v.Require == len(v.Checks):
		return "all must pass"
	case v.Require == 1:
		return "any must pass"
	default:
		return fmt.Sprintf("%d of %d must pass", v.Require, len(v.Checks))
	}
}

func attributes(v config.VIP) string {
	var parts []string
	for _, c := range v.Communities {
		parts = append(parts, "community "+c.String())
	}
	for _, c := range v.LargeCommunities {
		parts = append(parts, "large-community "+c.String())
	}
	if v.MED != nil {
		parts = append(parts, fmt.Sprintf("med %d", *v.MED))
	}
	if v.LocalPref != nil {
		parts = append(parts, fmt.Sprintf("local-pref %d (iBGP)", *v.LocalPref))
	}
	if v.Prepend > 0 {
		parts = append(parts, fmt.Sprintf("prepend %d (eBGP)", v.Prepend))
	}
	if g := v.Degraded; g != nil {
		var d []string
		if v.OnFailure == config.OnFailureDegrade {
			d = append(d, "on failure")
		}
		if g.MinPassing > 0 {
			d = append(d, fmt.Sprintf("while >= %d pass", g.MinPassing))
		}
		if g.Prepend > 0 {
			d = append(d, fmt.Sprintf("prepend %d (eBGP)", g.Prepend))
		}
		if g.MED != nil {
			d = append(d, fmt.Sprintf("med %d", *g.MED))
		}
		for _, c := range g.Communities {
			d = append(d, "+community "+c.String())
		}
		parts = append(parts, "degraded ("+strings.Join(d, ", ")+")")
	}
	if v.RemoveOnWithdraw {
		parts = append(parts, "address removed on withdraw")
	}
	if v.OnAddressLost == config.AddressLostWithdraw {
		parts = append(parts, "withdrawn while its address is missing")
	}
	return strings.Join(parts, ", ")
}

func target(c config.Check) string {
	switch {
	case c.TCP != nil:
		return c.TCP.Address
	case c.HTTP != nil:
		return c.HTTP.Method + " " + c.HTTP.URL
	case c.DNS != nil:
		return fmt.Sprintf("%s %s @%s", c.DNS.QueryType, c.DNS.QueryName, c.DNS.Server)
	case c.GRPC != nil:
		return fmt.Sprintf("%s service %q", c.GRPC.Address, c.GRPC.Service)
	case c.Exec != nil:
		return strings.Join(c.Exec.Command, " ")
	case c.Process != nil && c.Process.Unit != "":
		return "unit " + c.Process.Unit
	case c.Process != nil:
		return "pid file " + c.Process.PIDFile
	case c.Listen != nil && c.Listen.Addr.IsValid():
		return fmt.Sprintf("%s %s", c.Listen.Protocol, netip.AddrPortFrom(c.Listen.Addr, c.Listen.Port))
	case c.Listen != nil:
		return fmt.Sprintf("%s port %d", c.Listen.Protocol, c.Listen.Port)
	case c.TTL != nil:
		return "report every " + c.TTL.TTL.String()
	}
	return "-"
}

// drainText describes a drain time and maintenance file; what is what the
// file drains.
func drainText(d time.Duration, file, what string) string {
	s := fmt.Sprintf("announced with GRACEFUL_SHUTDOWN for %v before a withdrawal (SIGTERM, anycastctl drain)", d)
	if d == 0 {
		s = "none: withdrawn at once (SIGTERM, anycastctl drain)"
	}
	if file != "" {
		s += fmt.Sprintf("; maintenance file %s drains %s while it exists", file, what)
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fleetText says what the fleet guard holds: each VIP's min_sites, what
// losing etcd does, and the drain budget.
func fleetText(cfg *config.Config) string {
	floors := []string{"(no VIPs)"}
	for i, v := range cfg.VIPs {
		if i == 0 {
			floors = floors[:0]
		}
		floors = append(floors, fmt.Sprintf("%s %d", v.Name, v.MinSites))
	}
	budget := "no drain limit"
	switch n := cfg.Fleet.MaxDrained; {
	case n == 1:
		budget = "at most 1 site drained at once"
	case n > 1:
		budget = fmt.Sprintf("at most %d sites drained at once", n)
	}
	return fmt.Sprintf("min_sites %s; etcd lost: %s; %s", strings.Join(floors, ", "), cfg.Fleet.OnCoordinatorLost, budget)
}
