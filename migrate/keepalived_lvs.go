package migrate

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// This file converts keepalived's LVS part: a virtual_server's real-server
// checkers (HTTP_GET, SSL_GET, TCP_CHECK, MISC_CHECK) become checks, and
// the virtual server's address a [[vip]] that stays announced while at
// least one real server passes (require = "any", keepalived's quorum 1).
// IPVS itself (the balancing) is not anycastd's.
//
// Checker timing, keepalived.conf(5): delay_loop (60 s) between checks;
// a failed check is retried retry times (1; MISC_CHECK 0), each after
// delay_before_retry (3 s for HTTP_GET and SSL_GET, else 1 s), and the
// real server is down when every try failed: fall = retry + 1. One pass
// brings it back up: rise = 1. connect_timeout (5 s) bounds each try.
// Each setting may be given on the virtual server, the real server or the
// checker; the nearer one wins.

// kaTiming is a checker's timing settings; a nil field is not given.
type kaTiming struct {
	delayLoop, connectTimeout, delayBeforeRetry *Duration
	retry                                       *int
}

// read reads one timing keyword into t; ok is false for another keyword.
func (t *kaTiming) read(file string, c *Stmt) (ok bool, err error) {
	switch c.Word(0) {
	case "delay_loop", "connect_timeout", "delay_before_retry":
		v, err := kaSeconds(file, c, time.Millisecond)
		if err != nil {
			return true, err
		}
		switch c.Word(0) {
		case "delay_loop":
			t.delayLoop = &v
		case "connect_timeout":
			t.connectTimeout = &v
		default:
			t.delayBeforeRetry = &v
		}
	case "retry", "nb_get_retry":
		n, err := kaInt(file, c, 0, 99)
		if err != nil {
			return true, err
		}
		t.retry = &n
	default:
		return false, nil
	}
	return true, nil
}

// over returns t with the fields set in u replacing t's.
func (t kaTiming) over(u kaTiming) kaTiming {
	if u.delayLoop != nil {
		t.delayLoop = u.delayLoop
	}
	if u.connectTimeout != nil {
		t.connectTimeout = u.connectTimeout
	}
	if u.delayBeforeRetry != nil {
		t.delayBeforeRetry = u.delayBeforeRetry
	}
	if u.retry != nil {
		t.retry = u.retry
	}
	return t
}

// lvsKeywords are virtual_server and real_server settings of IPVS.
var lvsKeywords = map[string]bool{"lb_algo": true, "lvs_sched": true, "lb_kind": true, "lvs_method": true, "persistence_timeout": true,
	"persistence_granularity": true, "persistence_engine": true, "protocol": true, "sorry_server": true, "sorry_server_inhibit": true,
	"sorry_server_lvs_method": true, "quorum": true, "hysteresis": true, "quorum_up": true, "quorum_down": true, "ha_suspend": true,
	"ops": true, "flag-1": true, "flag-2": true, "flag-3": true, "sh-port": true, "sh-fallback": true, "mh-port": true, "mh-fallback": true,
	"nat_mask": true, "ip_family": true, "omega": true, "smtp_alert": true, "snmp_name": true, "inhibit_on_failure": true, "weight": true,
	"uthreshold": true, "lthreshold": true, "notify_up": true, "notify_down": true, "warmup": true, "alpha": true, "virtualhost": true}

