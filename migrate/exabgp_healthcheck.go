package migrate

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file converts ExaBGP's healthcheck program (a "process" of
// exabgp.conf whose run is "exabgp healthcheck …", "python3 -m exabgp
// healthcheck …" or a path ending in healthcheck) into a [[check]] and its
// [[vip]] tables. Its options are read as the program's argparse reads
// them: "--opt value", "--opt=value", the short forms, unique prefixes of
// the long names, and a --config file ("option = value" or "option" per
// line, '#' comments) whose options come before the command line's.

// hcKind is how a healthcheck option takes its value.
type hcKind int

const (
	hcFlag   hcKind = iota // no value
	hcValue                // one value; the last one given wins
	hcList                 // repeatable
	hcOptVal               // an optional value (--syslog-facility)
)

// hcOptions are the healthcheck program's options (ExaBGP 4.x), by long
// name.
var hcOptions = map[string]hcKind{
	"silent": hcFlag, "syslog-facility": hcOptVal, "no-syslog": hcFlag, "debug": hcFlag, "no-ack": hcFlag,
	"sudo": hcFlag, "name": hcValue, "config": hcValue, "pid": hcValue, "user": hcValue, "group": hcValue,
	"interval": hcValue, "fast-interval": hcValue, "timeout": hcValue, "rise": hcValue, "fall": hcValue,
	"disable": hcValue, "command": hcValue, "cmd": hcValue,
	"next-hop": hcValue, "ip": hcList, "ip-ifname": hcList, "local-preference": hcValue,
	"deaggregate-networks": hcFlag, "no-ip-setup": hcFlag, "dynamic-ip-setup": hcFlag, "label": hcValue,
	"label-exact-match": hcFlag, "start-ip": hcValue, "up-metric": hcValue, "down-metric": hcValue,
	"disabled-metric": hcValue, "increase": hcValue, "community": hcValue, "extended-community": hcValue,
	"large-community": hcValue, "disabled-community": hcValue, "as-path": hcValue, "up-as-path": hcValue,
	"down-as-path": hcValue, "disabled-as-path": hcValue, "withdraw-on-down": hcFlag, "path-id": hcValue,
	"neighbor": hcList, "debounce": hcFlag,
	"execute": hcList, "up-execute": hcList, "down-execute": hcList, "disabled-execute": hcList,
}

// hcShort maps the short options to their long names.
var hcShort = map[string]string{
	"-s": "silent", "-sF": "syslog-facility", "-d": "debug", "-a": "no-ack", "-n": "name", "-F": "config",
	"-p": "pid", "-i": "interval", "-f": "fast-interval", "-t": "timeout", "-c": "command", "-N": "next-hop",
}

// hcVal is one option as given, with where.
type hcVal struct {
	v    string
	file string
	line int
}

// hcArgs are a healthcheck's parsed options.
type hcArgs map[string][]hcVal

// last returns the value of a single-valued option and whether it was
// given.
func (a hcArgs) last(name string) (hcVal, bool) {
	vs := a[name]
	if len(vs) == 0 {
		return hcVal{}, false
	}
	return vs[len(vs)-1], true
}

// healthcheckArgs returns the healthcheck's arguments when argv runs it.
func healthcheckArgs(argv []string) ([]string, bool) {
	for len(argv) > 0 && (path.Base(argv[0]) == "env" || (strings.Contains(argv[0], "=") && !strings.HasPrefix(argv[0], "-"))) {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return nil, false
	}
	base := path.Base(argv[0])
	switch {
	case base == "exabgp" && len(argv) > 1 && argv[1] == "healthcheck":
		return argv[2:], true
	case base == "healthcheck" || base == "exabgp-healthcheck" || base == "healthcheck.py":
		return argv[1:], true
	case strings.HasPrefix(base, "python"):
		for i := 1; i < len(argv); i++ {
			switch {
			case argv[i] == "-m" && i+1 < len(argv) && argv[i+1] == "exabgp" && i+2 < len(argv) && argv[i+2] == "healthcheck":
				return argv[i+3:], true
			case argv[i] == "-m" && i+1 < len(argv) && argv[i+1] == "exabgp.application.healthcheck":
				return argv[i+2:], true
			case !strings.HasPrefix(argv[i], "-"):
				b := path.Base(argv[i])
				if b == "healthcheck.py" || b == "healthcheck" || b == "exabgp-healthcheck" {
					return argv[i+1:], true
				}
				return nil, false
			}
		}
	}
	return nil, false
}

