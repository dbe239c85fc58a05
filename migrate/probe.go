package migrate

import (
	"net"
	"net/url"
	"path"
	"strings"

	"github.com/anycastd/anycastd/config"
)

// Probe is what a health command becomes: a native check where the command
// is a plain curl or nc probe, else an exec check.
type Probe struct {
	// Fields are the check's keys after name: type and what the type
	// needs.
	Fields []Field
	// Timeout is the probe's own time limit (curl's --max-time, nc's -w),
	// 0 when it has none; the caller uses it where the source gives no
	// timeout.
	Timeout Duration
	// Native reports a native check (http, https or tcp).
	Native bool
}

// probeFor converts the shell command line cmd (as ExaBGP's --cmd or
// keepalived's script hold it) or the argv list (anycast-healthchecker's
// check_cmd, split) into a check.
//
// A command that is a plain curl probe of one http(s) URL (only -s, -S,
// -f, -o /dev/null, -m/--max-time, --connect-timeout, -k, -L, -I, -X GET or
// HEAD, -H, -4, -6, -q) becomes an http or https check; a plain "nc -z
// HOST PORT" (with -w, -v, -n) a tcp check; a plain "dig @SERVER NAME
// [TYPE]" (with -p, -t, +time, +tries, +retry, +short, +tcp, -4, -6) a dns
// check. Anything else becomes an exec
// check: an argv list, or shell = true where the command needs a shell.
func probeFor(cmd string) (Probe, error) {
	if p, ok := devTCPProbe(cmd); ok {
		return p, nil
	}
	argv, needsShell, err := splitShell(cmd)
	if err != nil {
		return Probe{}, err
	}
	if !needsShell {
		if p, ok := curlProbe(argv); ok {
			return p, nil
		}
		if p, ok := ncProbe(argv); ok {
			return p, nil
		}
		if p, ok := digProbe(argv); ok {
			return p, nil
		}
	}
	if needsShell || len(argv) == 0 {
		return Probe{Fields: []Field{
			{Key: "type", Value: "exec"},
			{Key: "command", Value: cmd, Comment: "run by /bin/sh -c, as the source ran it"},
			{Key: "shell", Value: true},
		}}, nil
	}
	return Probe{Fields: []Field{
		{Key: "type", Value: "exec"},
		{Key: "command", Value: argv},
	}}, nil
}

// curlProbe recognises a plain curl probe; see probeFor.
func curlProbe(argv []string) (Probe, bool) {
	if len(argv) < 2 || path.Base(argv[0]) != "curl" {
		return Probe{}, false
	}
	var (
		rawURL, method, host string
		fail, insecure, loc  bool
		timeout              Duration
		headers              = map[string]string{}
	)
	arg := func(i *int) (string, bool) {
		if *i+1 >= len(argv) {
			return "", false
		}
		*i++
		return argv[*i], true
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		var ok = true
		switch {
		case a == "--silent", a == "--show-error", a == "-4", a == "-6", a == "--ipv4", a == "--ipv6", a == "-q", a == "--disable":
		case a == "--fail":
			fail = true
		case a == "--insecure":
			insecure = true
		case a == "--location":
			loc = true
		case a == "--head":
			method = "HEAD"
		case a == "-o", a == "--output":
			var v string
			v, ok = arg(&i)
			ok = ok && v == "/dev/null"
		case a == "-m", a == "--max-time", a == "--connect-timeout":
			var v string
			if v, ok = arg(&i); ok {
				d, err := seconds(v)
				ok = err == nil && d > 0
				if ok && (a != "--connect-timeout" || timeout == 0) {
					timeout = d
				}
			}
		case a == "-X", a == "--request":
			var v string
			v, ok = arg(&i)
			ok = ok && (v == "GET" || v == "HEAD")
			method = v
		case a == "-H", a == "--header":
			var v string
			if v, ok = arg(&i); ok {
				k, val, found := strings.Cut(v, ":")
				k, val = strings.TrimSpace(k), strings.TrimSpace(val)
				ok = found && k != "" && !strings.ContainsAny(k, " \t")
				if strings.EqualFold(k, "Host") {
					host = val
				} else if ok {
					headers[k] = val
				}
			}
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 1:
			for _, f := range a[1:] {
				switch f {
				case 's', 'S':
				case 'f':
					fail = true
				case 'k':
					insecure = true
				case 'L':
					loc = true
				case 'I':
					method = "HEAD"
				default:
					ok = false
				}
			}
		case strings.HasPrefix(a, "-"):
			ok = false
		default:
			ok = rawURL == ""
			rawURL = a
		}
		if !ok {
			return Probe{}, false
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Probe{}, false
	}
	typ := u.Scheme
	p := Probe{Native: true, Timeout: timeout}
	p.Fields = append(p.Fields,
		Field{Key: "type", Value: typ, Comment: "a native check instead of curl"},
		Field{Key: "url", Value: rawURL})
	if method != "" && method != "GET" {
		p.Fields = append(p.Fields, Field{Key: "method", Value: method})
	}
	if fail {
		p.Fields = append(p.Fields, Field{Key: "expect_status", Value: []string{"200-399"}, Comment: "curl --fail passes below 400"})
	} else {
		p.Fields = append(p.Fields, Field{Key: "expect_status", Value: []string{"100-599"}, Comment: "curl without --fail passes on any status; consider 200-299"})
	}
	if host != "" {
		p.Fields = append(p.Fields, Field{Key: "host", Value: host})
	}
	if len(headers) > 0 {
		p.Fields = append(p.Fields, Field{Key: "headers", Value: headers})
	}
	if loc {
		p.Fields = append(p.Fields, Field{Key: "follow_redirects", Value: true})
	}
	if insecure {
		p.Fields = append(p.Fields, Field{Key: "insecure_skip_verify", Value: true, Comment: "curl -k"})
	}
	return p, true
}

// ncProbe recognises "nc -z [-w N] [-v] [-n] HOST PORT"; see probeFor.
func ncProbe(argv []string) (Probe, bool) {
	if len(argv) < 3 || (path.Base(argv[0]) != "nc" && path.Base(argv[0]) != "ncat" && path.Base(argv[0]) != "netcat") {
		return Probe{}, false
	}
	var (
		zero    bool
		timeout Duration
		rest    []string
	)
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-w":
			if i+1 >= len(argv) {
				return Probe{}, false
			}
			i++
			d, err := seconds(argv[i])
			if err != nil || d == 0 {
				return Probe{}, false
			}
			timeout = d
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, f := range a[1:] {
				switch f {
				case 'z':
					zero = true
				case 'v', 'n':
				default:
					return Probe{}, false
				}
			}
		default:
			rest = append(rest, a)
		}
	}
	if !zero || len(rest) != 2 {
		return Probe{}, false
	}
	host, port := strings.Trim(rest[0], "[]"), rest[1]
	if _, err := count(port, 65535); err != nil || port == "0" || host == "" {
		return Probe{}, false
	}
	return Probe{Native: true, Timeout: timeout, Fields: []Field{
		{Key: "type", Value: "tcp", Comment: "a native check instead of nc -z"},
		{Key: "address", Value: net.JoinHostPort(host, port)},
	}}, true
}

