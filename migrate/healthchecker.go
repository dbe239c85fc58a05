package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// This file converts anycast-healthchecker's INI files: its main file
// (/etc/anycast-healthchecker.conf, [DEFAULT] and [daemon]) and its service
// files (/etc/anycast-healthchecker.d/*.conf, one section per service). BIRD's
// file, given among them, goes to bird.go.
//
// anycast-healthchecker reads them with Python's configparser.ConfigParser()
// at its defaults: keys are case-insensitive, section names are not;
// [DEFAULT]'s keys are every section's defaults; '#' and ';' start a comment
// only at the start of a line (no inline comments); a value continues on the
// lines indented deeper than its key (blank and comment lines in between are
// skipped); a section or a key given twice in one file is an error, while a
// later file adds to and overrides the earlier ones; values go through
// BasicInterpolation ("%(key)s", "%%"). scanINI checks that structure line by
// line (and knows each section's and key's line); the values are read with
// gopkg.in/ini.v1 from the text scanINI normalised to that structure.

func init() {
	converters["anycast-healthchecker"] = convertHealthchecker
}

// hcDefaults are anycast-healthchecker's built-in defaults (DEFAULT_OPTIONS
// of anycast_healthchecker/__init__.py, 0.9.x): what a section has when
// neither it nor [DEFAULT] sets the key.
var hcDefaults = map[string]string{
	"interface":                           "lo",
	"check_interval":                      "10",
	"check_timeout":                       "2",
	"check_rise":                          "2",
	"check_fail":                          "2",
	"check_disabled":                      "true",
	"on_disabled":                         "withdraw",
	"ip_check_disabled":                   "false",
	"custom_bird_reconfigure_cmd_timeout": "2",
}

// hcDaemonDefaults are the built-in defaults of [daemon] that matter here.
var hcDaemonDefaults = map[string]string{"ipv4": "true", "ipv6": "false", "loglevel": "debug"}

// hcService is one service section, read and checked.
type hcService struct {
	name       string
	file       string
	line       int
	cmd        string
	interval   Duration
	timeout    Duration
	rise, fall int
	disabled   bool
	onDisabled string
	prefix     netip.Prefix
	ipCheckOff bool
	iface      string
	// refused: anycast-healthchecker refuses to start with this service
	// (its family is off in [daemon]); its VIP is written commented out.
	refused bool
}

// comment says where key's value came from, for the field it sets.
func (c *hcConf) comment(sect, key string) string {
	switch o := c.where(sect, key); o.how {
	case hcDefault:
		return key + " in [DEFAULT]"
	case hcBuiltin:
		return "anycast-healthchecker's default " + key
	}
	return key
}

// service reads section name; errors are *SyntaxError for what
// anycast-healthchecker itself refuses at its start.
func (c *hcConf) service(name string) (*hcService, error) {
	s := &hcService{name: name}
	s.file, s.line = c.sectionLine(name)
	bad := func(key, format string, args ...any) error {
		o := c.where(name, key)
		return &SyntaxError{File: o.file, Line: max(o.line, 1), Msg: fmt.Sprintf("[%s] %s: ", name, key) + fmt.Sprintf(format, args...)}
	}
	vals := map[string]string{}
	for _, k := range []string{"check_cmd", "check_interval", "check_timeout", "check_rise", "check_fail", "check_disabled", "on_disabled", "ip_prefix", "interface", "ip_check_disabled"} {
		v, ok, err := c.get(name, k)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &SyntaxError{File: s.file, Line: s.line, Msg: fmt.Sprintf("[%s] has no %s (anycast-healthchecker refuses it)", name, k)}
		}
		vals[k] = v
	}
	s.cmd = vals["check_cmd"]
	var err error
	for _, k := range []string{"check_interval", "check_timeout"} {
		v, e := seconds(vals[k])
		if e != nil {
			return nil, bad(k, "%v", e)
		}
		if k == "check_interval" {
			s.interval = v
		} else {
			s.timeout = v
		}
	}
	for _, k := range []string{"check_rise", "check_fail"} {
		n, e := strconv.Atoi(strings.TrimSpace(vals[k]))
		if e != nil {
			return nil, bad(k, "%q is not a whole number", vals[k])
		}
		if k == "check_rise" {
			s.rise = n
		} else {
			s.fall = n
		}
	}
	var ok bool
	if s.disabled, ok = pyBool(vals["check_disabled"]); !ok {
		return nil, bad("check_disabled", "%q is not a boolean", vals["check_disabled"])
	}
	if s.ipCheckOff, ok = pyBool(vals["ip_check_disabled"]); !ok {
		return nil, bad("ip_check_disabled", "%q is not a boolean", vals["ip_check_disabled"])
	}
	s.onDisabled = vals["on_disabled"]
	if s.onDisabled != "withdraw" && s.onDisabled != "advertise" {
		return nil, bad("on_disabled", "%q: want withdraw or advertise", s.onDisabled)
	}
	s.iface = vals["interface"]
	if s.prefix, err = pyNetwork(vals["ip_prefix"]); err != nil {
		return nil, bad("ip_prefix", "%v", err)
	}
	if _, _, err := splitShell(s.cmd); err != nil || strings.TrimSpace(s.cmd) == "" {
		if err == nil {
			return nil, bad("check_cmd", "empty")
		}
		return nil, bad("check_cmd", "%v (shlex.split refuses it)", err)
	}
	return s, nil
}

