package migrate

import (
	"fmt"
	"slices"
	"strings"
)

// This file converts a vrrp_instance into a [[vip]].
//
// VRRP elects one master per instance by priority; anycast lets every
// healthy node announce and the routers choose by path. Where the
// keepalived configuration expresses an order (a higher priority node is
// preferred), the VIP carries it as MED = 255 - priority: the routers
// prefer the lowest MED among paths from the same neighbouring AS, so the
// node that VRRP would make master is preferred, and a track_script weight
// that would lower the priority (and lose the election) becomes
// on_failure = "degrade" with a worse MED. A weight of 0 (the default)
// made the instance FAULT, giving its addresses up: a withdrawal.

// kaTrack is one track_script entry of an instance.
type kaTrack struct {
	script  *kaScript
	weight  int
	reverse bool
	given   bool // the weight was written (on the vrrp_script or the track_script line)
}

// kaAddr is one line of virtual_ipaddress(_excluded).
type kaAddr struct {
	prefix  string // the host route
	src     string // the address as written
	changed bool   // a prefix length was dropped
	dev     string
	label   string
	line    int
}

// vrrpKeywords are the vrrp_instance settings that have no anycast
// meaning, with what replaces them.
var vrrpKeywords = map[string]string{
	"virtual_router_id":          "identifies the VRRP group on the LAN; no anycast meaning",
	"advert_int":                 "a backup took over about 3 advert intervals after the master went silent; here the routers drop a dead node's routes when its BGP session ends (hold_time, 9s by default; BFD for less), and anycastd withdraws at once when its checks fail",
	"authentication":             "VRRP's advert password, not carried: the BGP sessions take a TCP MD5 password (password in [[bgp.peer]])",
	"auth_hmac":                  "VRRP's advert signing, not carried: the BGP sessions take a TCP MD5 password (password in [[bgp.peer]])",
	"interface":                  "where VRRP sent its adverts; the VIP addresses go on [interface] name (lo by default)",
	"unicast_peer":               "the other VRRP nodes; anycastd needs no knowledge of the other sites",
	"unicast_src_ip":             "VRRP's source address; no anycast meaning",
	"mcast_src_ip":               "VRRP's source address; no anycast meaning",
	"nopreempt":                  "not kept: when this node announces again, routers that prefer it (med) move the traffic back at once; rise x interval of its checks delays that",
	"preempt":                    "the default, as in anycast: the preferred node takes the traffic back",
	"preempt_delay":              "not kept: when this node announces again, routers that prefer it (med) move the traffic back at once; rise x interval of its checks delays that",
	"garp_master_delay":          "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"garp_master_repeat":         "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"garp_master_refresh":        "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"garp_lower_prio_delay":      "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"garp_lower_prio_repeat":     "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"garp_master_refresh_repeat": "gratuitous ARP: no ARP for the VIP here, it is reached through routes",
	"use_vmac":                   "VRRP's virtual MAC; no anycast meaning",
	"vmac_xmit_base":             "VRRP's virtual MAC; no anycast meaning",
	"dont_track_primary":         "VRRP interface tracking; no anycast meaning",
	"version":                    "the VRRP version; no anycast meaning",
	"native_ipv6":                "VRRP over IPv6; no anycast meaning",
	"accept":                     "VRRP accept mode; the VIP is a local address here",
	"no_accept":                  "VRRP accept mode; the VIP is a local address here",
	"strict_mode":                "VRRP strict mode; no anycast meaning",
	"skip_check_adv_addr":        "VRRP advert checking; no anycast meaning",
	"check_unicast_src":          "VRRP advert checking; no anycast meaning",
	"unicast_ttl":                "VRRP advert TTL; no anycast meaning",
	"smtp_alert":                 "anycastd sends no e-mail; follow `anycastctl events -f -o json`",
	"debug":                      "no anycast meaning",
	"promote_secondaries":        "the VIP is a /32 or /128 on [interface] name here; no secondaries",
	"lower_prio_no_advert":       "VRRP adverts; no anycast meaning",
	"higher_prio_send_advert":    "VRRP adverts; no anycast meaning",
	"down_timer_adverts":         "VRRP's master-down timer; here the BGP hold_time (or BFD) plays that part",
	"notify_priority_changes":    "VRRP notification; no anycast meaning",
	"no_virtual_ipaddress":       "no anycast meaning",
}

