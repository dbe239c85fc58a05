package config

import (
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Defaults and limits of http checks.
const (
	DefaultHTTPMaxBodyBytes = 64 << 10
	maxHTTPMaxBodyBytes     = 64 << 20
)

func (s scope) httpCheck(r *rawCheck, typ CheckType) *HTTPCheck {
	h := &HTTPCheck{Method: DefaultHTTPMethod, ExpectStatus: []StatusRange{{200, 299}}, MaxBodyBytes: DefaultHTTPMaxBodyBytes}
	scheme, host := "", "" // of a valid url
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
		case typ == CheckHTTPS && u.Scheme != "https":
			s.keyErr("url", "%q must use https for type %q", x, typ)
		default:
			scheme, host = u.Scheme, u.Hostname()
			h.ParsedURL = u
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
		h.ExpectStatus = s.statusRanges(elems)
	}
	if x, ok := s.str("expect_body", r.ExpectBody); ok {
		if x == "" {
			s.keyErr("expect_body", "must not be empty")
		}
		h.ExpectBody = x
	}
	if x, ok := s.str("expect_body_regex", r.ExpectBodyRegex); ok {
		re, err := regexp.Compile(x)
		if err != nil {
			s.keyErr("expect_body_regex", "%q is not a valid regular expression: %v", x, err)
		} else if x == "" {
			s.keyErr("expect_body_regex", "must not be empty")
		}
		h.ExpectBodyRegex = re
	}
	if x, ok := s.str("host", r.Host); ok {
		if x == "" || strings.ContainsFunc(x, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
			s.keyErr("host", "%q is not a valid host", x)
		}
		h.Host = x
	}
	h.Headers = s.headers(r.Headers)
	h.FollowRedirects, _ = s.boolean("follow_redirects", r.FollowRedirects)
	h.SourceAddress, _ = s.addr("source_address", r.SourceAddress)
	s.sameFamily(h.SourceAddress, host, "url host")
	if x, ok := s.integer("max_body_bytes", r.MaxBodyBytes, 1, maxHTTPMaxBodyBytes); ok {
		h.MaxBodyBytes = x
	}
	// TLS keys need an https url, or a redirect that may lead to one.
	h.TLS = s.tlsClient(r, scheme != "http" || h.FollowRedirects, "an https url")
	return h
}

// statusRanges validates the elements of expect_status.
func (s scope) statusRanges(elems []any) []StatusRange {
	if len(elems) == 0 {
		s.keyErr("expect_status", "must not be empty")
	}
	var out []StatusRange
	for i, e := range elems {
		switch e := e.(type) {
		case int64:
			if e < 100 || e > 599 {
				s.elemErr("expect_status", i, "%d is not a status code in 100..599", e)
				continue
			}
			out = append(out, StatusRange{int(e), int(e)})
		case string:
			sr, ok := parseStatusRange(e)
			switch {
			case !ok:
				s.elemErr("expect_status", i, `%q is not a status code or range such as "200-299" in 100..599`, e)
			case sr.Min > sr.Max:
				s.elemErr("expect_status", i, "%q is not a range: %d is above %d", e, sr.Min, sr.Max)
			default:
				out = append(out, sr)
			}
		default:
			s.elemErr("expect_status", i, "element %d: expected a status code or range, got %s", i+1, describe(e))
		}
	}
	return out
}

// headers validates the headers table: names are HTTP tokens (stored in
// canonical form), values strings without line breaks. Host has its own key.
func (s scope) headers(v any) map[string]string {
	orig := map[string]string{} // canonical name → name as written
	return s.stringTable("headers", v, func(k, val string) (string, bool) {
		canon := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !validToken(k):
			s.keyErr("headers", "%q is not a valid header name", k)
		case canon == "Host":
			s.keyErr("headers", "%q: set the host key instead", k)
		case strings.ContainsAny(val, "\r\n\x00"):
			s.keyErr("headers", "%q: the value must not contain line breaks or NUL", k)
		case orig[canon] != "":
			s.keyErr("headers", "%q and %q are the same header", orig[canon], k)
		default:
			orig[canon] = k
			return canon, true
		}
		return "", false
	})
}

// stringTable returns the table in key, whose values must be strings. Each
// entry, in key order, goes through check, which returns the key to store it
// under, or false to leave it out (after reporting why). Values of another
// type are reported and left out. The result is nil if key is not set.
func (s scope) stringTable(key string, v any, check func(k, val string) (string, bool)) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		s.typeErr(key, "a table of strings", v)
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(m))
	for _, k := range keys {
		x, isStr := m[k].(string)
		if !isStr {
			s.keyErr(key, "%q: expected a string, got %s", k, describe(m[k]))
			continue
		}
		if name, ok := check(k, x); ok {
			out[name] = x
		}
	}
	return out
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
	return validToken(m) && strings.ToUpper(m) == m
}

// validToken reports whether t is an HTTP token (RFC 9110).
func validToken(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
