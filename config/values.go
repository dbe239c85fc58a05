package config

import (
	"net/netip"
	"strings"
	"time"
)

// The helpers below convert one raw value. A nil value means the key is not
// set (TOML has no null); they then return ok == false without a problem, so
// callers apply defaults or report the key as missing. A value of the wrong
// type or out of range is reported, and ok is false too.

func (s scope) typeErr(key, want string, v any) {
	s.keyErr(key, "expected %s, got %s", want, describe(v))
}

func (s scope) str(key string, v any) (string, bool) {
	if v == nil {
		return "", false
	}
	x, ok := v.(string)
	if !ok {
		s.typeErr(key, "a string", v)
	}
	return x, ok
}

func (s scope) boolean(key string, v any) (bool, bool) {
	if v == nil {
		return false, false
	}
	x, ok := v.(bool)
	if !ok {
		s.typeErr(key, "a boolean", v)
	}
	return x, ok
}

// integer returns v if it is an integer in min..max.
func (s scope) integer(key string, v any, min, max int64) (int64, bool) {
	if v == nil {
		return 0, false
	}
	x, ok := v.(int64)
	if !ok {
		s.typeErr(key, "an integer", v)
		return 0, false
	}
	if x < min || x > max {
		s.keyErr(key, "%d is out of range %d..%d", x, min, max)
		return 0, false
	}
	return x, true
}

// asn returns v if it is a usable 4-byte AS number.
func (s scope) asn(key string, v any) (uint32, bool) {
	x, ok := s.integer(key, v, 1, 1<<32-1)
	if ok && x == 23456 {
		s.keyErr(key, "23456 is AS_TRANS (RFC 6793) and cannot be used")
		return 0, false
	}
	return uint32(x), ok
}

// duration returns v parsed as a Go duration string ("1s", "500ms").
func (s scope) duration(key string, v any) (time.Duration, bool) {
	x, ok := s.str(key, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(x)
	if err != nil {
		s.keyErr(key, "invalid duration %q", x)
		return 0, false
	}
	return d, true
}

// list returns the elements of the array v.
func (s scope) list(key, want string, v any) ([]any, bool) {
	if v == nil {
		return nil, false
	}
	x, ok := v.([]any)
	if !ok {
		s.typeErr(key, want, v)
	}
	return x, ok
}

// strElem is a string element of an array, with its 0-based index.
type strElem struct {
	i int
	s string
}

// strings returns the string elements of the array v. Elements of another
// type are reported and left out; ok is false then, or if v is not an array,
// but the string elements are still returned to be validated.
func (s scope) strings(key string, v any) ([]strElem, bool) {
	elems, ok := s.list(key, "an array of strings", v)
	if !ok {
		return nil, false
	}
	out := make([]strElem, 0, len(elems))
	for i, e := range elems {
		x, isStr := e.(string)
		if !isStr {
			s.elemErr(key, i, "element %d: expected a string, got %s", i+1, describe(e))
			ok = false
			continue
		}
		out = append(out, strElem{i, x})
	}
	return out, ok
}

// addr returns v parsed as an IP address.
func (s scope) addr(key string, v any) (netip.Addr, bool) {
	x, ok := s.str(key, v)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(x)
	if err != nil {
		s.keyErr(key, "%q is not an IP address", x)
		return netip.Addr{}, false
	}
	return a, true
}

// oneOf returns v if it is one of the strings in allowed.
func (s scope) oneOf(key string, v any, allowed ...string) (string, bool) {
	x, ok := s.str(key, v)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if x == a {
			return x, true
		}
	}
	s.keyErr(key, "%q is not one of %s", x, strings.Join(allowed, ", "))
	return "", false
}
