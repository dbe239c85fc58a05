package migrate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// This file turns a healthcheck's addresses and route attributes into
// [[vip]] tables.

// hcAddr is one address (or network) the healthcheck announces.
type hcAddr struct {
	prefix    netip.Prefix
	aggregate bool // a network announced as such
	src       hcVal
}

// addrs reads --ip (with --deaggregate-networks and --start-ip) in the
// order the healthcheck gives them their MEDs.
func (h *hcConv) addrs() ([]hcAddr, error) {
	_, deagg := h.a.last("deaggregate-networks")
	var out []hcAddr
	for _, v := range h.a["ip"] {
		if len(out) > 4096 {
			break // reported below
		}
		var pfx netip.Prefix
		if p, err := netip.ParsePrefix(v.v); err == nil {
			if p.Masked() != p {
				return nil, h.errf(v, "--ip %s: host bits set (the healthcheck refuses it; did you mean %s?)", v.v, p.Masked())
			}
			pfx = p
		} else if a, err := netip.ParseAddr(v.v); err == nil && a.Zone() == "" {
			pfx = netip.PrefixFrom(a, a.BitLen())
		} else {
			return nil, h.errf(v, "--ip %q: not an IP address or network", v.v)
		}
		if pfx.IsSingleIP() {
			out = append(out, hcAddr{prefix: pfx, src: v})
			continue
		}
		if !deagg {
			out = append(out, hcAddr{prefix: pfx, aggregate: true, src: v})
			continue
		}
		if pfx.Addr().BitLen()-pfx.Bits() > 10 {
			h.c.fail(v.file, v.line, "process %s: --ip %s with --deaggregate-networks is more than 1024 host routes", h.p.name, v.v)
			continue
		}
		for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
			out = append(out, hcAddr{prefix: netip.PrefixFrom(a, a.BitLen()), src: v})
			if !a.Next().IsValid() {
				break
			}
		}
	}
	// An address announced twice: once per healthcheck (the second time
	// changed nothing), and once per node.
	var uniq []hcAddr
	seen := map[netip.Prefix]bool{}
	for _, ad := range out {
		if seen[ad.prefix] {
			continue
		}
		seen[ad.prefix] = true
		if other, taken := h.c.prefixes[ad.prefix]; taken {
			h.c.fail(ad.src.file, ad.src.line, "process %s: --ip %s: process %s announces it too; anycastd has one VIP per address: make it one VIP with both checks (require)", h.p.name, ad.prefix, other)
			continue
		}
		if len(uniq) == 4096 {
			h.c.fail(ad.src.file, ad.src.line, "process %s: more than 4096 addresses; the rest are left out", h.p.name)
			break
		}
		uniq = append(uniq, ad)
	}
	out = uniq
	for _, ad := range out {
		h.c.prefixes[ad.prefix] = h.p.name
	}
	if v, ok := h.a.last("start-ip"); ok && len(out) > 0 {
		n, err := strconv.Atoi(strings.TrimSpace(v.v))
		if err != nil {
			return nil, h.errf(v, "--start-ip %q: not a whole number", v.v)
		}
		n %= len(out)
		if n < 0 {
			n += len(out)
		}
		out = append(out[n:], out[:n]...)
	}
	return out, nil
}

// communities splits an ExaBGP community list ("65001:1 65001:2",
// commas too, brackets allowed) and writes each as anycastd takes it.
func communities(s string, large bool) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '[' || r == ']' || r == '\t' }) {
		f = strings.ToLower(f)
		if large {
			parts := strings.Split(f, ":")
			if len(parts) != 3 {
				return nil, fmt.Errorf("%q is not a large community (A:B:C)", f)
			}
			for _, p := range parts {
				if _, err := count(p, 1<<32-1); err != nil {
					return nil, fmt.Errorf("%q is not a large community (A:B:C)", f)
				}
			}
			out = append(out, f)
			continue
		}
		switch f {
		case "no-export", "no-advertise", "blackhole", "graceful-shutdown":
			out = append(out, f)
			continue
		case "no-export-subconfed":
			out = append(out, "65535:65283")
			continue
		case "nopeer", "no-peer":
			out = append(out, "65535:65284")
			continue
		}
		if hi, lo, ok := strings.Cut(f, ":"); ok {
			_, e1 := count(hi, 65535)
			_, e2 := count(lo, 65535)
			if e1 != nil || e2 != nil {
				return nil, fmt.Errorf("%q is not a community (A:B, each 0..65535)", f)
			}
			out = append(out, f)
			continue
		}
		n, err := count(f, 1<<32-1)
		if err != nil {
			return nil, fmt.Errorf("%q is not a community", f)
		}
		out = append(out, fmt.Sprintf("%d:%d", n>>16, n&0xffff))
	}
	var uniq []string
	for _, c := range out {
		if !slices.Contains(uniq, c) {
			uniq = append(uniq, c)
		}
	}
	return uniq, nil
}