// virtualServer converts a virtual_server block.
func (k *keepalived) virtualServer(file string, s *Stmt) error {
	d := k.d
	if !s.HasBlock || len(s.Words) < 2 {
		return kaErr(file, s.Line, "want: virtual_server ADDRESS [PORT] { … }")
	}
	if w := s.Word(1); w == "fwmark" || w == "group" {
		d.Fail(file, s.Line, "virtual_server %s %s: not converted; anycastd announces addresses: write a virtual_server ADDRESS PORT block per address", w, s.Word(2))
		return nil
	}
	addr, err := netip.ParseAddr(s.Word(1))
	if err != nil || addr.Zone() != "" || len(s.Words) > 3 {
		return kaErr(file, s.Line, "virtual_server: want ADDRESS [PORT], got %q", strings.Join(s.Args(), " "))
	}
	port := s.Word(2)
	if port != "" {
		if _, err := count(port, 65535); err != nil {
			return kaErr(file, s.Line, "virtual_server: port %v", err)
		}
	}
	what := strings.TrimSpace("virtual_server " + addr.String() + " " + port)
	var (
		vsT    kaTiming
		lvs    []string
		host   string
		checks []string
		above  []string
	)
	// The virtual server's settings first: they are the real servers' defaults.
	for _, c := range s.Block {
		if ok, err := vsT.read(file, c); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch kw := c.Word(0); {
		case kw == "real_server":
		case kw == "virtualhost":
			host = c.Word(1)
		case lvsKeywords[kw]:
			lvs = append(lvs, strings.TrimSpace(kw+" "+strings.Join(c.Args(), " ")))
		default:
			d.Fail(file, c.Line, "%s: %s: unknown keyword, not converted", what, kw)
		}
	}
	for _, c := range s.Block {
		if c.Word(0) != "real_server" {
			continue
		}
		names, err := k.realServer(file, what, c, vsT, host)
		if err != nil {
			return err
		}
		checks = append(checks, names...)
	}
	above = append(above, fmt.Sprintf("%s (%s:%d)", what, file, s.Line))
	if len(lvs) > 0 {
		above = append(above, "IPVS ("+strings.Join(lvs, ", ")+") is not carried: anycastd does not balance, it announces",
			"the address; keep IPVS (keepalived's virtual_server blocks, or ipvsadm) on this node for the balancing.")
	}
	prefix, _, _ := hostPrefix(addr.String())
	if other, dup := k.prefixOf[prefix]; dup && k.vsVIPs[prefix] == nil {
		d.Notef("%s (%s:%d): its address is VIP %s, from a vrrp_instance, guarded by that instance's scripts as keepalived did; the real-server checks (%s) guard nothing: add them to that VIP's checks to make it follow the real servers.", what, file, s.Line, other, strings.Join(checks, ", "))
		return nil
	}
	if v := k.vsVIPs[prefix]; v != nil {
		old, _ := v.Get("checks")
		v.Set("checks", append(old.([]string), checks...), "")
		v.Note("checks", what+"'s real servers too: up while any real server of either passes")
		return nil
	}
	if len(checks) == 0 {
		d.Fail(file, s.Line, "%s: no real server with a converted check: nothing guards its address", what)
		return nil
	}
	v := d.AddVIP("vs-"+addr.String()+"-"+port, above...)
	k.vsVIPs[prefix] = v
	k.prefixOf[prefix] = Name(v)
	v.Set("prefixes", []string{prefix}, "the virtual server's address")
	v.Set("checks", checks, "the real servers' checks")
	v.Set("require", "any", "the virtual service is up while at least one real server passes")
	return nil
}

// realServer converts a real_server block's checker into a check and
// returns its name (none when the checker cannot be converted).
func (k *keepalived) realServer(file, what string, c *Stmt, vsT kaTiming, host string) ([]string, error) {
	d := k.d
	if !c.HasBlock || len(c.Words) < 2 || len(c.Words) > 3 {
		return nil, kaErr(file, c.Line, "want: real_server ADDRESS [PORT] { … }")
	}
	rip, err := netip.ParseAddr(c.Word(1))
	if err != nil || rip.Zone() != "" {
		return nil, kaErr(file, c.Line, "real_server: %q is not an IP address", c.Word(1))
	}
	rport := c.Word(2)
	if rport != "" {
		if _, err := count(rport, 65535); err != nil {
			return nil, kaErr(file, c.Line, "real_server: port %v", err)
		}
	}
	rsT := vsT
	var own kaTiming
	var checkers []*Stmt
	var rsNotes []string
	others := false // a checker of a type not converted
	for _, e := range c.Block {
		if ok, err := own.read(file, e); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch kw := e.Word(0); kw {
		case "HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK":
			checkers = append(checkers, e)
		case "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK":
			others = true
			d.Fail(file, e.Line, "real_server %s: %s: not converted (anycastd has tcp, http, https, dns, grpc, exec checks: write it by hand)", rip, kw)
		case "virtualhost":
			host = e.Word(1)
		case "notify_up", "notify_down":
			k.notifies = append(k.notifies, fmt.Sprintf("%s of real_server %s at %s:%d", kw, rip, file, e.Line))
		default:
			if lvsKeywords[kw] {
				rsNotes = append(rsNotes, strings.TrimSpace(kw+" "+strings.Join(e.Args(), " ")))
				continue
			}
			d.Fail(file, e.Line, "real_server %s: %s: unknown keyword, not converted", rip, kw)
		}
	}
	rsT = rsT.over(own)
	if len(checkers) == 0 {
		if others {
			return nil, nil
		}
		d.Fail(file, c.Line, "%s: real_server %s has no checker: keepalived kept it in the pool unchecked; anycastd needs a check", what, rip)
		return nil, nil
	}
	if len(checkers) > 1 {
		d.Fail(file, checkers[1].Line, "real_server %s: a second checker: keepalived required every checker to pass; only the first is converted", rip)
	}
	name, err := k.checker(file, checkers[0], rip, rport, rsT, host, rsNotes)
	if err != nil || name == "" {
		return nil, err
	}
	return []string{name}, nil
}

