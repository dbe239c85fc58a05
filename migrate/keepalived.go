package migrate

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// This file converts keepalived.conf (keepalived 2.x): vrrp_script blocks
// become checks, vrrp_instance blocks VIPs guarded by their track_script
// checks (the VRRP election itself becomes MED, see instanceVIP), and
// global_defs, vrrp_sync_group and notify scripts notes. The LVS part
// (virtual_server) is in keepalived_lvs.go.
//
// keepalived's defaults, from keepalived.conf(5) and its parser:
// vrrp_script interval 1 s, timeout = interval, rise 1, fall 1, weight 0
// (a failure puts the instance in FAULT: it gives its addresses up);
// vrrp_instance priority 100.

func init() { converters["keepalived"] = convertKeepalived }

// kaScript is one vrrp_script block.
type kaScript struct {
	file     string
	stmt     *Stmt
	name     string
	argv     []string // the command as keepalived runs it (no shell)
	shell    bool     // a "</path" script: keepalived runs it with system()
	extra    []string // words after an unquoted script's first, which keepalived ignores
	interval Duration
	timeout  Duration // 0: not given (keepalived: interval)
	rise     int      // 0: not given (keepalived: 1)
	fall     int
	weight   int
	reverse  bool
	hasW     bool
	user     string
	initFail bool
	check    string // the check's name once written
	used     bool
}

// keepalived is the conversion's state across files.
type keepalived struct {
	d         *Doc
	scripts   map[string]*kaScript
	order     []*kaScript
	prefixOf  map[string]string // prefix -> VIP name
	vsVIPs    map[string]*Table // virtual server address -> its VIP
	notifies  []string
	instances int
}

// convertKeepalived converts keepalived.conf files.
func convertKeepalived(d *Doc, files []Input, o Options) error {
	k := &keepalived{d: d, scripts: map[string]*kaScript{}, prefixOf: map[string]string{}, vsVIPs: map[string]*Table{}}
	trees := make([][]*Stmt, len(files))
	// Pass 1: parse every file, and read every vrrp_script, so that an
	// instance may track a script defined later or in another file.
	for i, f := range files {
		ss, err := parseBlocks(f.Name, f.Data, syntax{bang: true})
		if err != nil {
			return err
		}
		trees[i] = ss
		for _, s := range ss {
			if s.Word(0) == "vrrp_script" {
				sc, err := parseScript(f.Name, s)
				if err != nil {
					return err
				}
				if _, dup := k.scripts[sc.name]; dup {
					return kaErr(f.Name, s.Line, "vrrp_script %s is defined twice", sc.name)
				}
				k.scripts[sc.name] = sc
				k.order = append(k.order, sc)
			}
		}
	}
	for _, ss := range trees {
		for _, s := range ss {
			for _, t := range kaTracked(s) {
				if sc := k.scripts[t]; sc != nil {
					sc.used = true
				}
			}
		}
	}
	// The tracked scripts' checks first, so that an instance finds its
	// scripts' check names wherever the scripts are defined.
	for _, sc := range k.order {
		if sc.used {
			k.scriptCheck(sc)
		}
	}
	// Pass 2: convert in the files' order.
	for i, f := range files {
		if err := k.top(f.Name, trees[i]); err != nil {
			return err
		}
	}
	for _, sc := range k.order {
		if !sc.used {
			d.Notef("vrrp_script %s (%s:%d) is tracked by no vrrp_instance: keepalived never ran it, and it is not converted.", sc.name, sc.file, sc.stmt.Line)
		}
	}
	if len(k.notifies) > 0 {
		d.Notef("Notify scripts (%s) are not run by anycastd: follow its state changes with `anycastctl events -f -o json` (or the API's WatchEvents) and run them from there.", strings.Join(k.notifies, ", "))
	}
	if k.instances > 0 || len(k.vsVIPs) > 0 {
		d.Notef("keepalived has no BGP side: --asn, --router-id, --peer and --peer-asn give it. Every node that ran this keepalived.conf announces the same VIPs; the routers send each client to the nearest healthy one.")
	}
	return nil
}