// instance converts a vrrp_instance.
func (k *keepalived) instance(file string, s *Stmt) error {
	d := k.d
	if len(s.Words) != 2 || !s.HasBlock {
		return kaErr(file, s.Line, "want: vrrp_instance NAME { … }")
	}
	k.instances++
	name := s.Word(1)
	var (
		addrs    []kaAddr
		tracks   []kaTrack
		state    = ""
		priority = 100
		hasPrio  bool
		notes    []string // "keyword: why" lines above the VIP
		seen     = map[string]bool{}
		tracked  bool // a track_* block, converted or not
	)
	for _, c := range s.Block {
		kw := c.Word(0)
		switch kw {
		case "state":
			if len(c.Words) != 2 || (c.Word(1) != "MASTER" && c.Word(1) != "BACKUP") {
				return kaErr(file, c.Line, "state: want MASTER or BACKUP")
			}
			state = c.Word(1)
		case "priority":
			n, err := kaInt(file, c, 1, 255)
			if err != nil {
				return err
			}
			priority, hasPrio = n, true
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, a := range c.Block {
				ka, err := kaParseAddr(file, a)
				if err != nil {
					return err
				}
				addrs = append(addrs, ka)
			}
		case "track_script":
			tracked = true
			for _, t := range c.Block {
				tr, err := k.parseTrack(file, name, t)
				if err != nil {
					return err
				}
				if tr.script != nil {
					tracks = append(tracks, tr)
				}
			}
		case "track_interface":
			tracked = true
			d.Fail(file, c.Line, "vrrp_instance %s: track_interface (%s): anycastd has no interface check; a check that goes through the interface (tcp, http), or BFD on the BGP session, can replace it", name, kaBlockWords(c))
		case "track_file", "track_process", "track_bfd":
			tracked = true
			d.Fail(file, c.Line, "vrrp_instance %s: %s (%s): not converted; anycastd has no such check (a process check watches a systemd unit or a pid file; an exec check runs a command)", name, kw, kaBlockWords(c))
		case "virtual_routes", "virtual_rules":
			d.Fail(file, c.Line, "vrrp_instance %s: %s: routes and rules added on MASTER are not anycastd's; keep them in the system's network configuration", name, kw)
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify", "notify_master_rx_lower_pri", "notify_deleted":
			k.notifies = append(k.notifies, fmt.Sprintf("%s of %s at %s:%d", kw, name, file, c.Line))
		default:
			why, ok := vrrpKeywords[kw]
			if !ok {
				d.Fail(file, c.Line, "vrrp_instance %s: %s: unknown keyword, not converted", name, kw)
				continue
			}
			if seen[kw] {
				continue
			}
			seen[kw] = true
			text := kw
			if kw != "authentication" && kw != "auth_hmac" && kw != "unicast_peer" && len(c.Words) > 1 {
				text += " " + strings.Join(c.Args(), " ")
			}
			if kw == "unicast_peer" {
				text += " (" + kaBlockWords(c) + ")"
			}
			notes = append(notes, text+": "+why+".")
		}
	}
	above := []string{fmt.Sprintf("vrrp_instance %s (%s:%d)", name, file, s.Line)}
	if len(addrs) == 0 {
		d.Fail(file, s.Line, "vrrp_instance %s has no virtual_ipaddress: nothing to announce", name)
		return nil
	}
	var prefixes []string
	for _, a := range addrs {
		if other, dup := k.prefixOf[a.prefix]; dup {
			d.Fail(file, a.line, "vrrp_instance %s: %s is already announced by VIP %s; anycastd announces each prefix in one VIP", name, a.src, other)
			continue
		}
		if slices.Contains(prefixes, a.prefix) {
			continue
		}
		prefixes = append(prefixes, a.prefix)
		var why []string
		if a.changed {
			why = append(why, fmt.Sprintf("announced as %s: anycast announces host routes", a.prefix))
		}
		if a.dev != "" || a.label != "" {
			why = append(why, "the address goes on [interface] name (lo by default), not on "+strings.Trim(a.dev+" "+a.label, " ")+": a LAN interface would answer ARP (or ND) for it at every site")
		}
		if len(why) > 0 {
			above = append(above, a.src+": "+strings.Join(why, "; ")+".")
		}
	}
	if len(prefixes) == 0 {
		return nil
	}
	// The election: priority (and state) becomes MED.
	prioText := fmt.Sprintf("priority %d", priority)
	if !hasPrio {
		prioText = "priority 100 (keepalived's default)"
	}
	if state != "" {
		prioText = "state " + state + ", " + prioText
	}
	above = append(above, prioText+": VRRP made the highest priority node master; here every healthy node announces",
		"and the routers choose by path. med = 255 - priority keeps keepalived's order: routers prefer the lowest MED",
		"among paths from the same neighbouring AS (across different ASes use prepend instead, or compare MED always).",
		"Remove med on every node to share the traffic between them.")
	if state != "" {
		above = append(above, "state "+state+" is only where VRRP started; the priority decided the election.")
	}
	above = append(above, notes...)
	v := d.AddVIP(name, above...)
	for _, p := range prefixes {
		k.prefixOf[p] = Name(v)
	}
	v.Set("prefixes", prefixes, "virtual_ipaddress")
	if len(tracks) == 0 {
		if !tracked {
			d.Fail(file, s.Line, "vrrp_instance %s tracks no vrrp_script: keepalived moved its addresses only when the node or keepalived died; anycastd needs a check for each VIP (a process check of the service, a listen or tcp check of its port)", name)
		}
		v.Set("checks", []string{}, "none converted: see NOT CONVERTED at the end")
		v.Set("med", 255-priority, fmt.Sprintf("255 - %d", priority))
		return nil
	}
	var names []string
	weighted, zero, given := 0, 0, false
	up, down := priority, priority
	for _, t := range tracks {
		names = append(names, t.script.check)
		given = given || t.given
		switch {
		case t.weight == 0:
			zero++
		case t.weight > 0:
			weighted++
			up += t.weight
		default:
			weighted++
			down += t.weight
		}
	}
	if priority == 255 {
		up, down = 255, 255 // the address owner: keepalived never changes its priority
	} else {
		up, down = min(max(up, 1), 254), min(max(down, 1), 254) // keepalived's range for the others
	}
	v.Set("checks", names, "track_script")
	v.Set("require", "all", "")
	v.Set("med", 255-up, fmt.Sprintf("255 - %d (the priority while every tracked script passes)", up))
	if up != priority {
		v.Note("med", fmt.Sprintf("priority %d plus the positive weights", priority))
	}
	switch {
	case weighted == 0 && !given:
		v.Note("require", "no weight (keepalived's default 0): a failing script made the instance FAULT and give its addresses up: withdrawn here")
	case weighted == 0:
		v.Note("require", "weight 0: a failing script made the instance FAULT and give its addresses up: withdrawn here")
	case zero == 0:
		v.Set("on_failure", "degrade", "every tracked script has a weight: a failure changed the priority, not FAULT")
		dg := v.Child("vip.degraded")
		dg.Set("med", 255-down, fmt.Sprintf("255 - %d, the priority with every weighted script failing; a lower-priority node's lower MED wins, as in VRRP", down))
	default:
		v.Note("require", "a failing weight-0 script withdraws; the weighted ones withdraw too here, where keepalived only changed the priority")
	}
	return nil
}