// digProbe recognises "dig @SERVER NAME [TYPE]"; see probeFor. dig exits 0
// on any reply, NXDOMAIN and SERVFAIL included, where the dns check expects
// NOERROR: the comment says so. Without @SERVER dig asks the resolvers of
// /etc/resolv.conf, which the dns check cannot: such a command stays exec.
func digProbe(argv []string) (Probe, bool) {
	if len(argv) < 3 || path.Base(argv[0]) != "dig" {
		return Probe{}, false
	}
	var (
		server, port, name, qtype string
		tcp                       bool
		timeout                   Duration
	)
	isType := func(s string) bool {
		for _, t := range config.DNSQueryTypes {
			if strings.EqualFold(s, t) {
				return true
			}
		}
		return false
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case strings.HasPrefix(a, "@") && server == "":
			server = strings.Trim(a[1:], "[]")
		case a == "-p" || a == "-t":
			if i+1 >= len(argv) {
				return Probe{}, false
			}
			i++
			if a == "-p" {
				if n, err := count(argv[i], 65535); err != nil || n == 0 {
					return Probe{}, false
				}
				port = argv[i]
			} else if qtype == "" && isType(argv[i]) {
				qtype = strings.ToUpper(argv[i])
			} else {
				return Probe{}, false
			}
		case a == "-4", a == "-6", a == "+short", a == "+notcp", a == "+novc",
			strings.HasPrefix(a, "+tries="), strings.HasPrefix(a, "+retry="):
		case a == "+tcp", a == "+vc":
			tcp = true
		case strings.HasPrefix(a, "+time="):
			d, err := seconds(strings.TrimPrefix(a, "+time="))
			if err != nil || d == 0 {
				return Probe{}, false
			}
			timeout = d
		case strings.HasPrefix(a, "-"), strings.HasPrefix(a, "+"), strings.HasPrefix(a, "@"):
			return Probe{}, false
		case name == "":
			name = a
		case qtype == "" && isType(a):
			qtype = strings.ToUpper(a)
		case strings.EqualFold(a, "IN"):
		default:
			return Probe{}, false
		}
	}
	if server == "" || name == "" {
		return Probe{}, false
	}
	if port != "" {
		server = net.JoinHostPort(server, port)
	}
	p := Probe{Native: true, Timeout: timeout, Fields: []Field{
		{Key: "type", Value: "dns", Comment: "a native check instead of dig"},
		{Key: "query_name", Value: name},
	}}
	if qtype != "" {
		p.Fields = append(p.Fields, Field{Key: "query_type", Value: qtype})
	}
	p.Fields = append(p.Fields, Field{Key: "server", Value: server})
	if tcp {
		p.Fields = append(p.Fields, Field{Key: "protocol", Value: "tcp"})
	}
	p.Fields = append(p.Fields, Field{Key: "expect_rcode", Value: "NOERROR", Comment: "dig passed on any answer, NXDOMAIN and SERVFAIL too"})
	return p, true
}

// devTCPProbe recognises "</dev/tcp/HOST/PORT" (also with a space after
// '<'), bash's connection test, as a tcp check: dash, Debian's /bin/sh, has
// no /dev/tcp, so as a shell command it would fail there every time.
func devTCPProbe(cmd string) (Probe, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(cmd), "<")
	if !ok {
		return Probe{}, false
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "/dev/tcp/")
	if !ok {
		return Probe{}, false
	}
	host, port, ok := strings.Cut(rest, "/")
	if !ok || host == "" || strings.ContainsAny(host, " \t/") {
		return Probe{}, false
	}
	if n, err := count(port, 65535); err != nil || n == 0 {
		return Probe{}, false
	}
	return Probe{Native: true, Fields: []Field{
		{Key: "type", Value: "tcp", Comment: "a native check instead of the shell's </dev/tcp (which dash, Debian's /bin/sh, lacks)"},
		{Key: "address", Value: net.JoinHostPort(strings.Trim(host, "[]"), port)},
	}}, true
}

// setProbe puts p's fields on the check c.
func setProbe(c *Table, p Probe) {
	for _, f := range p.Fields {
		c.Set(f.Key, f.Value, f.Comment)
	}
}