// kaErr is a *SyntaxError at file:line.
func kaErr(file string, line int, format string, args ...any) error {
	return &SyntaxError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// kaTracked returns the script names a vrrp_instance's track_script block
// names.
func kaTracked(s *Stmt) []string {
	if s.Word(0) != "vrrp_instance" {
		return nil
	}
	var names []string
	for _, c := range s.Block {
		if c.Word(0) == "track_script" {
			for _, t := range c.Block {
				names = append(names, t.Word(0))
			}
		}
	}
	return names
}

// top converts one file's top-level statements.
func (k *keepalived) top(file string, ss []*Stmt) error {
	d := k.d
	for _, s := range ss {
		kw := s.Word(0)
		switch {
		case kw == "global_defs":
			k.globalDefs(file, s)
		case kw == "vrrp_script": // converted before, when tracked
		case kw == "vrrp_instance":
			if err := k.instance(file, s); err != nil {
				return err
			}
		case kw == "vrrp_sync_group":
			for _, c := range s.Block {
				if strings.HasPrefix(c.Word(0), "track_") {
					d.Fail(file, c.Line, "vrrp_sync_group %s: %s (%s): a group's trackers are not converted; add the checks to each member's [[vip]]", s.Word(1), c.Word(0), kaBlockWords(c))
				}
			}
			d.Notef("vrrp_sync_group %s (%s:%d): its instances failed over together. anycastd announces each VIP on its own checks: give VIPs that must move together the same checks.", s.Word(1), file, s.Line)
		case kw == "virtual_server":
			if err := k.virtualServer(file, s); err != nil {
				return err
			}
		case kw == "include":
			d.Fail(file, s.Line, "include %s: not followed; pass the included files to anycastd migrate after this one", strings.Join(s.Args(), " "))
		case kw == "virtual_server_group":
			d.Fail(file, s.Line, "virtual_server_group %s: not converted; write one virtual_server block per address", s.Word(1))
		case kw == "static_ipaddress", kw == "static_routes", kw == "static_rules":
			d.Fail(file, s.Line, "%s: addresses, routes and rules keepalived sets up at start are not anycastd's; keep them in the system's network configuration", kw)
		case kw == "track_file", kw == "vrrp_track_file", kw == "vrrp_track_process", kw == "bfd_instance":
			d.Notef("%s %s (%s:%d) is not converted (see the instances that track it).", kw, s.Word(1), file, s.Line)
		case kw == "garp_group", kw == "linkbeat_interfaces", kw == "interface_up_down_delays":
			d.Notef("%s (%s:%d): VRRP interface tuning, no anycast meaning.", kw, file, s.Line)
		case strings.HasPrefix(kw, "$") || strings.HasPrefix(kw, "@") || strings.HasPrefix(kw, "~"):
			d.Fail(file, s.Line, "%s: keepalived's parameter definitions, conditional lines and sequences are not expanded; convert the output of `keepalived --config-test -d` or expand them by hand", kw)
		default:
			d.Fail(file, s.Line, "%s: unknown keepalived keyword, not converted", kw)
		}
	}
	return nil
}

// globalDefs turns global_defs into a note.
func (k *keepalived) globalDefs(file string, s *Stmt) {
	var (
		whys []string                // the explanations, in the order first met
		kws  = map[string][]string{} // explanation -> keywords
	)
	add := func(why, kw string) {
		if _, ok := kws[why]; !ok {
			whys = append(whys, why)
		}
		kws[why] = append(kws[why], kw)
	}
	for _, c := range s.Block {
		kw := c.Word(0)
		switch {
		case kw == "router_id":
			add("keepalived's name for this node in its logs and e-mails, not a BGP router ID (give --router-id an IPv4 address)", "router_id "+c.Word(1))
		case kw == "notification_email" || strings.HasPrefix(kw, "smtp_") || kw == "notification_email_from":
			add("anycastd sends no e-mail; follow `anycastctl events -f -o json`", kw)
		case kw == "script_user" || kw == "enable_script_security":
			add("exec checks run as anycastd's user", kw)
		case strings.HasPrefix(kw, "vrrp_") || strings.HasPrefix(kw, "garp_") || strings.HasPrefix(kw, "gna_"):
			add("VRRP tuning, no anycast meaning", kw)
		case strings.HasPrefix(kw, "lvs_"):
			add("IPVS, not anycastd's", kw)
		default:
			add("no anycastd meaning", kw)
		}
	}
	if len(whys) == 0 {
		return
	}
	k.d.Notef("global_defs (%s:%d):", file, s.Line)
	for _, w := range whys {
		k.d.Notef("  %s: %s.", strings.Join(kws[w], ", "), w)
	}
}

// parseScript reads a vrrp_script block.
func parseScript(file string, s *Stmt) (*kaScript, error) {
	if len(s.Words) != 2 || !s.HasBlock {
		return nil, kaErr(file, s.Line, "want: vrrp_script NAME { … }")
	}
	sc := &kaScript{file: file, stmt: s, name: s.Word(1), interval: Duration(time.Second)}
	var err error
	for _, c := range s.Block {
		kw := c.Word(0)
		switch kw {
		case "script":
			sc.argv, sc.shell, sc.extra, err = kaCommand(file, c)
		case "interval":
			sc.interval, err = kaSeconds(file, c, time.Millisecond)
		case "timeout":
			sc.timeout, err = kaSeconds(file, c, time.Millisecond)
		case "rise":
			sc.rise, err = kaInt(file, c, 1, 100000)
		case "fall":
			sc.fall, err = kaInt(file, c, 1, 100000)
		case "weight":
			sc.weight, sc.reverse, err = kaWeight(file, c)
			sc.hasW = true
		case "user":
			sc.user = strings.Join(c.Args(), " ")
		case "init_fail":
			sc.initFail = true
		default:
			return nil, kaErr(file, c.Line, "vrrp_script %s: unknown keyword %q", sc.name, kw)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(sc.argv) == 0 {
		return nil, kaErr(file, s.Line, "vrrp_script %s has no script", sc.name)
	}
	return sc, nil
}

// kaSeconds reads a statement's one argument as seconds (keepalived
// takes decimals: "0.5"), at least min.
func kaSeconds(file string, c *Stmt, min time.Duration) (Duration, error) {
	if len(c.Words) != 2 {
		return 0, kaErr(file, c.Line, "%s: want one number of seconds", c.Word(0))
	}
	v, err := seconds(c.Word(1))
	if err != nil {
		return 0, kaErr(file, c.Line, "%s: %v", c.Word(0), err)
	}
	if time.Duration(v) < min {
		return 0, kaErr(file, c.Line, "%s: %s is below %s", c.Word(0), c.Word(1), min)
	}
	return v, nil
}

// kaInt reads a statement's one argument as a whole number in lo..hi.
func kaInt(file string, c *Stmt, lo, hi int) (int, error) {
	if len(c.Words) != 2 {
		return 0, kaErr(file, c.Line, "%s: want one number", c.Word(0))
	}
	n, err := strconv.Atoi(c.Word(1))
	if err != nil || n < lo || n > hi {
		return 0, kaErr(file, c.Line, "%s: %q is not a whole number in %d..%d", c.Word(0), c.Word(1), lo, hi)
	}
	return n, nil
}

// kaWeight reads "weight N [reverse|noreverse]" (N in -254..254).
func kaWeight(file string, c *Stmt) (int, bool, error) {
	return kaWeightAt(file, c, 1)
}

func kaWeightAt(file string, c *Stmt, i int) (int, bool, error) {
	n, err := strconv.Atoi(c.Word(i))
	if err != nil || n < -254 || n > 254 {
		return 0, false, kaErr(file, c.Line, "weight: %q is not a whole number in -254..254", c.Word(i))
	}
	switch {
	case len(c.Words) == i+1:
		return n, false, nil
	case len(c.Words) == i+2 && c.Word(i+1) == "reverse":
		return n, true, nil
	case len(c.Words) == i+2 && c.Word(i+1) == "noreverse":
		return n, false, nil
	}
	return 0, false, kaErr(file, c.Line, "weight: want N [reverse|noreverse]")
}

// kaCommand reads a script statement ("script CMD", "misc_path CMD") the
// way keepalived does: the first word after the keyword is the command
// line, split on unquoted white space with '…' and "…" quoting and C-like
// escapes; keepalived executes it directly, without a shell, unless it
// starts with "</" (a file-open test, run by system()). Words after the
// first are ignored by keepalived (extra).
func kaCommand(file string, c *Stmt) (argv []string, shell bool, extra []string, err error) {
	words, err := kaSplit(c.Raw, false)
	if err != nil || len(words) < 2 {
		return nil, false, nil, kaErr(file, c.Line, "%s: want a command", c.Word(0))
	}
	argv, err = kaSplit(words[1], true)
	if err != nil || len(argv) == 0 {
		return nil, false, nil, kaErr(file, c.Line, "%s: %v", c.Word(0), err)
	}
	a0 := argv[0]
	if strings.HasPrefix(a0, "<") && strings.HasPrefix(strings.TrimLeft(a0[1:], " \t"), "/") {
		shell = true
	}
	return argv, shell, words[2:], nil
}

// kaSplit splits s as keepalived's alloc_strvec_quoted does: words
// separated by unquoted white space; '…' and "…" quote (the quotes are
// removed, a word may join quoted and unquoted parts); a backslash keeps
// the next character, and with escapes, \n, \t, \xHH, \NNN (octal) and
// the like are decoded.
func kaSplit(s string, escapes bool) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			in = true
			if i+1 >= len(s) {
				return nil, fmt.Errorf("a \\ ends %q", s)
			}
			i++
			if !escapes {
				cur.WriteByte('\\')
				cur.WriteByte(s[i])
				continue
			}
			i += kaEscape(&cur, s[i:]) - 1
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			in = true
			quote = c
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("a %c is not closed", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// kaEscape decodes the escape at the start of s (after the backslash),
// writes it and returns how many bytes it took.
func kaEscape(b *strings.Builder, s string) int {
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	c := s[0]
	switch {
	case c == 'x' && len(s) > 1:
		if v, ok := hex(s[1]); ok {
			n := 2
			if len(s) > 2 {
				if w, ok := hex(s[2]); ok {
					v = v<<4 | w
					n = 3
				}
			}
			b.WriteByte(v)
			return n
		}
	case c == 'c' && len(s) > 1:
		b.WriteByte(s[1] & 0x1f)
		return 2
	case c >= '0' && c <= '7':
		v, n := c-'0', 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v<<3 + (s[n] - '0')
			n++
		}
		b.WriteByte(v)
		return n
	}
	if r, ok := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[c]; ok {
		b.WriteByte(r)
	} else {
		b.WriteByte(c)
	}
	return 1
}

// shellWords are words that only a shell gives a meaning; keepalived
// passes them to the command as plain arguments.
var shellWords = map[string]bool{"|": true, "||": true, "&&": true, ";": true, "&": true, ">": true, ">>": true, "<": true,
	">/dev/null": true, "2>&1": true, "2>/dev/null": true, "&>/dev/null": true, "1>/dev/null": true}

// kaProbe converts a keepalived command into a check's probe: a plain curl
// or nc probe becomes a native check; anything else an exec check of the
// same argv (keepalived runs no shell), or shell = true for a "</path"
// test. above returns comment lines for the check.
func kaProbe(argv []string, shell bool) (p Probe, above []string) {
	if shell {
		cmd := strings.Join(argv, " ")
		if p, ok := devTCPProbe(cmd); ok {
			return p, nil
		}
		return Probe{Fields: []Field{
			{Key: "type", Value: "exec"},
			{Key: "command", Value: cmd, Comment: "keepalived runs a \"</path\" script with /bin/sh"},
			{Key: "shell", Value: true},
		}}, nil
	}
	if p, ok := curlProbe(argv); ok {
		return p, nil
	}
	if p, ok := ncProbe(argv); ok {
		return p, nil
	}
	p = Probe{Fields: []Field{{Key: "type", Value: "exec"}, {Key: "command", Value: argv}}}
	for _, w := range argv[1:] {
		if shellWords[w] || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") {
			p.Fields[1].Comment = fmt.Sprintf("no shell, as keepalived ran it: %q is an argument; shell = true if a shell was meant", w)
			break
		}
	}
	switch base := path.Base(argv[0]); {
	case base == "pidof" || base == "pgrep" || (base == "killall" && len(argv) > 1 && argv[1] == "-0"):
		above = append(above, fmt.Sprintf("%s looks for any process by name. Consider type = \"process\" with unit = \"NAME.service\" (or pid_file):", base),
			"it watches the service's main process and goes down the moment it exits, without a process per probe.")
	}
	return p, above
}

// scriptCheck writes the [[check]] of a tracked vrrp_script.
func (k *keepalived) scriptCheck(sc *kaScript) {
	p, above := kaProbe(sc.argv, sc.shell)
	above = append([]string{fmt.Sprintf("vrrp_script %s (%s:%d)", sc.name, sc.file, sc.stmt.Line)}, above...)
	if len(sc.extra) > 0 {
		above = append(above, fmt.Sprintf("keepalived ran only the first word after script; the rest (%s) was ignored, and is here too: quote the whole command if it was meant.", strings.Join(sc.extra, " ")))
	}
	if sc.user != "" {
		above = append(above, fmt.Sprintf("user %s: anycastd runs exec checks as its own user.", sc.user))
	}
	if sc.hasW && sc.weight != 0 {
		above = append(above, fmt.Sprintf("weight %d: in VRRP a failure changed the instance's priority instead of giving the addresses up; see the [[vip]] that tracks it.", sc.weight))
	}
	c := k.d.AddCheck(sc.name, above...)
	sc.check = Name(c)
	setProbe(c, p)
	timeout, tname := sc.timeout, fmt.Sprintf("timeout %s", secondsText(sc.timeout))
	if timeout == 0 {
		timeout, tname = sc.interval, "keepalived's default timeout = interval"
	}
	if p.Timeout > 0 && p.Timeout < timeout {
		timeout, tname = p.Timeout, fmt.Sprintf("the probe's own time limit, below %s", tname)
	}
	fitTiming(c, sc.interval, 0, timeout, tname)
	if ic := fmt.Sprintf("interval %s", secondsText(sc.interval)); sc.interval == Duration(time.Second) && !hasWord(sc.stmt, "interval") {
		c.Note("interval", "keepalived's default")
	} else {
		c.Note("interval", ic)
	}
	if t, ok := c.Get("timeout"); ok && t == timeout {
		c.Note("timeout", tname)
	}
	setCount(c, "rise", sc.rise, 1)
	setCount(c, "fall", sc.fall, 1)
	switch {
	case sc.initFail:
		c.Note("rise", "init_fail: here too a check starts down and needs rise passes")
	case sc.rise > 1:
		c.Note("rise", "at start keepalived needed one pass (no init_fail); anycastd needs rise passes")
	}
}

// setCount sets rise or fall to n, or keepalived's default def when n is 0.
func setCount(c *Table, key string, n, def int) {
	if n == 0 {
		c.Set(key, def, "keepalived's default")
		return
	}
	c.Set(key, n, fmt.Sprintf("%s %d", key, n))
}

// hasWord reports whether block s has a statement starting with kw.
func hasWord(s *Stmt, kw string) bool {
	for _, c := range s.Block {
		if c.Word(0) == kw {
			return true
		}
	}
	return false
}