// pyNetwork parses an ip_prefix as Python's ipaddress.ip_network does: an
// address (a host route) or a prefix without host bits.
func pyNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (ipaddress.ip_network refuses it)", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// convertHealthchecker converts anycast-healthchecker's INI files and
// BIRD's file(s), given in any order.
func convertHealthchecker(d *Doc, files []Input, o Options) error {
	var inis, birds []Input
	for _, f := range files {
		if isINI(f.Data) {
			inis = append(inis, f)
		} else {
			birds = append(birds, f)
		}
	}
	if len(birds) > 0 {
		if err := convertBIRD(d, birds); err != nil {
			return err
		}
	} else {
		d.Notef("No BIRD file given: the BGP side comes from --asn, --router-id, --peer and --peer-asn.")
	}
	if len(inis) == 0 {
		d.Fail("", 0, "no anycast-healthchecker file: give /etc/anycast-healthchecker.conf and the files of /etc/anycast-healthchecker.d")
		return nil
	}
	c, err := loadINI(inis)
	if err != nil {
		return err
	}
	if err := c.daemon(d); err != nil {
		return err
	}
	var svcs []*hcService
	for _, name := range c.services() {
		s, err := c.service(name)
		if err != nil {
			return err
		}
		svcs = append(svcs, s)
	}
	if len(svcs) == 0 {
		d.Notef("The files hold no service section: no [[check]] nor [[vip]] to write.")
	}
	c.families(d, svcs)
	c.convertServices(d, svcs)
	c.iface(d, svcs)
	return nil
}

// families checks each service's prefix against [daemon] ipv4/ipv6 (what
// anycast-healthchecker refuses at its start). That a peer carries each
// family a VIP needs is checked for every source, after the flags
// (Doc.finish).
func (c *hcConf) families(d *Doc, svcs []*hcService) {
	on := map[string]bool{"ipv4": true, "ipv6": true} // no main file: unknown, not checked
	if c.hasDaemon() {
		for _, fam := range []string{"ipv4", "ipv6"} {
			v, _, _ := c.get("daemon", fam)
			on[fam], _ = pyBool(v)
		}
	}
	owner := map[netip.Prefix]string{}
	for _, s := range svcs {
		o := c.where(s.name, "ip_prefix")
		if first, ok := owner[s.prefix]; ok {
			d.Fail(o.file, o.line, "[%s] ip_prefix %s is [%s]'s too: anycast-healthchecker refuses a prefix in two services, anycastd in two VIPs", s.name, s.prefix, first)
		}
		owner[s.prefix] = s.name
		if a := s.prefix.Addr(); a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			d.Fail(o.file, o.line, "[%s] ip_prefix %s: anycastd announces no unspecified, loopback, multicast, link-local or broadcast prefix", s.name, s.prefix)
		}
		fam := "ipv4"
		if s.prefix.Addr().Is6() {
			fam = "ipv6"
		}
		if !on[fam] {
			d.Fail(o.file, o.line, "[%s] ip_prefix %s: %s is off in [daemon] (%s = false, or its default), so anycast-healthchecker refuses this service; turn it on or drop the service (its VIP is commented out)",
				s.name, s.prefix, fam, fam)
			s.refused = true
		}
	}
}