// parseHCArgs reads args (from file:line) into out. A value of an option
// that wants one, or an option the program does not know, is an error
// naming the option; the caller turns it into an issue.
func parseHCArgs(args []string, file string, line int, out hcArgs) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		var name, val string
		hasVal := false
		switch {
		case strings.HasPrefix(a, "--"):
			name = a[2:]
			if k, v, ok := strings.Cut(name, "="); ok {
				name, val, hasVal = k, v, true
			}
			full, err := hcLong(name)
			if err != nil {
				return err
			}
			name = full
		case hcShort[a] != "":
			name = a
			name = hcShort[a]
		case len(a) > 2 && a[0] == '-' && hcShort[a[:2]] != "" && hcOptions[hcShort[a[:2]]] != hcFlag:
			name, val, hasVal = hcShort[a[:2]], a[2:], true
		default:
			return fmt.Errorf("%q is not a healthcheck option", a)
		}
		if name == "cmd" {
			name = "command"
		}
		switch hcOptions[name] {
		case hcFlag:
			if hasVal {
				return fmt.Errorf("--%s takes no value", name)
			}
			val = "true"
		case hcOptVal:
			if !hasVal && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				val = args[i]
			}
		default:
			if !hasVal {
				if i+1 >= len(args) {
					return fmt.Errorf("--%s wants a value", name)
				}
				i++
				val = args[i]
			}
		}
		out[name] = append(out[name], hcVal{v: val, file: file, line: line})
	}
	return nil
}

// hcLong returns the option name (a unique prefix of one, as argparse
// allows).
func hcLong(name string) (string, error) {
	if _, ok := hcOptions[name]; ok {
		return name, nil
	}
	var match []string
	for k := range hcOptions {
		if strings.HasPrefix(k, name) && name != "" {
			match = append(match, k)
		}
	}
	slices.Sort(match)
	if len(match) == 2 && slices.Contains(match, "cmd") && slices.Contains(match, "command") {
		return "command", nil
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", fmt.Errorf("--%s is not a healthcheck option", name)
	default:
		return "", fmt.Errorf("--%s is ambiguous (%s)", name, strings.Join(match, ", "))
	}
}

// parseHCConfig reads a --config file: one option a line, "name = value"
// or "name", '#' comments.
func parseHCConfig(file string, data []byte, out hcArgs) error {
	if len(data) > maxSourceSize {
		return synErr(file, 0, "larger than %d MiB", maxSourceSize>>20)
	}
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		args := []string{"--" + l}
		if k, v, ok := strings.Cut(l, "="); ok {
			args = []string{"--" + strings.TrimSpace(k), strings.TrimSpace(v)}
		}
		if strings.ContainsRune(l, 0) {
			return synErr(file, i+1, "NUL byte")
		}
		if err := parseHCArgs(args, file, i+1, out); err != nil {
			return synErr(file, i+1, "%v", err)
		}
	}
	return nil
}