// checker converts one HTTP_GET, SSL_GET, TCP_CHECK or MISC_CHECK block.
func (k *keepalived) checker(file string, e *Stmt, rip netip.Addr, rport string, t kaTiming, host string, rsNotes []string) (string, error) {
	d := k.d
	kind := e.Word(0)
	ip, port := rip.String(), rport
	var (
		own      kaTiming
		urls     []*Stmt
		source   string
		sni      string
		misc     *Stmt
		miscTO   Duration
		notes    []string
		dynamic  bool
		miscUser string
	)
	for _, o := range e.Block {
		if kind != "MISC_CHECK" {
			if ok, err := own.read(file, o); ok {
				if err != nil {
					return "", err
				}
				continue
			}
		} else if w := o.Word(0); w == "retry" || w == "delay_before_retry" || w == "delay_loop" || w == "connect_timeout" {
			// connect_timeout is accepted in MISC_CHECK and unused: misc_timeout bounds the script.
			if _, err := own.read(file, o); err != nil {
				return "", err
			}
			continue
		}
		switch kw := o.Word(0); kw {
		case "url":
			if kind == "HTTP_GET" || kind == "SSL_GET" {
				urls = append(urls, o)
				continue
			}
			d.Fail(file, o.Line, "%s: url: unknown keyword, not converted", kind)
		case "connect_ip":
			a, err := netip.ParseAddr(o.Word(1))
			if err != nil {
				return "", kaErr(file, o.Line, "connect_ip: %q is not an IP address", o.Word(1))
			}
			ip = a.String()
		case "connect_port":
			if _, err := count(o.Word(1), 65535); err != nil || o.Word(1) == "0" {
				return "", kaErr(file, o.Line, "connect_port: %q is not a port", o.Word(1))
			}
			port = o.Word(1)
		case "bindto":
			a, err := netip.ParseAddr(o.Word(1))
			if err != nil {
				return "", kaErr(file, o.Line, "bindto: %q is not an IP address", o.Word(1))
			}
			source = a.String()
		case "virtualhost":
			host = o.Word(1)
		case "sni_name":
			sni = o.Word(1)
		case "enable_sni", "tls_compliant", "http_protocol", "fast_recovery", "warmup", "log_all_failures", "alpha":
			notes = append(notes, kw)
		case "misc_path":
			misc = o
		case "misc_timeout":
			v, err := kaSeconds(file, o, time.Millisecond)
			if err != nil {
				return "", err
			}
			miscTO = v
		case "misc_dynamic":
			dynamic = true
		case "user":
			miscUser = strings.Join(o.Args(), " ")
		default:
			d.Fail(file, o.Line, "%s: %s: not converted", kind, kw)
		}
	}
	t = t.over(own)
	// keepalived's defaults.
	interval, timeout, retry := Duration(60*time.Second), Duration(5*time.Second), 1
	delay := Duration(time.Second)
	if kind == "HTTP_GET" || kind == "SSL_GET" {
		delay = Duration(3 * time.Second)
	}
	if kind == "MISC_CHECK" {
		retry = 0
	}
	if t.delayLoop != nil {
		interval = *t.delayLoop
	}
	if t.connectTimeout != nil && kind != "MISC_CHECK" {
		timeout = *t.connectTimeout
	}
	if kind == "MISC_CHECK" {
		timeout = miscTO
		if timeout == 0 {
			timeout = interval // keepalived: misc_timeout defaults to delay_loop
		}
	}
	if t.delayBeforeRetry != nil {
		delay = *t.delayBeforeRetry
	}
	if t.retry != nil {
		retry = *t.retry
	}
	if port == "" && kind != "MISC_CHECK" {
		d.Fail(file, e.Line, "%s of real_server %s: no port (give the real server a port, or connect_port)", kind, rip)
		return "", nil
	}
	above := []string{fmt.Sprintf("real_server %s %s, %s (%s:%d)", rip, rport, kind, file, e.Line)}
	if len(rsNotes) > 0 {
		above = append(above, "IPVS settings of the real server ("+strings.Join(rsNotes, ", ")+") are not anycastd's.")
	}
	if len(notes) > 0 {
		above = append(above, strings.Join(notes, ", ")+": no anycastd equivalent, left out.")
	}
	var c *Table
	switch kind {
	case "TCP_CHECK":
		c = d.AddCheck("tcp-"+ip+"-"+port, above...)
		c.Set("type", "tcp", "TCP_CHECK")
		c.Set("address", net.JoinHostPort(ip, port), "")
	case "HTTP_GET", "SSL_GET":
		if len(urls) == 0 {
			d.Fail(file, e.Line, "%s of real_server %s has no url block", kind, rip)
			return "", nil
		}
		if len(urls) > 1 {
			d.Fail(file, urls[1].Line, "%s of real_server %s: a second url: keepalived required every url to pass; only the first is converted", kind, rip)
		}
		scheme := "http"
		if kind == "SSL_GET" {
			scheme = "https"
		}
		c = d.AddCheck(scheme+"-"+ip+"-"+port, above...)
		if err := k.httpURL(file, c, urls[0], scheme, ip, port, host); err != nil {
			return "", err
		}
		if source != "" {
			c.Set("source_address", source, "bindto")
		}
		if kind == "SSL_GET" {
			if sni != "" {
				c.Set("tls_server_name", sni, "sni_name")
			}
			c.Set("insecure_skip_verify", true, "keepalived's SSL_GET does not verify the certificate")
		}
	case "MISC_CHECK":
		if misc == nil {
			d.Fail(file, e.Line, "MISC_CHECK of real_server %s has no misc_path", rip)
			return "", nil
		}
		argv, shell, extra, err := kaCommand(file, misc)
		if err != nil {
			return "", err
		}
		p, more := kaProbe(argv, shell)
		above = append(above, more...)
		if len(extra) > 0 {
			above = append(above, fmt.Sprintf("keepalived ran only the first word after misc_path; the rest (%s) was ignored, and is here too.", strings.Join(extra, " ")))
		}
		if dynamic {
			above = append(above, "misc_dynamic: the exit code set the real server's IPVS weight; here exit 0 passes and any other code fails.")
		}
		if miscUser != "" {
			above = append(above, fmt.Sprintf("user %s: anycastd runs exec checks as its own user.", miscUser))
		}
		c = d.AddCheck("misc-"+ip+"-"+port, above...)
		setProbe(c, p)
	}
	k.checkerTiming(c, kind, t, miscTO != 0, interval, timeout, delay, retry)
	return Name(c), nil
}