// timingKey groups services whose checks are the same.
func (s *hcService) checkKey() string {
	return fmt.Sprintf("%q %d %d %d %d", s.cmd, s.interval, s.timeout, s.rise, s.fall)
}

// convertServices writes a [[check]] and a [[vip]] per enabled service
// (services with the same command and timing share one check), the
// always-passing check of the services disabled with on_disabled =
// advertise, and a note for each service disabled with on_disabled =
// withdraw.
func (c *hcConf) convertServices(d *Doc, svcs []*hcService) {
	checks := map[string]*Table{}
	var always *Table
	for _, s := range svcs {
		where := fmt.Sprintf("[%s] in %s:%d", s.name, s.file, s.line)
		switch {
		case s.disabled && s.onDisabled == "withdraw":
			ck := c.newCheck(d, s, []string{where})
			vip := c.newVIP(d, s, Name(ck), nil)
			var b strings.Builder
			writeTable(&b, ck)
			writeTable(&b, vip)
			d.Notef("%s has check_disabled = %s and on_disabled = withdraw: anycast-healthchecker never checks nor announces %s,\n"+
				"so it is left out. To announce it again, with its check, add:\n%s", where, c.shown(s.name, "check_disabled"), s.prefix, strings.TrimRight(b.String(), "\n"))
			continue
		case s.disabled:
			if always == nil {
				always = &Table{Name: "check", Array: true, Above: []string{
					"Services with check_disabled = true and on_disabled = advertise: anycast-healthchecker announces",
					"them without checking anything (not even the address on the interface); every anycastd VIP needs a check."}}
				always.Set("name", d.unique("check", "always-pass"), "")
				always.Set("type", "exec", "")
				always.Set("command", []string{"/bin/true"}, "passes always")
				always.Set("interval", Duration(10*time.Second), "")
				always.Set("rise", 1, "")
				d.Checks = append(d.Checks, always)
			}
			vip := c.newVIP(d, s, Name(always), []string{where + ": check_disabled = " + c.shown(s.name, "check_disabled") + ", on_disabled = advertise"})
			vip.Del("on_address_lost")
			d.VIPs = append(d.VIPs, vip)
			continue
		}
		ck, ok := checks[s.checkKey()]
		if !ok {
			ck = c.newCheck(d, s, []string{where})
			checks[s.checkKey()] = ck
			d.Checks = append(d.Checks, ck)
		} else {
			ck.Above = append(ck.Above, "also "+where+": the same check_cmd and timing, so one check guards both VIPs")
		}
		d.VIPs = append(d.VIPs, c.newVIP(d, s, Name(ck), []string{where}))
	}
}

// shown returns key's value in sect as the source gave it, for messages.
func (c *hcConf) shown(sect, key string) string {
	v, _, _ := c.get(sect, key)
	if c.where(sect, key).how == hcBuiltin {
		return v + " (the default)"
	}
	return v
}