// process converts one process block.
func (c *exaConv) process(p *exaProc) error {
	var run *Stmt
	var notes []string
	for _, s := range p.stmt.Block {
		switch s.Word(0) {
		case "run":
			run = s
		case "encoder", "respawn", "neighbor-changes", "receive", "send", "receive-routes", "peer-updates", "parse-routes":
			notes = append(notes, stmtText(s))
		default:
			c.fail(p.file, s.Line, "process %s: %q is not a process setting anycastd knows", p.name, stmtText(s))
		}
	}
	if run == nil || len(run.Words) < 2 {
		c.fail(p.file, p.stmt.Line, "process %s has no run command", p.name)
		return nil
	}
	cmdline := run.Raw[len(run.Words[0].Text):]
	switch {
	case len(run.Words) == 2 && run.Words[1].Quoted:
		cmdline = run.Words[1].Text
	case run.Words[0].Quoted:
		cmdline = strings.Join(run.Args(), " ")
	}
	argv, _, err := splitShell(cmdline)
	if err != nil {
		return synErr(p.file, run.Line, "run: %v", err)
	}
	args, ok := healthcheckArgs(argv)
	if !ok {
		if len(p.feeds) == 0 && c.anyAPI {
			c.d.Notef("process %s (%s:%d) is not a healthcheck, and no neighbor's api names it: its commands reached no neighbor, and anycastd does not run it.", p.name, p.file, run.Line)
			return nil
		}
		c.fail(p.file, run.Line, "process %s runs %q, not ExaBGP's healthcheck: anycastd runs no external process (a program that announces routes needs anycastd's checks or its API instead)", p.name, strings.TrimSpace(cmdline))
		return nil
	}
	if len(p.feeds) == 0 {
		c.fail(p.file, run.Line, "process %s: no neighbor's api names it, so ExaBGP sent its routes to no neighbor; not converted (add it to a neighbor's api to announce it)", p.name)
		return nil
	}
	hc, fromArgs := hcArgs{}, hcArgs{}
	cfgNote := ""
	if err := parseHCArgs(args, p.file, run.Line, fromArgs); err != nil {
		c.fail(p.file, run.Line, "process %s: %v: the healthcheck does not start", p.name, err)
		return nil
	}
	if cf, ok := fromArgs.last("config"); ok {
		if c.o.ReadFile == nil {
			c.fail(p.file, run.Line, "process %s: --config %s: the file was not read (give it to anycastd migrate)", p.name, cf.v)
			return nil
		}
		data, err := c.o.ReadFile(cf.v)
		if err != nil {
			c.fail(p.file, run.Line, "process %s: --config %s: %v", p.name, cf.v, err)
			return nil
		}
		if err := parseHCConfig(cf.v, data, hc); err != nil {
			return err
		}
		for _, v := range hc["config"] {
			c.fail(v.file, v.line, "a --config file naming another --config file: the healthcheck reads only the first")
		}
		delete(hc, "config")
		cfgNote = "--config " + cf.v + ": read; its options are converted below with the command line's"
	}
	for k, v := range fromArgs {
		if hcOptions[k] == hcList {
			hc[k] = append(hc[k], v...)
		} else {
			hc[k] = v
		}
	}
	h := &hcConv{c: c, p: p, a: hc, run: run}
	return h.convert(notes, cfgNote)
}

// hcConv converts one healthcheck process.
type hcConv struct {
	c   *exaConv
	p   *exaProc
	a   hcArgs
	run *Stmt
}

func (h *hcConv) errf(v hcVal, format string, args ...any) error {
	return synErr(v.file, v.line, format, args...)
}

// src names an option as written: "--interval 5".
func src(name string, v hcVal) string {
	if hcOptions[name] == hcFlag {
		return "--" + name
	}
	return "--" + name + " " + v.v
}

// num reads a whole-number option with its default, in lo..hi.
func (h *hcConv) num(name string, def, lo, hi int64) (int64, string, error) {
	v, ok := h.a.last(name)
	if !ok {
		return def, fmt.Sprintf("the healthcheck's default --%s %d", name, def), nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v.v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, "", h.errf(v, "--%s %q: want a whole number in %d..%d", name, v.v, lo, hi)
	}
	return n, src(name, v), nil
}

// secs reads a number-of-seconds option with its default.
func (h *hcConv) secs(name string, def float64) (Duration, string, error) {
	v, ok := h.a.last(name)
	if !ok {
		return Duration(def * float64(time.Second)), fmt.Sprintf("the healthcheck's default --%s %g", name, def), nil
	}
	d, err := seconds(v.v)
	if err != nil {
		return 0, "", h.errf(v, "--%s: %v", name, err)
	}
	return d, src(name, v), nil
}

// ignored are options with no anycastd meaning, and why.
var hcIgnored = map[string]string{
	"debug": "[log] level = \"debug\" or anycastd -log-level debug", "silent": "anycastd logs to stderr (the journal)",
	"syslog-facility": "anycastd logs to stderr (the journal)", "no-syslog": "anycastd logs to stderr (the journal)",
	"pid": "let systemd track anycastd", "no-ack": "no ExaBGP API", "sudo": "anycastd needs CAP_NET_ADMIN instead",
	"user": "anycastd needs CAP_NET_ADMIN instead", "group": "anycastd needs CAP_NET_ADMIN instead",
	"label": "addresses are given, not discovered", "label-exact-match": "addresses are given, not discovered",
	"debounce": "anycastd sends UPDATEs on changes only", "path-id": "anycastd does not do ADD-PATH",
	"disabled-as-path": "a maintenance file drains, then withdraws",
}

