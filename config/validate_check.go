package config

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
)

// checkTypes lists the check types in the order messages name them.
var checkTypes = []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckDNS, CheckGRPC, CheckExec,
	CheckProcess, CheckListen, CheckTTL}

// checkKeyTypes maps each type-specific key of a [[check]] to the types it
// applies to. Setting it for another type is an error. Every key of rawCheck
// except the common ones (name, type, interval, fast_interval, timeout, rise,
// fall) must be listed here.
var checkKeyTypes = map[string][]CheckType{
	"address":              {CheckTCP, CheckGRPC, CheckListen},
	"send":                 {CheckTCP},
	"expect":               {CheckTCP},
	"tls":                  {CheckTCP, CheckGRPC},
	"source_address":       {CheckTCP, CheckHTTP, CheckHTTPS},
	"tls_server_name":      {CheckTCP, CheckHTTP, CheckHTTPS, CheckGRPC},
	"ca_file":              {CheckTCP, CheckHTTP, CheckHTTPS, CheckGRPC},
	"cert_file":            {CheckTCP, CheckHTTP, CheckHTTPS, CheckGRPC},
	"key_file":             {CheckTCP, CheckHTTP, CheckHTTPS, CheckGRPC},
	"insecure_skip_verify": {CheckTCP, CheckHTTP, CheckHTTPS, CheckGRPC},
	"url":                  {CheckHTTP, CheckHTTPS},
	"method":               {CheckHTTP, CheckHTTPS},
	"expect_status":        {CheckHTTP, CheckHTTPS},
	"expect_body":          {CheckHTTP, CheckHTTPS},
	"expect_body_regex":    {CheckHTTP, CheckHTTPS},
	"host":                 {CheckHTTP, CheckHTTPS},
	"headers":              {CheckHTTP, CheckHTTPS},
	"follow_redirects":     {CheckHTTP, CheckHTTPS},
	"max_body_bytes":       {CheckHTTP, CheckHTTPS},
	"server":               {CheckDNS},
	"protocol":             {CheckDNS, CheckListen},
	"query_name":           {CheckDNS},
	"query_type":           {CheckDNS},
	"expect_rcode":         {CheckDNS},
	"expect_answer":        {CheckDNS},
	"service":              {CheckGRPC},
	"command":              {CheckExec},
	"shell":                {CheckExec},
	"env":                  {CheckExec},
	"dir":                  {CheckExec},
	"pid_file":             {CheckProcess},
	"unit":                 {CheckProcess},
	"ttl":                  {CheckTTL},
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
		s := scope{c: c, path: fmt.Sprintf("check[%d]", i+1), node: r.Pos.Node, hdr: r.Pos.At}
		ch := Check{Line: r.Pos.At.line}
		ch.Name, _ = s.name("check", r.Name, names)
		typeOK := false
		if r.Type == nil {
			s.missing("type")
		} else if x, ok := s.str("type", r.Type); ok {
			if slices.Contains(checkTypes, CheckType(x)) {
				ch.Type, typeOK = CheckType(x), true
			} else {
				names := make([]string, len(checkTypes))
				for i, t := range checkTypes {
					names[i] = string(t)
				}
				s.at("type", "type %q is not one of %s", x, strings.Join(names, ", "))
			}
		}
		s.timing(r, &ch)

		if typeOK {
			for _, k := range setCheckKeys(r) {
				if !slices.Contains(checkKeyTypes[k], ch.Type) {
					s.at(k, "key %q does not apply to type %q", k, ch.Type)
				}
			}
			switch ch.Type {
			case CheckTCP:
				ch.TCP = s.tcpCheck(r)
			case CheckHTTP, CheckHTTPS:
				ch.HTTP = s.httpCheck(r, ch.Type)
			case CheckDNS:
				ch.DNS = s.dnsCheck(r)
			case CheckGRPC:
				ch.GRPC = s.grpcCheck(r)
			case CheckExec:
				ch.Exec = s.execCheck(r)
			case CheckProcess:
				ch.Process = s.processCheck(r)
			case CheckListen:
				ch.Listen = s.listenCheck(r)
			case CheckTTL:
				ch.TTL = s.ttlCheck(r)
			}
		}
		out = append(out, ch)
	}
	return out, names
}