// newCheck builds the [[check]] of service s (not added to d).
func (c *hcConf) newCheck(d *Doc, s *hcService, above []string) *Table {
	ck := &Table{Name: "check", Array: true, Above: above}
	ck.Set("name", d.unique("check", s.name), "")
	argv, needsShell, _ := splitShell(s.cmd)
	var p Probe
	if needsShell {
		// anycast-healthchecker runs shlex.split(check_cmd) without a shell:
		// '|', '>', '$' … are plain arguments, and stay so.
		p = Probe{Fields: []Field{
			{Key: "type", Value: "exec"},
			{Key: "command", Value: argv, Comment: "check_cmd split like shlex.split, run without a shell as anycast-healthchecker did"},
		}}
	} else {
		p, _ = probeFor(s.cmd) // splitShell accepted it above
		if !p.Native {
			p.Fields[1].Comment = "check_cmd, split into argv, no shell"
		} else {
			ck.Above = append(ck.Above, "check_cmd = "+s.cmd)
		}
	}
	setProbe(ck, p)
	timeout, tname := s.timeout, "check_timeout "+secondsText(s.timeout)
	fromCmd := p.Timeout > 0 && p.Timeout < timeout
	if fromCmd {
		timeout, tname = p.Timeout, "the command's own time limit "+secondsText(p.Timeout)
	}
	fitTiming(ck, s.interval, 0, timeout, tname)
	ck.Note("interval", c.comment(s.name, "check_interval"))
	for i, f := range ck.Fields {
		if f.Key == "timeout" && f.Comment == "" {
			ck.Fields[i].Comment = c.comment(s.name, "check_timeout")
			if fromCmd {
				ck.Fields[i].Comment = "the command's own time limit, below check_timeout " + secondsText(s.timeout)
			}
		}
	}
	if s.interval < Duration(10*time.Millisecond) {
		ck.Set("interval", Duration(10*time.Millisecond), fmt.Sprintf("check_interval %s: anycastd's interval is at least 10ms", secondsText(s.interval)))
	}
	for _, rf := range []struct {
		key, src string
		n        int
	}{{"rise", "check_rise", s.rise}, {"fall", "check_fail", s.fall}} {
		switch {
		case rf.n < 1:
			ck.Set(rf.key, 1, fmt.Sprintf("%s %d: anycastd's %s is 1..100", rf.src, rf.n, rf.key))
		case rf.n > 100:
			ck.Set(rf.key, 100, fmt.Sprintf("%s %d: anycastd's %s is 1..100", rf.src, rf.n, rf.key))
		default:
			ck.Set(rf.key, rf.n, c.comment(s.name, rf.src))
		}
	}
	return ck
}

// newVIP builds the [[vip]] of service s guarded by check (not added to d).
func (c *hcConf) newVIP(d *Doc, s *hcService, check string, above []string) *Table {
	v := &Table{Name: "vip", Array: true, Above: above}
	v.Set("name", d.unique("vip", s.name), "")
	v.Set("prefixes", []string{s.prefix.String()}, "ip_prefix")
	v.Set("checks", []string{check}, "")
	v.Commented = s.refused
	if !s.prefix.IsSingleIP() {
		v.Set("allow_aggregate", true, "not a host route: announced, but not put on the interface")
		return v
	}
	if !s.ipCheckOff {
		v.Set("on_address_lost", "withdraw", "like the address check (ip_check_disabled = false)")
	}
	return v
}

// iface sets [interface] from the services' interface and
// ip_check_disabled.
func (c *hcConf) iface(d *Doc, svcs []*hcService) {
	var name string
	var on, off []string
	for _, s := range svcs {
		if s.disabled && s.onDisabled == "withdraw" {
			continue
		}
		if s.ipCheckOff {
			off = append(off, s.name)
		} else {
			on = append(on, s.name)
		}
		if s.disabled || s.ipCheckOff {
			continue // the interface is not looked at for this one
		}
		if name == "" {
			name = s.iface
			if name != "lo" {
				d.Interface.Set("name", name, c.comment(s.name, "interface"))
			}
		} else if s.iface != name {
			o := c.where(s.name, "interface")
			d.Fail(o.file, o.line, "[%s] interface %s: anycastd puts every VIP on one interface, here %s", s.name, s.iface, name)
		}
	}
	switch {
	case len(off) > 0 && len(on) == 0:
		d.Interface.Set("manage", false, "ip_check_disabled = true: the addresses stay yours to add")
		if o := c.where(off[0], "interface"); o.how != hcBuiltin {
			v, _, _ := c.get(off[0], "interface")
			d.Interface.Above = append(d.Interface.Above, "interface = "+v+" ("+o.file+":"+strconv.Itoa(o.line)+"): anycast-healthchecker looked at no interface with ip_check_disabled = true, nor does anycastd with manage = false")
		}
	case len(off) > 0:
		d.Interface.Above = append(d.Interface.Above,
			"ip_check_disabled = true in "+strings.Join(off, ", ")+", false in "+strings.Join(on, ", ")+":",
			"anycastd manages the addresses of all VIPs (it adds theirs too); manage = false would leave them all to you.")
	}
}