// convert builds the check and the VIPs.
func (h *hcConv) convert(notes []string, cfgNote string) error {
	c, a := h.c, h.a
	name := h.p.name
	if v, ok := a.last("name"); ok && v.v != "" {
		name = v.v
	}
	above := []string{fmt.Sprintf("process %s (%s:%d)", h.p.name, h.p.file, h.run.Line)}
	for _, n := range notes {
		above = append(above, n+": no meaning without ExaBGP")
	}
	if cfgNote != "" {
		above = append(above, cfgNote)
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if why, ok := hcIgnored[k]; ok {
			above = append(above, fmt.Sprintf("%s: %s", src(k, a[k][len(a[k])-1]), why))
		}
	}
	for _, k := range []string{"execute", "up-execute", "down-execute", "disabled-execute", "extended-community"} {
		for _, v := range a[k] {
			why := "anycastd runs no command on a state change: follow anycastctl events -f -o json instead"
			if k == "extended-community" {
				why = "anycastd sends no extended communities"
			}
			c.fail(v.file, v.line, "process %s: %s: %s", h.p.name, src(k, v), why)
		}
	}
	chk := c.d.AddCheck(name, above...)
	if err := h.check(chk); err != nil {
		return err
	}
	return h.vips(name, Name(chk))
}

// check fills the [[check]].
func (h *hcConv) check(chk *Table) error {
	cmd, hasCmd := h.a.last("command")
	var p Probe
	if hasCmd && strings.TrimSpace(cmd.v) != "" {
		var err error
		if p, err = probeFor(cmd.v); err != nil {
			return h.errf(cmd, "--command: %v", err)
		}
	} else {
		p = Probe{Fields: []Field{{Key: "type", Value: "exec"}, {Key: "command", Value: []string{"true"}, Comment: "no --cmd: the healthcheck counted the service always up"}}}
	}
	setProbe(chk, p)
	interval, iSrc, err := h.secs("interval", 5)
	if err != nil {
		return err
	}
	if interval == 0 {
		v, _ := h.a.last("interval")
		h.c.fail(v.file, v.line, "process %s: --interval 0 announces once and exits; anycastd has no such mode", h.p.name)
		interval = Duration(5 * time.Second)
	}
	fast, fSrc, err := h.secs("fast-interval", 1)
	if err != nil {
		return err
	}
	if fast == 0 {
		fast = Duration(10 * time.Millisecond)
		fSrc += " (anycastd's shortest is 10ms)"
	}
	if interval < Duration(10*time.Millisecond) {
		interval = Duration(10 * time.Millisecond)
		iSrc += " (anycastd's shortest is 10ms)"
	}
	to, tSrc, err := h.num("timeout", 5, 0, 86400)
	if err != nil {
		return err
	}
	timeout := Duration(time.Duration(to) * time.Second)
	if p.Native && p.Timeout > 0 && (timeout == 0 || p.Timeout < timeout) {
		timeout, tSrc = p.Timeout, "the probe's own time limit"
	}
	fitTiming(chk, interval, fast, timeout, tSrc)
	for k, s := range map[string]string{"interval": iSrc, "fast_interval": fSrc, "timeout": tSrc} {
		if v, ok := chk.Get(k); ok {
			for _, f := range chk.Fields {
				if f.Key == k {
					if f.Comment == "" {
						chk.Set(k, v, s)
					} else if k != "timeout" {
						chk.Set(k, v, s+"; "+f.Comment)
					}
				}
			}
		}
	}
	if to == 0 {
		chk.Above = append(chk.Above, "--timeout 0: the healthcheck waited without a limit; anycastd's timeout is below fast_interval")
	}
	for _, k := range []string{"rise", "fall"} {
		n, s, err := h.num(k, 3, -1<<31, 1<<31)
		if err != nil {
			return err
		}
		switch {
		case n < 1:
			chk.Set(k, 1, s+": the healthcheck counts it as 1")
		case n > 100:
			chk.Set(k, 100, s+": anycastd's most is 100")
		default:
			chk.Set(k, int(n), s)
		}
	}
	return nil
}
