package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Change is one difference between two configurations.
type Change struct {
	Kind   string // "+" added, "-" removed, "~" changed, "!" refused (needs a restart)
	What   string // e.g. `vip "web"`, `check "db"`, `bgp.peer "198.18.1.1"`, `bgp.asn`
	Detail string // what changed and what a reload does about it
}

func (c Change) String() string { return fmt.Sprintf("%s %s: %s", c.Kind, c.What, c.Detail) }

// Diff is what a reload from old to new would change.
type Diff struct{ Changes []Change }

// Refused lists the changes a reload cannot apply (they need a restart).
func (d Diff) Refused() []Change {
	var out []Change
	for _, c := range d.Changes {
		if c.Kind == "!" {
			out = append(out, c)
		}
	}
	return out
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d.Changes) == 0 }

func (d Diff) String() string {
	if d.Empty() {
		return "no changes"
	}
	lines := make([]string, len(d.Changes))
	for i, c := range d.Changes {
		lines[i] = c.String()
	}
	return strings.Join(lines, "\n")
}

// Compare returns what changes from old to new, in the order a reader wants
// it: refusals first, then sessions, checks and VIPs.
func Compare(old, new *Config) Diff {
	var d Diff
	add := func(kind, what, format string, args ...any) {
		d.Changes = append(d.Changes, Change{kind, what, fmt.Sprintf(format, args...)})
	}
	restart := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			add("!", what, "%v -> %v needs a restart; a reload is refused", show(a), show(b))
		}
	}
	restart("bgp.asn", old.BGP.ASN, new.BGP.ASN)
	restart("bgp.router_id", old.BGP.RouterID, new.BGP.RouterID)
	restart("bgp.listen_port", old.BGP.ListenPort, new.BGP.ListenPort)
	restart("bgp.listen_addresses", old.BGP.ListenAddresses, new.BGP.ListenAddresses)
	restart("bgp.graceful_restart", old.BGP.GracefulRestart, new.BGP.GracefulRestart)
	// Advertised in the OPEN of every session (RFC 4724 §3).
	restart("bgp.graceful_restart_time", old.BGP.GracefulRestartTime, new.BGP.GracefulRestartTime)
	// Tables: name the keys that changed, not the whole table.
	restartTable := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			add("!", what, "%s needs a restart; a reload is refused", fields(a, b))
		}
	}
	restartTable("interface", old.Interface, new.Interface)
	restartTable("api", old.API, new.API)
	restartTable("metrics", old.Metrics, new.Metrics)
	fleetChanges(old.Fleet, new.Fleet, add)
	if old.Log != new.Log {
		add("~", "log", "%s (takes effect at the next start)", fields(old.Log, new.Log))
	}
	if old.Node != new.Node {
		add("~", "node", "%s", fields(old.Node, new.Node))
	}

	keyed(old.BGP.Peers, new.BGP.Peers, func(p Peer) string { return p.Address.String() },
		func(kind string, o, n Peer) {
			what := fmt.Sprintf("bgp.peer %q", n.Address.String())
			switch kind {
			case "+":
				add("+", what, "AS %d: a new session starts", n.ASN)
			case "-":
				what = fmt.Sprintf("bgp.peer %q", o.Address.String())
				add("-", what, "AS %d: this session closes (the router withdraws this node's routes)", o.ASN)
			default:
				note := "only this session is reset"
				switch {
				case bfdOnly(o, n):
					note = "the BFD session takes the new timers with a Poll sequence (RFC 5880 §6.8.3): no session reset"
				case exportOnly(o, n):
					note = "routes are sent to this peer again with them (no session reset)"
				}
				add("~", what, "%s: %s", fields(o, n), note)
			}
		})
	keyed(old.Checks, new.Checks, func(c Check) string { return c.Name },
		func(kind string, o, n Check) {
			switch kind {
			case "+":
				add("+", fmt.Sprintf("check %q", n.Name), "%s check starts; VIPs it guards wait for it to rise", n.Type)
			case "-":
				add("-", fmt.Sprintf("check %q", o.Name), "stops")
			default:
				add("~", fmt.Sprintf("check %q", n.Name), "%s: only this check restarts (its VIPs keep their state until it decides)", fields(o, n))
			}
		})
	keyed(old.VIPs, new.VIPs, func(v VIP) string { return v.Name },
		func(kind string, o, n VIP) {
			switch kind {
			case "+":
				add("+", fmt.Sprintf("vip %q", n.Name), "%s: announced once its checks rise", prefixList(n))
			case "-":
				add("-", fmt.Sprintf("vip %q", o.Name), "%s: withdrawn", prefixList(o))
			default:
				note := vipPeersNote(o, n, vipNote(o, n)) + minSitesNote(o, n)
				add("~", fmt.Sprintf("vip %q", n.Name), "%s: %s", fields(o, n), note)
			}
		})
	slices.SortStableFunc(d.Changes, func(a, b Change) int {
		return strings.Compare(kindOrder(a.Kind), kindOrder(b.Kind))
	})
	return d
}