// hcDaemonNotes say why [daemon]'s keys have no anycastd setting, by key.
var hcDaemonNotes = map[string]string{
	"bird_conf":                         "anycastd's export policy allows exactly the configured VIP prefixes",
	"bird6_conf":                        "anycastd's export policy allows exactly the configured VIP prefixes",
	"bird_variable":                     "anycastd's export policy allows exactly the configured VIP prefixes",
	"bird6_variable":                    "anycastd's export policy allows exactly the configured VIP prefixes",
	"bird_reconfigure_cmd":              "anycastd's export policy allows exactly the configured VIP prefixes",
	"bird6_reconfigure_cmd":             "anycastd's export policy allows exactly the configured VIP prefixes",
	"dummy_ip_prefix":                   "no prefix list to keep non-empty",
	"dummy_ip6_prefix":                  "no prefix list to keep non-empty",
	"bird_keep_changes":                 "anycastctl events keeps the last 256 transitions",
	"bird6_keep_changes":                "anycastctl events keeps the last 256 transitions",
	"bird_changes_counter":              "anycastctl events keeps the last 256 transitions",
	"bird6_changes_counter":             "anycastctl events keeps the last 256 transitions",
	"purge_ip_prefixes":                 "always: a VIP removed from the file is withdrawn at the reload",
	"pidfile":                           "let systemd track the process",
	"log_file":                          "anycastd logs to stderr (the journal)",
	"log_maxbytes":                      "anycastd logs to stderr (the journal)",
	"log_backups":                       "anycastd logs to stderr (the journal)",
	"stderr_file":                       "anycastd logs to stderr (the journal)",
	"stdout_file":                       "anycastd logs to stderr (the journal)",
	"stderr_log_server":                 "anycastd logs to stderr (the journal)",
	"log_server":                        "anycastd logs to stderr (the journal)",
	"log_server_port":                   "anycastd logs to stderr (the journal)",
	"log_format_journalctl":             "anycastd logs to stderr (the journal)",
	"prometheus_exporter":               "[metrics] listen (127.0.0.1:9479 by default) serves metrics over HTTP, no text file",
	"prometheus_collector_textfile_dir": "[metrics] listen (127.0.0.1:9479 by default) serves metrics over HTTP, no text file",
	"prometheus_exporter_interval":      "[metrics] listen (127.0.0.1:9479 by default) serves metrics over HTTP, no text file",
	"splay_startup":                     "always: each check's first probe comes after a random delay below min(interval, 1s)",
	"ipv4":                              "a VIP needs a [[bgp.peer]] whose families carry its prefix's family",
	"ipv6":                              "a VIP needs a [[bgp.peer]] whose families carry its prefix's family",
}