// timing validates interval, fast_interval, timeout, rise and fall.
func (s scope) timing(r *rawCheck, ch *Check) {
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
	ch.FastInterval = ch.Interval
	fastOK := intervalOK
	if r.FastInterval != nil {
		d, ok := s.duration("fast_interval", r.FastInterval)
		switch {
		case !ok:
		case d < minCheckInterval:
			s.keyErr("fast_interval", "%s is below the minimum of %s", d, minCheckInterval)
			ok = false
		case intervalOK && d > ch.Interval:
			s.at("fast_interval", "fast_interval %s must not be above interval %s", d, ch.Interval)
			ok = false
		}
		ch.FastInterval, fastOK = d, ok
	}
	if r.Timeout == nil {
		ch.Timeout = min(ch.FastInterval/2, DefaultCheckTimeoutMax)
	} else if d, ok := s.duration("timeout", r.Timeout); ok {
		switch {
		case d <= 0:
			s.keyErr("timeout", "must be positive, got %s", d)
		case fastOK && d >= ch.FastInterval && r.FastInterval != nil:
			s.at("timeout", "timeout %s must be below fast_interval %s", d, ch.FastInterval)
		case fastOK && d >= ch.FastInterval:
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
}

// setCheckKeys returns the type-specific keys set in r, in field order.
func setCheckKeys(r *rawCheck) []string {
	var keys []string
	v := reflect.ValueOf(r).Elem()
	for i, tag := range rawFields(v.Type()).tags {
		if _, specific := checkKeyTypes[tag]; specific && !v.Field(i).IsNil() {
			keys = append(keys, tag)
		}
	}
	return keys
}

func (s scope) tcpCheck(r *rawCheck) *TCPCheck {
	t := &TCPCheck{}
	t.Address = s.hostPort("address", r.Address)
	if x, ok := s.str("send", r.Send); ok {
		if x == "" {
			s.keyErr("send", "must not be empty")
		}
		t.Send = x
	}
	if x, ok := s.str("expect", r.Expect); ok {
		if x == "" {
			s.keyErr("expect", "must not be empty")
		}
		t.Expect = x
	}
	t.SourceAddress, _ = s.addr("source_address", r.SourceAddress)
	if host, _, err := net.SplitHostPort(t.Address); err == nil {
		s.sameFamily(t.SourceAddress, host, "address")
	}
	t.TLS = s.connTLS(r, t.Address)
	return t
}

func (s scope) grpcCheck(r *rawCheck) *GRPCCheck {
	g := &GRPCCheck{}
	g.Address = s.hostPort("address", r.Address)
	g.Service, _ = s.str("service", r.Service)
	g.TLS = s.connTLS(r, g.Address)
	return g
}

// connTLS returns the TLS settings of a tcp or grpc check that connects to
// address (nil: plaintext). The server name defaults to the host of address.
func (s scope) connTLS(r *rawCheck, address string) *TLSClient {
	useTLS, _ := s.boolean("tls", r.TLS)
	t := s.tlsClient(r, useTLS, "tls = true")
	if !useTLS {
		return nil
	}
	if t == nil {
		t = &TLSClient{}
	}
	if host, _, err := net.SplitHostPort(address); err == nil && t.ServerName == "" {
		t.ServerName = host
	}
	return t
}

// sameFamily reports a source address whose family differs from that of
// host, the IP address (or name) the check connects to, given in key.
func (s scope) sameFamily(src netip.Addr, host, key string) {
	dst, err := netip.ParseAddr(host)
	if !src.IsValid() || err != nil || src.Unmap().Is4() == dst.Unmap().Is4() {
		return
	}
	s.keyErr("source_address", "%s is %s but %s %s is %s", src, familyName(src.Unmap()), key, dst, familyName(dst.Unmap()))
}

// hostPort returns the required host:port in key.
func (s scope) hostPort(key string, v any) string {
	if v == nil {
		s.missing(key)
		return ""
	}
	x, ok := s.str(key, v)
	if ok && !validHostPort(x, false) {
		s.keyErr(key, "%q must be host:port with a port in 1..65535", x)
	}
	return x
}