// parseTrack reads one track_script entry: NAME [weight N [reverse|noreverse]].
func (k *keepalived) parseTrack(file, inst string, t *Stmt) (kaTrack, error) {
	sc := k.scripts[t.Word(0)]
	if sc == nil {
		k.d.Fail(file, t.Line, "vrrp_instance %s: track_script %s: no vrrp_script of that name", inst, t.Word(0))
		return kaTrack{}, nil
	}
	tr := kaTrack{script: sc, weight: sc.weight, reverse: sc.reverse, given: sc.hasW}
	switch {
	case len(t.Words) == 1:
	case t.Word(1) == "weight" && len(t.Words) >= 3:
		w, rev, err := kaWeightAt(file, t, 2)
		if err != nil {
			return kaTrack{}, err
		}
		tr.weight, tr.reverse, tr.given = w, rev, true
	default:
		return kaTrack{}, kaErr(file, t.Line, "track_script: want NAME [weight N [reverse|noreverse]]")
	}
	if tr.reverse {
		k.d.Fail(file, t.Line, "vrrp_instance %s: track_script %s reverse: a check that counts as up while its script fails has no anycastd equivalent", inst, sc.name)
		return kaTrack{}, nil
	}
	return tr, nil
}

// kaParseAddr reads one virtual_ipaddress line: ADDR[/LEN] [option value|flag …].
func kaParseAddr(file string, a *Stmt) (kaAddr, error) {
	src := a.Word(0)
	p, changed, err := hostPrefix(src)
	if err != nil {
		return kaAddr{}, kaErr(file, a.Line, "virtual_ipaddress: %v", err)
	}
	ka := kaAddr{prefix: p, src: src, changed: changed, line: a.Line}
	for i := 1; i < len(a.Words); i++ {
		switch w := a.Word(i); w {
		case "dev", "label", "brd", "scope", "peer", "preferred_lft", "track_group", "metric":
			if i+1 >= len(a.Words) {
				return kaAddr{}, kaErr(file, a.Line, "virtual_ipaddress: %s wants a value", w)
			}
			i++
			switch w {
			case "dev":
				ka.dev = "dev " + a.Word(i)
			case "label":
				ka.label = "label " + a.Word(i)
			}
		case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "use_vmac":
		default:
			return kaAddr{}, kaErr(file, a.Line, "virtual_ipaddress: unknown option %q", w)
		}
	}
	if a.HasBlock {
		return kaAddr{}, kaErr(file, a.Line, "virtual_ipaddress: an address line takes no block")
	}
	return ka, nil
}

// kaBlockWords returns a block's entries as "a, b c, d".
func kaBlockWords(c *Stmt) string {
	var parts []string
	for _, e := range c.Block {
		parts = append(parts, strings.Join(append([]string{e.Word(0)}, e.Args()...), " "))
	}
	if len(parts) == 0 {
		return strings.Join(c.Args(), " ")
	}
	return strings.Join(parts, ", ")
}