// daemon converts [daemon]'s keys: loglevel and json_* to [log], the rest
// to notes.
func (c *hcConf) daemon(d *Doc) error {
	var notes []string
	byWhy := map[string][]string{}
	var whys []string
	for _, doc := range c.docs {
		s := doc.section("daemon")
		if s == nil {
			continue
		}
		for _, k := range s.sorted() {
			v, _, err := c.get("daemon", k)
			if err != nil {
				return err
			}
			switch {
			case k == "loglevel":
				lv, note := pyLogLevel(v)
				if lv == "" {
					return &SyntaxError{File: doc.file, Line: s.keys[k], Msg: fmt.Sprintf("[daemon] loglevel %q: not a Python logging level", v)}
				}
				d.Log.Set("level", lv, "loglevel"+note)
			case k == "json_stdout" || k == "json_log_file" || k == "json_log_server":
				b, ok := pyBool(v)
				if !ok {
					return &SyntaxError{File: doc.file, Line: s.keys[k], Msg: fmt.Sprintf("[daemon] %s %q: not a boolean", k, v)}
				}
				if b {
					d.Log.Set("format", "json", k+" = "+v)
				}
			case hcDaemonNotes[k] != "":
				why := hcDaemonNotes[k]
				if len(byWhy[why]) == 0 {
					whys = append(whys, why)
				}
				byWhy[why] = append(byWhy[why], k+" = "+v)
			default:
				if _, ok := hcDefaults[k]; ok {
					notes = append(notes, fmt.Sprintf("[daemon] %s (%s:%d): a service key, not read in [daemon].", k, doc.file, s.keys[k]))
				} else {
					notes = append(notes, fmt.Sprintf("[daemon] %s (%s:%d): not an anycast-healthchecker key; it ignored it.", k, doc.file, s.keys[k]))
				}
			}
		}
	}
	if !c.hasDaemon() {
		d.Notef("No file with [daemon] was given (/etc/anycast-healthchecker.conf): its [DEFAULT] would change every service's\n" +
			"defaults (check_disabled is true by default), and its ipv4 and ipv6 were not checked; give it too.")
	} else if _, ok := d.Log.Get("level"); !ok {
		d.Notef("[daemon] loglevel is not set: anycast-healthchecker logged at debug by default; anycastd's [log] level stays info.")
	}
	for _, why := range whys {
		d.Notef("[daemon] %s: %s.", strings.Join(byWhy[why], ", "), why)
	}
	d.Notes = append(d.Notes, notes...)
	// [DEFAULT] keys that are no service key serve interpolation only.
	for _, doc := range c.docs {
		if s := doc.section(ini.DefaultSection); s != nil {
			for _, k := range s.sorted() {
				line := s.keys[k]
				if _, ok := hcDefaults[k]; !ok && k != "check_cmd" && k != "ip_prefix" && k != "custom_bird_reconfigure_cmd" {
					d.Notef("[DEFAULT] %s (%s:%d): no anycast-healthchecker key; used only where a value says %%(%s)s.", k, doc.file, line, k)
				}
			}
		}
	}
	c.serviceNotes(d)
	return nil
}

// serviceNotes notes the service keys with no anycastd setting and the
// keys anycast-healthchecker does not know.
func (c *hcConf) serviceNotes(d *Doc) {
	known := map[string]bool{"check_cmd": true, "ip_prefix": true}
	for k := range hcDefaults {
		known[k] = true
	}
	for _, doc := range c.docs {
		for _, s := range doc.sects {
			if s.name == "daemon" || s.name == ini.DefaultSection {
				continue
			}
			for _, k := range s.sorted() {
				switch {
				case k == "custom_bird_reconfigure_cmd":
					d.Notef("[%s] custom_bird_reconfigure_cmd (%s:%d): anycastd runs no command on a change; follow `anycastctl events -f -o json` (or the API's WatchEvents) instead.", s.name, doc.file, s.keys[k])
				case k == "custom_bird_reconfigure_cmd_timeout":
					d.Notef("[%s] custom_bird_reconfigure_cmd_timeout (%s:%d): goes with custom_bird_reconfigure_cmd, which anycastd has not.", s.name, doc.file, s.keys[k])
				case !known[k]:
					d.Notef("[%s] %s (%s:%d): not an anycast-healthchecker key; it ignored it.", s.name, k, doc.file, s.keys[k])
				}
			}
		}
	}
}

// hasDaemon reports whether a file has the [daemon] section: the main
// file.
func (c *hcConf) hasDaemon() bool {
	for _, d := range c.docs {
		if d.section("daemon") != nil {
			return true
		}
	}
	return false
}

// pyLogLevel maps a Python logging level name to anycastd's [log] level,
// with a comment when it is not the same.
func pyLogLevel(s string) (string, string) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG", "NOTSET":
		return "debug", ""
	case "INFO":
		return "info", ""
	case "WARNING", "WARN":
		return "warn", ""
	case "ERROR":
		return "error", ""
	case "CRITICAL", "FATAL":
		return "error", " " + s + ": anycastd's highest level is error"
	}
	return "", ""
}