// checkerTiming writes a real-server check's interval, fast_interval,
// timeout, rise and fall. miscTimeout is whether a MISC_CHECK gave
// misc_timeout (else timeout is keepalived's default, delay_loop).
func (k *keepalived) checkerTiming(c *Table, kind string, t kaTiming, miscTimeout bool, interval, timeout, delay Duration, retry int) {
	src := func(given bool, kw string, v Duration) string {
		if given {
			return fmt.Sprintf("%s %s", kw, secondsText(v))
		}
		return fmt.Sprintf("keepalived's default %s %s", kw, secondsText(v))
	}
	tname := src(t.connectTimeout != nil && kind != "MISC_CHECK", "connect_timeout", timeout)
	if kind == "MISC_CHECK" {
		tname = "misc_timeout " + secondsText(timeout)
		if !miscTimeout {
			tname = "keepalived's default misc_timeout = delay_loop"
		}
	}
	// keepalived waits delay_before_retry after a failed try ends, and a
	// try may take connect_timeout: the next try starts up to
	// timeout + delay after the last one started.
	fast, fastWhy := delay, src(t.delayBeforeRetry != nil, "delay_before_retry", delay)
	if timeout >= delay {
		fast = timeout + delay
		fastWhy = fmt.Sprintf("%s after a try of up to %ss", fastWhy, secondsText(timeout))
	}
	if retry == 0 {
		fast = 0 // no retry: nothing pending between checks
	}
	if fast > interval {
		fast = interval
	}
	fitTiming(c, interval, fast, timeout, tname)
	c.Note("interval", src(t.delayLoop != nil, "delay_loop", interval))
	if f, ok := c.Get("fast_interval"); ok && f == fast {
		c.Note("fast_interval", "between retries: "+fastWhy)
	}
	if v, ok := c.Get("timeout"); ok && v == timeout {
		c.Note("timeout", tname)
	}
	c.Set("rise", 1, "keepalived puts a real server back after one pass")
	retryName := "retry"
	if t.retry == nil {
		retryName = "keepalived's default retry"
	}
	c.Set("fall", retry+1, fmt.Sprintf("%s %d: down after 1 + %d failed tries", retryName, retry, retry))
}