// prepend reads an --as-path: copies of the local AS only. ExaBGP sends
// the path as given, so N copies are N-1 prepends.
func (h *hcConv) prepend(name string) (int, string, bool) {
	v, ok := h.a.last(name)
	if !ok {
		return 0, "", false
	}
	local := h.c.localAS()
	var n int
	for _, f := range strings.FieldsFunc(v.v, func(r rune) bool { return r == ' ' || r == ',' || r == '[' || r == ']' }) {
		x, err := count(f, 1<<32-1)
		if err != nil || local == 0 || uint32(x) != local {
			h.c.fail(v.file, v.line, "process %s: %s: anycastd prepends only copies of its own AS (%d), not a path of your choice", h.p.name, src(name, v), local)
			return 0, "", false
		}
		n++
	}
	if n == 0 || n > 11 {
		h.c.fail(v.file, v.line, "process %s: %s: anycastd prepends 0..10 copies of its AS", h.p.name, src(name, v))
		return 0, "", false
	}
	return n - 1, fmt.Sprintf("%s: the local AS %d times", src(name, v), n), true
}

// ibgp reports whether the neighbor at addr is in the local AS.
func (c *exaConv) ibgp(addr string) bool {
	for _, n := range c.neighbors {
		if n.addr == addr {
			as, _ := n.peer.Get("asn")
			return n.localAS != 0 && as == n.localAS
		}
	}
	return false
}

// localAS returns the neighbors' local-as when they agree, else 0.
func (c *exaConv) localAS() uint32 {
	var as uint32
	for _, n := range c.neighbors {
		if n.localAS != 0 {
			if as != 0 && as != n.localAS {
				return 0
			}
			as = n.localAS
		}
	}
	return as
}

// med reads a metric option; the MED of address i adds i × --increase.
func (h *hcConv) med(name string, def int64) (int64, string, error) {
	return h.num(name, def, 0, 1<<32-1)
}