func kindOrder(k string) string {
	if k == "!" {
		return "0"
	}
	return "1"
}

func prefixList(v VIP) string {
	ps := make([]string, len(v.Prefixes))
	for i, p := range v.Prefixes {
		ps[i] = p.String()
	}
	return strings.Join(ps, ", ")
}

// keyed pairs the elements of old and new by key and calls f for each one
// added ("+"), removed ("-") or changed ("~", ignoring the Line field).
func keyed[T any](old, new []T, key func(T) string, f func(kind string, o, n T)) {
	olds := make(map[string]T, len(old))
	for _, o := range old {
		olds[key(o)] = o
	}
	seen := make(map[string]bool, len(new))
	var zero T
	for _, n := range new {
		k := key(n)
		seen[k] = true
		o, ok := olds[k]
		switch {
		case !ok:
			f("+", zero, n)
		case fields(o, n) != "":
			f("~", o, n)
		}
	}
	for _, o := range old {
		if !seen[key(o)] {
			f("-", o, zero)
		}
	}
}

// vipNote says what a change of a VIP's settings does to its routes.
func vipNote(o, n VIP) string {
	attrs := func(v VIP) VIP {
		return VIP{Communities: v.Communities, LargeCommunities: v.LargeCommunities, MED: v.MED,
			LocalPref: v.LocalPref, Prepend: v.Prepend}
	}
	switch {
	case !slices.Equal(o.Prefixes, n.Prefixes):
		return "prefixes no longer listed are withdrawn, new ones announced once its checks pass"
	case fields(attrs(o), attrs(n)) != "":
		return "an announced route is replaced in place (one UPDATE, no withdrawal)"
	case fields(VIP{Degraded: o.Degraded}, VIP{Degraded: n.Degraded}) != "":
		return "a degraded announcement is replaced in place (one UPDATE, no withdrawal); a VIP that is up is not touched"
	default:
		return "its state is computed again at once; an UPDATE goes out only if the state changes"
	}
}

// fields describes which exported fields of two structs differ, ignoring
// Line and fields tagged diff:"-" (derived from another field): "hold_time
// 9s -> 3s, communities [65001:100] -> [65001:200]". Values compare as in
// Check.Equal: a regular expression or URL by its text. Inside a field
// tagged diff:"table" (a TOML sub-table such as [vip.degraded]) keys are
// named table.key: "degraded.med 1000 -> 2000".
func fields(a, b any) string { return fieldsIn("", a, b) }

func fieldsIn(prefix string, a, b any) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var parts []string
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		if !f.IsExported() || f.Name == "Line" || f.Tag.Get("diff") == "-" {
			continue
		}
		if sameValue(va.Field(i), vb.Field(i)) {
			continue
		}
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		// Type-specific settings (TCP, HTTP, ...): name the keys inside.
		fx, fy := va.Field(i), vb.Field(i)
		name := prefix + snake(f.Name)
		if fx.Kind() == reflect.Pointer && !fx.IsNil() && !fy.IsNil() && fx.Elem().Kind() == reflect.Struct {
			if _, stringer := x.(fmt.Stringer); !stringer {
				inner := prefix
				if f.Tag.Get("diff") == "table" {
					inner = name + "."
				}
				parts = append(parts, fieldsIn(inner, fx.Elem().Interface(), fy.Elem().Interface()))
				continue
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s -> %s", name, show(x), show(y)))
	}
	return strings.Join(parts, ", ")
}

// show prints a value for a diff line: pointers dereferenced (a regular
// expression or URL as its text), nil as "-", a struct (a table) as its
// set keys and values, "{med 1000, communities [65001:666]}".
func show(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return "-"
		}
		return s.String()
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && rv.IsNil():
		return "-"
	case rv.Kind() == reflect.Pointer:
		return show(rv.Elem().Interface())
	case rv.Kind() == reflect.Struct:
		var kv []string
		for i := 0; i < rv.NumField(); i++ {
			f := rv.Type().Field(i)
			if !f.IsExported() || f.Name == "Line" || f.Tag.Get("diff") == "-" || rv.Field(i).IsZero() {
				continue
			}
			kv = append(kv, snake(f.Name)+" "+show(rv.Field(i).Interface()))
		}
		return "{" + strings.Join(kv, ", ") + "}"
	case rv.Kind() == reflect.Slice && rv.Len() == 0:
		return "[]"
	}
	return fmt.Sprintf("%v", v)
}

// snake turns a Go field name into the config key style: HoldTime ->
// hold_time, MED -> med, NextHopIPv6 -> next_hop_ipv6.
func snake(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prevLower := rs[i-1] >= 'a' && rs[i-1] <= 'z'
			nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z' && rs[i+1] != 'v'
			if prevLower || (nextLower && rs[i-1] >= 'A' && rs[i-1] <= 'Z') {
				b.WriteByte('_')
			}
		}
		if upper {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
