package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// checkKeys lists the keys that only apply to one type of check.
var checkKeys = []struct {
	typ  CheckType
	keys []string
}{
	{CheckTCP, []string{"address"}},
	{CheckHTTP, []string{"url", "method", "expect_status"}},
	{CheckExec, []string{"command"}},
}

// validName reports whether s is a valid check or VIP name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// name validates the name of a check or VIP (kind), renames the scope after
// it and records it in seen (name → line). ok is false only if the name is
// missing or invalid: a duplicate is reported but still names the table.
func (s *scope) name(kind string, v any, seen map[string]int) (string, bool) {
	if v == nil {
		s.missing("name")
		return "", false
	}
	x, ok := s.str("name", v)
	if !ok {
		return "", false
	}
	if !validName(x) {
		s.keyErr("name", "%q must only contain letters, digits, '_', '.' and '-'", x)
		return "", false
	}
	s.path = fmt.Sprintf("%s %q", kind, x)
	if l, dup := seen[x]; dup {
		s.keyErr("name", "%q is already used by %s", x, seenAt(kind, l))
	} else {
		seen[x] = s.hdr.line
	}
	return x, true
}

// checks validates the [[check]] tables. It also returns the names of all
// checks (name → line), even of those with problems, so that VIPs that use
// them do not get more.
func (c *collector) checks(rs []*rawCheck) ([]Check, map[string]int) {
	var out []Check
	names := map[string]int{}
	for i, r := range rs {
		s := scope{c: c, path: fmt.Sprintf("check[%d]", i+1), key: r.Pos.Key, hdr: r.Pos.At}
		ch := Check{Line: r.Pos.At.line}
		ch.Name, _ = s.name("check", r.Name, names)
		typeOK := false
		if r.Type == nil {
			s.missing("type")
		} else if x, ok := s.str("type", r.Type); ok {
			switch t := CheckType(x); t {
			case CheckTCP, CheckHTTP, CheckExec:
				ch.Type, typeOK = t, true
			default:
				s.at("type", "type %q is not one of tcp, http, exec", x)
			}
		}

		ch.Interval = DefaultCheckInterval
		intervalOK := true
		if r.Interval != nil {
			d, ok := s.duration("interval", r.Interval)
			if ok && d < minCheckInterval {
				s.keyErr("interval", "%s is below the minimum of %s", d, minCheckInterval)
				ok = false
			}
			ch.Interval, intervalOK = d, ok
		}
		if r.Timeout == nil {
			ch.Timeout = min(ch.Interval/2, DefaultCheckTimeoutMax)
		} else if d, ok := s.duration("timeout", r.Timeout); ok {
			switch {
			case d <= 0:
				s.keyErr("timeout", "must be positive, got %s", d)
			case intervalOK && d >= ch.Interval:
				s.at("timeout", "timeout %s must be below interval %s", d, ch.Interval)
			}
			ch.Timeout = d
		}
		ch.Rise, ch.Fall = DefaultCheckRise, DefaultCheckFall
		if x, ok := s.integer("rise", r.Rise, 1, maxRiseFall); ok {
			ch.Rise = int(x)
		}
		if x, ok := s.integer("fall", r.Fall, 1, maxRiseFall); ok {
			ch.Fall = int(x)
		}

		if typeOK {
			set := map[string]bool{
				"address":       r.Address != nil,
				"url":           r.URL != nil,
				"method":        r.Method != nil,
				"expect_status": r.ExpectStatus != nil,
				"command":       r.Command != nil,
			}
			for _, ck := range checkKeys {
				for _, k := range ck.keys {
					if ck.typ != ch.Type && set[k] {
						s.at(k, "key %q does not apply to type %q", k, ch.Type)
					}
				}
			}
			switch ch.Type {
			case CheckTCP:
				ch.TCP = s.tcpCheck(r)
			case CheckHTTP:
				ch.HTTP = s.httpCheck(r)
			case CheckExec:
				ch.Exec = s.execCheck(r)
			}
		}
		out = append(out, ch)
	}
	return out, names
}

func (s scope) tcpCheck(r *rawCheck) *TCPCheck {
	t := &TCPCheck{}
	if r.Address == nil {
		s.missing("address")
	} else if x, ok := s.str("address", r.Address); ok {
		if !validHostPort(x, false) {
			s.keyErr("address", "%q must be host:port with a port in 1..65535", x)
		}
		t.Address = x
	}
	return t
}

func (s scope) httpCheck(r *rawCheck) *HTTPCheck {
	h := &HTTPCheck{Method: DefaultHTTPMethod, ExpectStatus: []StatusRange{{200, 299}}}
	if r.URL == nil {
		s.missing("url")
	} else if x, ok := s.str("url", r.URL); ok {
		u, err := url.Parse(x)
		switch {
		case err != nil:
			s.keyErr("url", "%q is not a valid URL", x)
		case u.Scheme != "http" && u.Scheme != "https":
			s.keyErr("url", "%q must use http or https", x)
		case u.Hostname() == "":
			s.keyErr("url", "%q has no host", x)
		}
		h.URL = x
	}
	if x, ok := s.str("method", r.Method); ok {
		if !validMethod(x) {
			s.keyErr("method", "%q is not an uppercase HTTP method such as GET", x)
		}
		h.Method = x
	}
	if elems, ok := s.list("expect_status", "an array of status codes or ranges", r.ExpectStatus); ok {
		if len(elems) == 0 {
			s.keyErr("expect_status", "must not be empty")
		}
		h.ExpectStatus = nil
		for i, e := range elems {
			switch e := e.(type) {
			case int64:
				if e < 100 || e > 599 {
					s.elemErr("expect_status", i, "%d is not a status code in 100..599", e)
					continue
				}
				h.ExpectStatus = append(h.ExpectStatus, StatusRange{int(e), int(e)})
			case string:
				sr, ok := parseStatusRange(e)
				switch {
				case !ok:
					s.elemErr("expect_status", i, `%q is not a status code or range such as "200-299" in 100..599`, e)
				case sr.Min > sr.Max:
					s.elemErr("expect_status", i, "%q is not a range: %d is above %d", e, sr.Min, sr.Max)
				default:
					h.ExpectStatus = append(h.ExpectStatus, sr)
				}
			default:
				s.elemErr("expect_status", i, "element %d: expected a status code or range, got %s", i+1, describe(e))
			}
		}
	}
	return h
}

// parseStatusRange parses "200-299" or "204", codes in 100..599.
func parseStatusRange(s string) (StatusRange, bool) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, ok1 := statusCode(lo)
	b, ok2 := statusCode(hi)
	return StatusRange{a, b}, ok1 && ok2
}

func statusCode(s string) (int, bool) {
	if len(s) != 3 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, _ := strconv.Atoi(s)
	return n, n >= 100 && n <= 599
}

// validMethod reports whether m is an HTTP token without lowercase letters.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func (s scope) execCheck(r *rawCheck) *ExecCheck {
	e := &ExecCheck{}
	if r.Command == nil {
		s.missing("command")
	} else if xs, ok := s.strings("command", r.Command); ok {
		argv := make([]string, len(xs))
		for i, x := range xs {
			argv[i] = x.s
		}
		switch {
		case len(argv) == 0:
			s.keyErr("command", "must not be empty")
		case argv[0] == "":
			s.keyErr("command", "the program (first element) must not be empty")
		}
		e.Command = argv
	}
	return e
}