// vips builds the [[vip]] tables guarded by the check.
func (h *hcConv) vips(name, check string) error {
	c, a := h.c, h.a
	addrs, err := h.addrs()
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		c.fail(h.p.file, h.run.Line, "process %s: no --ip: the healthcheck announced the addresses it found on lo; anycastd discovers nothing: give them", h.p.name)
		return nil
	}
	up, upSrc, err := h.med("up-metric", 100)
	if err != nil {
		return err
	}
	down, downSrc, err := h.med("down-metric", 1000)
	if err != nil {
		return err
	}
	disabled, disSrc, err := h.med("disabled-metric", 500)
	if err != nil {
		return err
	}
	inc, _, err := h.num("increase", 1, -(1 << 32), 1<<32)
	if err != nil {
		return err
	}
	_, withdraw := a.last("withdraw-on-down")
	_, hasStart := a.last("start-ip")
	// One VIP, or one per address when their MEDs differ.
	groups := [][]hcAddr{addrs}
	if len(addrs) > 1 && inc != 0 {
		groups = nil
		for _, ad := range addrs {
			groups = append(groups, []hcAddr{ad})
		}
	}
	peers, peersWhy, err := h.peers()
	if err != nil {
		return err
	}
	for i, g := range groups {
		var above []string
		if len(groups) > 1 {
			above = append(above, fmt.Sprintf("--ip %s: the healthcheck's address %d, MED %d + %d × %d (--up-metric, --increase%s): one VIP per address keeps each MED",
				g[0].src.v, i+1, up, i, inc, map[bool]string{true: ", --start-ip", false: ""}[hasStart]))
		}
		v := c.d.AddVIP(name, above...)
		var pfx []string
		agg := false
		for _, ad := range g {
			pfx = append(pfx, ad.prefix.String())
			agg = agg || ad.aggregate
		}
		v.Set("prefixes", pfx, "--ip")
		if agg {
			v.Set("allow_aggregate", true, "--ip with a network: announced as is (anycastd does not put it on the interface)")
		}
		v.Set("checks", []string{check}, "")
		off := int64(i) * inc
		upMED, downMED := up+off, down+off
		if upMED < 0 || upMED > 1<<32-1 || downMED < 0 || downMED > 1<<32-1 {
			c.fail(h.p.file, h.run.Line, "process %s: the MED of address %d is out of range", h.p.name, i+1)
			continue
		}
		medWhy := upSrc
		if _, given := a.last("up-metric"); !given {
			medWhy = "the healthcheck always sends a MED; its default --up-metric 100"
		}
		if off != 0 {
			medWhy += fmt.Sprintf(" + %d", off)
		}
		v.Set("med", upMED, medWhy)
		if len(peers) > 0 {
			v.Set("peers", peers, peersWhy)
		}
		if err := h.attrs(v); err != nil {
			return err
		}
		order(v, "name", "prefixes", "allow_aggregate", "checks", "med", "local_pref", "communities", "large_communities", "prepend", "peers")
		if f, ok := a.last("disable"); ok {
			why := fmt.Sprintf("--disable: differs: while the file existed the healthcheck announced with MED %d (%s); anycastd drains, then withdraws", disabled+off, strings.TrimPrefix(disSrc, "the healthcheck's default "))
			if withdraw {
				why = "--disable: the healthcheck withdrew at once; anycastd drains first"
			}
			if !strings.HasPrefix(f.v, "/") {
				c.fail(f.file, f.line, "process %s: --disable %s: anycastd needs an absolute path", h.p.name, f.v)
			} else {
				v.Set("maintenance_file", f.v, why)
				c.maintenanceFiles[f.v] = true
				c.maintenanceVIPs = append(c.maintenanceVIPs, v)
				c.maintenanceComments[v] = why
			}
		}
		if withdraw {
			if dc, ok := a.last("disabled-community"); ok {
				v.Above = append(v.Above, src("disabled-community", dc)+": with --withdraw-on-down a failing service is withdrawn; nothing to send")
			}
			v.Above = append(v.Above, "--withdraw-on-down: anycastd's default, on_failure = \"withdraw\"")
			continue
		}
		v.Set("on_failure", "degrade", "no --withdraw-on-down: the healthcheck announced a failing service with --down-metric")
		dg := v.Child("vip.degraded")
		dWhy := downSrc
		if off != 0 {
			dWhy += fmt.Sprintf(" + %d", off)
		}
		dg.Set("med", downMED, dWhy)
		if dc, ok := a.last("disabled-community"); ok {
			list, err := communities(dc.v, false)
			if err != nil {
				return h.errf(dc, "--disabled-community: %v", err)
			}
			why := "--disabled-community"
			if _, ok := v.Get("communities"); ok {
				why += ": differs: added to the VIP's communities, not instead of them"
			}
			dg.Set("communities", list, why)
		}
		if n, why, ok := h.prepend("down-as-path"); ok {
			up, _ := v.Get("prepend")
			if n == 0 && up != nil {
				dv, _ := a.last("down-as-path")
				c.fail(dv.file, dv.line, "process %s: --down-as-path is shorter than the up path: anycastd's degraded prepend can only add", h.p.name)
			} else if n > 0 {
				dg.Set("prepend", n, why)
			}
		}
	}
	return nil
}