// httpURL sets an http(s) check's url, expect_status and host from a url
// block.
func (k *keepalived) httpURL(file string, c *Table, u *Stmt, scheme, ip, port, host string) error {
	d := k.d
	pth, status := "", []string(nil)
	for _, o := range u.Block {
		switch kw := o.Word(0); kw {
		case "path":
			if len(o.Words) != 2 {
				return kaErr(file, o.Line, "path: want one path")
			}
			pth = o.Word(1)
		case "status_code":
			for _, w := range o.Args() {
				lo, hi, rng := strings.Cut(w, "-")
				if _, err := count(lo, 599); err != nil || (rng && func() bool { _, err := count(hi, 599); return err != nil }()) {
					return kaErr(file, o.Line, "status_code: %q is not a status or a range", w)
				}
				status = append(status, w)
			}
			if len(status) == 0 {
				return kaErr(file, o.Line, "status_code: want a status or a range")
			}
		case "digest":
			c.Above = append(c.Above, fmt.Sprintf("digest %s: the MD5 of the body is not checked here; expect_body or expect_body_regex check the body.", o.Word(1)))
			d.Fail(file, o.Line, "url: digest %s: keepalived failed the real server when the MD5 of its body changed; the converted check passes on the status alone (expect_status); add expect_body or expect_body_regex by hand, with a string the healthy page contains", o.Word(1))
		case "virtualhost":
			host = o.Word(1)
		case "regex", "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			d.Fail(file, o.Line, "url: %s: keepalived's PCRE2 body match is not converted; expect_body_regex (RE2 syntax) may replace it", kw)
		case "tls_compliant":
		default:
			d.Fail(file, o.Line, "url: %s: unknown keyword, not converted", kw)
		}
	}
	if pth == "" {
		return kaErr(file, u.Line, "url: no path")
	}
	if !strings.HasPrefix(pth, "/") {
		pth = "/" + pth
	}
	c.Set("type", scheme, strings.Replace(strings.Replace(scheme, "https", "SSL_GET", 1), "http", "HTTP_GET", 1))
	c.Set("url", scheme+"://"+net.JoinHostPort(ip, port)+pth, "the real server, connect_port, path")
	if status == nil {
		c.Set("expect_status", []string{"200-299"}, "keepalived's default status_code")
	} else {
		c.Set("expect_status", status, "status_code")
	}
	if host != "" {
		c.Set("host", host, "virtualhost")
	}
	return nil
}