// attrs sets a VIP's attributes from the options.
func (h *hcConv) attrs(v *Table) error {
	a := h.a
	if lp, ok := a.last("local-preference"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(lp.v), 10, 64)
		if err != nil || n > 1<<32-1 {
			return h.errf(lp, "--local-preference %q: want 0..4294967295", lp.v)
		}
		if n >= 0 {
			v.Set("local_pref", n, src("local-preference", lp)+": sent to iBGP peers only")
		}
	}
	for _, k := range []string{"community", "large-community"} {
		cv, ok := a.last(k)
		if !ok {
			continue
		}
		list, err := communities(cv.v, k == "large-community")
		if err != nil {
			return h.errf(cv, "--%s: %v", k, err)
		}
		if len(list) > 0 {
			v.Set(map[string]string{"community": "communities", "large-community": "large_communities"}[k], list, "--"+k)
		}
	}
	for _, k := range []string{"as-path", "up-as-path"} {
		n, why, ok := h.prepend(k)
		if !ok {
			continue
		}
		var ibgp []string
		for _, p := range h.vipPeers(v) {
			if h.c.ibgp(p) {
				ibgp = append(ibgp, p)
			}
		}
		if len(ibgp) > 0 {
			why += fmt.Sprintf("; differs: ExaBGP sent this path to the iBGP peer %s too, anycastd sends iBGP peers an empty AS path", strings.Join(ibgp, ", "))
		}
		if n > 0 {
			v.Set("prepend", n, why)
		} else {
			v.Above = append(v.Above, why+": what anycastd sends to eBGP peers without a prepend")
		}
	}
	if err := h.recordNextHop(v); err != nil {
		return err
	}
	for _, k := range []string{"ip-ifname"} {
		for _, iv := range a[k] {
			_, ifname, ok := strings.Cut(iv.v, "%")
			if !ok || ifname == "" {
				return h.errf(iv, "--ip-ifname %q: want IP%%IFNAME", iv.v)
			}
			if old, ok := h.c.d.Interface.Get("name"); ok && old != ifname {
				h.c.fail(iv.file, iv.line, "process %s: --ip-ifname %s: anycastd puts every VIP on one interface (%v)", h.p.name, iv.v, old)
				continue
			}
			if ifname != "lo" {
				h.c.d.Interface.Set("name", ifname, "--ip-ifname: one interface for all VIPs")
			}
		}
	}
	if _, ok := a.last("no-ip-setup"); ok {
		h.c.d.Interface.Set("manage", false, "--no-ip-setup: the addresses are yours to add")
	}
	if _, ok := a.last("dynamic-ip-setup"); ok {
		v.Set("remove_on_withdraw", true, "--dynamic-ip-setup")
	}
	// the families the VIP needs on each peer it goes to
	for _, p := range h.vipPeers(v) {
		m := h.c.vipFamilies[p]
		if m == nil {
			m = map[string]bool{}
			h.c.vipFamilies[p] = m
		}
		pv, _ := v.Get("prefixes")
		for _, s := range pv.([]string) {
			if netip.MustParsePrefix(s).Addr().Is4() {
				m["ipv4"] = true
			} else {
				m["ipv6"] = true
			}
		}
	}
	return nil
}

// vipPeers returns the peers a VIP goes to.
func (h *hcConv) vipPeers(v *Table) []string {
	if pv, ok := v.Get("peers"); ok {
		return pv.([]string)
	}
	return h.p.feeds
}

// peers returns the VIP's peers: the neighbors the process feeds, less
// those --neighbor leaves out; nil when that is every neighbor.
func (h *hcConv) peers() ([]string, string, error) {
	feeds := h.p.feeds
	why := "the neighbors whose api names " + h.p.name
	if !h.c.anyAPI {
		why = "the neighbors of the group that declares " + h.p.name
	}
	if ns := h.a["neighbor"]; len(ns) > 0 {
		var keep []string
		for _, nv := range ns {
			ad, err := netip.ParseAddr(nv.v)
			if err != nil {
				return nil, "", h.errf(nv, "--neighbor %q: not an IP address", nv.v)
			}
			if !slices.Contains(feeds, ad.String()) {
				h.c.d.Notef("process %s: --neighbor %s (%s:%d): not a neighbor this process feeds; ExaBGP sent it nothing.", h.p.name, nv.v, nv.file, nv.line)
				continue
			}
			if !slices.Contains(keep, ad.String()) {
				keep = append(keep, ad.String())
			}
		}
		if len(keep) == 0 {
			h.c.fail(h.p.file, h.run.Line, "process %s: --neighbor names no neighbor it feeds: ExaBGP announced it nowhere", h.p.name)
		}
		feeds, why = keep, "--neighbor"
	}
	if len(feeds) == len(h.c.neighbors) {
		return nil, "", nil
	}
	return feeds, why, nil
}
