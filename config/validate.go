package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults applied when a key is not set. The keepalive interval defaults
// to a third of the hold time (whole seconds), a check's timeout to half its
// interval, at most DefaultCheckTimeoutMax.
const (
	DefaultListenPort   = 179
	DefaultPeerPort     = 179
	DefaultHoldTime     = 9 * time.Second
	DefaultConnectRetry = 5 * time.Second
	// DefaultMaxReceivedPrefixes: a router that sends more than a handful
	// of routes to anycastd is misconfigured; 1000 per family costs at most
	// about 1 MB.
	DefaultMaxReceivedPrefixes = 1000
	DefaultMaxReceivedRestart  = 5 * time.Minute
	DefaultInterfaceName       = "lo"
	DefaultStateDir            = "/run/anycastd"
	DefaultAPIListen           = "unix:///run/anycastd/api.sock"
	DefaultMetricsListen       = "127.0.0.1:9479"
	DefaultLogFormat           = "text"
	DefaultLogLevel            = "info"
	DefaultCheckInterval       = time.Second
	DefaultCheckTimeoutMax     = time.Second
	DefaultCheckRise           = 3
	DefaultCheckFall           = 3
	DefaultHTTPMethod          = "GET"
	// DefaultGracefulRestartTime is the Restart Time advertised with
	// graceful_restart (RFC 4724 §3): long enough for a planned restart,
	// including the checks' first decisions.
	DefaultGracefulRestartTime = 120 * time.Second
	// MaxGracefulRestartTime: the Restart Time is a 12-bit field of seconds
	// (RFC 4724 §3).
	MaxGracefulRestartTime = 4095 * time.Second
)

// Limits.
const (
	minHoldTime             = 3 * time.Second     // RFC 4271 (0 is not supported)
	maxHoldTime             = 65535 * time.Second // 16-bit field
	minCheckInterval        = 10 * time.Millisecond
	maxTCPMD5PasswordLength = 80 // TCP_MD5SIG_MAXKEYLEN
	maxPrepend              = 10
	maxRiseFall             = 100
	maxUint32               = 1<<32 - 1
	unixListenPrefix        = "unix://"
)

// build validates raw into a Config, applying defaults. Problems go to c;
// the result is only meaningful if there are none.
func (c *collector) build(r *rawFile) *Config {
	cfg := &Config{}
	var fams carried
	cfg.BGP, fams = c.bgp(r.BGP)
	cfg.Interface = c.iface(r.Interface)
	cfg.API = c.api(r.API)
	cfg.Metrics = c.metrics(r.Metrics)
	cfg.Log = c.log(r.Log)
	cfg.Node = c.node(r.Node)
	var checks map[string]int
	cfg.Checks, checks = c.checks(r.Checks)
	cfg.Fleet = c.fleet(r.Fleet)
	cfg.VIPs = c.vips(r.VIPs, checks, fams, cfg.BGP.Peers)
	c.minSites(r.VIPs, cfg)
	return cfg
}

// carried is the set of families carried by the peers; known is false when
// a peer's families could not be worked out.
type carried struct {
	known bool
	fams  map[Family]bool
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// familyName is the name of a family in messages: "IPv4", "IPv6".
func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// seenAt describes where a duplicated value was first seen.
func seenAt(kind string, line int) string {
	if line > 0 {
		return fmt.Sprintf("the %s on line %d", kind, line)
	}
	return "another " + kind
}

func (c *collector) bgp(r *rawBGP) (BGP, carried) {
	if r == nil {
		if !c.failed["bgp"] {
			c.add("bgp", position{}, "table is required")
		}
		return BGP{}, carried{}
	}
	s := scope{c: c, path: "bgp", node: r.Pos.Node, hdr: r.Pos.At}
	var b BGP
	if r.ASN == nil {
		s.missing("asn")
	} else {
		b.ASN, _ = s.asn("asn", r.ASN)
	}
	if r.RouterID == nil {
		s.missing("router_id")
	} else if x, ok := s.str("router_id", r.RouterID); ok {
		a, err := netip.ParseAddr(x)
		switch {
		case err != nil || !a.Is4():
			s.keyErr("router_id", "%q is not an IPv4 address", x)
		case a.IsUnspecified():
			s.keyErr("router_id", "%s is not a valid router ID", x)
		default:
			b.RouterID = a
		}
	}
	b.ListenPort = DefaultListenPort
	if x, ok := s.integer("listen_port", r.ListenPort, 0, 65535); ok {
		b.ListenPort = int(x)
	}
	xs, _ := s.strings("listen_addresses", r.ListenAddresses)
	seen := map[netip.Addr]bool{}
	for _, e := range xs {
		i, x := e.i, e.s
		a, err := netip.ParseAddr(x)
		switch {
		case err != nil:
			s.elemErr("listen_addresses", i, "%q is not an IP address", x)
		case seen[a]:
			s.elemErr("listen_addresses", i, "%q is listed twice", x)
		default:
			seen[a] = true
			b.ListenAddresses = append(b.ListenAddresses, a)
		}
	}
	b.GracefulRestart, _ = s.boolean("graceful_restart", r.GracefulRestart)
	b.GracefulRestartTime = DefaultGracefulRestartTime
	if d, ok := s.seconds("graceful_restart_time", r.GracefulRestartTime); ok {
		if d < time.Second || d > MaxGracefulRestartTime {
			s.keyErr("graceful_restart_time", "%s is out of range 1s..%s (RFC 4724 §3: 12 bits of seconds)", secs(d), secs(MaxGracefulRestartTime))
		} else {
			b.GracefulRestartTime = d
		}
	}

	if r.Peers == nil && !c.failed["bgp.peer"] {
		s.at("", "at least one [[bgp.peer]] is required")
	}
	fams := carried{known: len(r.Peers) > 0, fams: map[Family]bool{}}
	first := map[netip.Addr]int{}
	for i, rp := range r.Peers {
		p, famsOK := c.peer(i, rp, first)
		fams.known = fams.known && famsOK
		for _, f := range p.Families {
			fams.fams[f] = true
		}
		b.Peers = append(b.Peers, p)
	}
	return b, fams
}

// secs formats a whole number of seconds as BGP timers are usually written:
// "90s" rather than "1m30s".
func secs(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// seconds returns v as a duration that is a whole number of seconds.
func (s scope) seconds(key string, v any) (time.Duration, bool) {
	d, ok := s.duration(key, v)
	if ok && d%time.Second != 0 {
		s.keyErr(key, "%s is not a whole number of seconds", d)
		return 0, false
	}
	return d, ok
}

// peer validates the i-th (0-based) [[bgp.peer]]. first maps the addresses
// seen so far to their lines. famsOK reports whether Families is known.
func (c *collector) peer(i int, r *rawPeer, first map[netip.Addr]int) (p Peer, famsOK bool) {
	p = Peer{Line: r.Pos.At.line}
	s := scope{c: c, path: fmt.Sprintf("bgp.peer[%d]", i+1), node: r.Pos.Node, hdr: r.Pos.At}
	if x, ok := r.Address.(string); ok {
		if a, err := netip.ParseAddr(x); err == nil {
			s.path = fmt.Sprintf("bgp.peer %q", a.String())
		}
	}
	addrOK := false
	if r.Address == nil {
		s.missing("address")
	} else if a, ok := s.addr("address", r.Address); ok {
		switch l, dup := first[a]; {
		case notUnicast(a) != "":
			s.keyErr("address", "%s is %s, not a unicast address", a, notUnicast(a))
		case a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "":
			s.keyErr("address", "%s is link-local: add the interface it is on, e.g. \"%s%%eth0\"", a, a)
		case a.Is4In6():
			s.keyErr("address", "%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
		case dup:
			s.keyErr("address", "%s is already used by %s", a, seenAt("bgp.peer", l))
		default:
			first[a] = r.Pos.At.line
			p.Address, addrOK = a, true
		}
	}
	p.Port = DefaultPeerPort
	if x, ok := s.integer("port", r.Port, 1, 65535); ok {
		p.Port = uint16(x)
	}
	if r.ASN == nil {
		s.missing("asn")
	} else {
		p.ASN, _ = s.asn("asn", r.ASN)
	}
	p.Description, _ = s.str("description", r.Description)

	p.HoldTime = DefaultHoldTime
	holdOK := true
	if r.HoldTime != nil {
		d, ok := s.seconds("hold_time", r.HoldTime)
		switch {
		case !ok:
		case d < minHoldTime:
			s.keyErr("hold_time", "%s is below the minimum of %s", secs(d), secs(minHoldTime))
			ok = false
		case d > maxHoldTime:
			s.keyErr("hold_time", "%s is above the maximum of %s", secs(d), secs(maxHoldTime))
			ok = false
		}
		p.HoldTime, holdOK = d, ok
	}
	if r.KeepaliveInterval == nil {
		p.KeepaliveInterval = (p.HoldTime / 3).Truncate(time.Second)
	} else if d, ok := s.seconds("keepalive_interval", r.KeepaliveInterval); ok {
		switch {
		case d <= 0:
			s.keyErr("keepalive_interval", "must be positive, got %s", secs(d))
		case holdOK && d >= p.HoldTime:
			s.at("keepalive_interval", "keepalive_interval %s must be below hold_time %s", secs(d), secs(p.HoldTime))
		default:
			p.KeepaliveInterval = d
		}
	}
	p.ConnectRetry = DefaultConnectRetry
	if d, ok := s.seconds("connect_retry", r.ConnectRetry); ok {
		if d <= 0 {
			s.keyErr("connect_retry", "must be positive, got %s", secs(d))
		}
		p.ConnectRetry = d
	}
	if x, ok := s.str("password", r.Password); ok {
		if len(x) > maxTCPMD5PasswordLength {
			s.keyErr("password", "too long (%d bytes, the maximum is %d)", len(x), maxTCPMD5PasswordLength)
		}
		p.Password = x
	}
	if x, ok := s.integer("multihop_ttl", r.MultihopTTL, 0, 255); ok {
		p.MultihopTTL = uint8(x)
	}
	if x, ok := s.integer("ttl_security_hops", r.TTLSecurityHops, 0, 254); ok {
		p.TTLSecurityHops = uint8(x)
		if x > 0 && p.MultihopTTL > 0 {
			s.at("ttl_security_hops", "ttl_security_hops and multihop_ttl are mutually exclusive (GTSM sends with TTL 255): set one of them")
		}
	}
	p.Passive, _ = s.boolean("passive", r.Passive)
	if a, ok := s.addr("local_address", r.LocalAddress); ok {
		if addrOK && a.Is4() != p.Address.Is4() {
			s.keyErr("local_address", "%s is %s but address %s is %s", a, familyName(a), p.Address, familyName(p.Address))
		}
		p.LocalAddress = a
	}

	famsOK = true
	if r.Families == nil {
		if addrOK {
			p.Families = []Family{familyOf(p.Address)}
		} else {
			famsOK = false
		}
	} else {
		xs, ok := s.strings("families", r.Families)
		famsOK = ok
		if ok && len(xs) == 0 {
			s.keyErr("families", "must not be empty")
			famsOK = false
		}
		for _, e := range xs {
			j, x := e.i, e.s
			f := Family(x)
			switch {
			case f != FamilyIPv4 && f != FamilyIPv6:
				s.elemErr("families", j, "%q is not one of ipv4, ipv6", x)
				famsOK = false
			case p.HasFamily(f):
				s.elemErr("families", j, "%q is listed twice", x)
			default:
				p.Families = append(p.Families, f)
			}
		}
	}
	p.MaxReceivedPrefixes = DefaultMaxReceivedPrefixes
	if x, ok := s.integer("max_received_prefixes", r.MaxReceived, 0, math.MaxUint32); ok {
		p.MaxReceivedPrefixes = uint32(x)
	}
	p.MaxReceivedRestart = DefaultMaxReceivedRestart
	if d, ok := s.seconds("max_received_prefixes_restart", r.MaxReceivedRetry); ok {
		if d < 0 {
			s.keyErr("max_received_prefixes_restart", "must not be negative, got %s", secs(d))
		}
		p.MaxReceivedRestart = d
	}
	p.Communities = s.communities("communities", r.Communities)
	p.LargeCommunities = s.largeCommunities("large_communities", r.LargeCommunities)
	if r.BFD != nil {
		p.BFD = s.bfd(r.BFD)
	}
	if a, ok := s.addr("next_hop_ipv4", r.NextHopIPv4); ok {
		if !a.Is4() {
			s.keyErr("next_hop_ipv4", "%s is not an IPv4 address", a)
		} else if what := notUnicast(a); what != "" {
			s.keyErr("next_hop_ipv4", "%s is %s, not a usable next hop", a, what)
		}
		p.NextHopIPv4 = a
	}
	if a, ok := s.addr("next_hop_ipv6", r.NextHopIPv6); ok {
		if !a.Is6() || a.Is4In6() || a.Zone() != "" {
			s.keyErr("next_hop_ipv6", "%s is not an IPv6 address", a)
		} else if what := notUnicast(a); what != "" {
			s.keyErr("next_hop_ipv6", "%s is %s, not a usable next hop", a, what)
		}
		p.NextHopIPv6 = a
	}
	if addrOK {
		if p.Address.Is4() && p.HasFamily(FamilyIPv6) && r.NextHopIPv6 == nil {
			s.at("families", "next_hop_ipv6 is required to carry ipv6 over an IPv4 session")
		}
		// IPv4 over an IPv6 session needs no next_hop_ipv4: the session's
		// IPv6 address is the next hop (RFC 8950 extended next hop, which
		// the speaker offers for ipv4; a router that does not negotiate it
		// is reported when the session comes up).
	}
	return p, famsOK
}

func (c *collector) iface(r *rawInterface) Interface {
	i := Interface{Name: DefaultInterfaceName, Manage: true, StateDir: DefaultStateDir, Method: InterfaceMethodAddress}
	if r == nil {
		return i
	}
	s := scope{c: c, path: "interface", node: r.Pos.Node, hdr: r.Pos.At}
	if x, ok := s.str("name", r.Name); ok {
		if !validIfName(x) {
			s.keyErr("name", "%q is not a valid interface name (1..15 bytes, no '/', ':' or whitespace)", x)
		}
		i.Name = x
	}
	if x, ok := s.boolean("manage", r.Manage); ok {
		i.Manage = x
	}
	if x, ok := s.str("state_dir", r.StateDir); ok {
		if !strings.HasPrefix(x, "/") || strings.ContainsRune(x, 0) {
			s.keyErr("state_dir", "%q must be an absolute path", x)
		}
		i.StateDir = x
	}
	if x, ok := s.oneOf("method", r.Method, string(InterfaceMethodAddress), string(InterfaceMethodLocalRoute)); ok {
		i.Method = InterfaceMethod(x)
	}
	return i
}

// validIfName reports whether Linux accepts name as an interface name.
func validIfName(name string) bool {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool {
		return r == '/' || r == ':' || r <= ' ' || r == 0x7f || unicode.IsSpace(r)
	})
}

// metrics validates [metrics].
func (c *collector) metrics(r *rawMetrics) Metrics {
	if r == nil {
		return Metrics{Listen: DefaultMetricsListen}
	}
	m := Metrics{Listen: c.listen(&rawListen{Pos: r.Pos, Listen: r.Listen}, "metrics", DefaultMetricsListen, false)}
	s := scope{c: c, path: "metrics", node: r.Pos.Node, hdr: r.Pos.At}
	m.GoBGPCollector, _ = s.boolean("gobgp_collector", r.GoBGPCollector)
	m.CheckDurationHistogram, _ = s.boolean("check_duration_histogram", r.CheckDurationHistogram)
	return m
}

// listen validates [api] or [metrics]: unix:///path (if unix) or host:port.
// Empty disables the listener.
func (c *collector) listen(r *rawListen, name, def string, unix bool) string {
	if r == nil {
		return def
	}
	s := scope{c: c, path: name, node: r.Pos.Node, hdr: r.Pos.At}
	x, ok := s.str("listen", r.Listen)
	if !ok {
		return def
	}
	if x == "" {
		return ""
	}
	if unix && strings.HasPrefix(x, unixListenPrefix) {
		p := strings.TrimPrefix(x, unixListenPrefix)
		if len(p) < 2 || p[0] != '/' || strings.ContainsRune(p, 0) {
			s.keyErr("listen", "%q must be unix:///absolute/path", x)
		}
		return x
	}
	if !validHostPort(x, true) {
		if unix {
			s.keyErr("listen", "%q must be unix:///path or host:port", x)
		} else {
			s.keyErr("listen", "%q must be host:port", x)
		}
	}
	return x
}

// validHostPort reports whether x is host:port with a numeric port in
// 1..65535; the host may be empty (all addresses) if emptyHost.
func validHostPort(x string, emptyHost bool) bool {
	host, port, err := net.SplitHostPort(x)
	if err != nil {
		return false
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return false
	}
	if host == "" {
		return emptyHost
	}
	if strings.Contains(host, ":") {
		_, err := netip.ParseAddr(host)
		return err == nil
	}
	return !strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '/' || r == '[' || r == ']' })
}

func (c *collector) log(r *rawLog) Log {
	l := Log{Format: DefaultLogFormat, Level: DefaultLogLevel}
	if r == nil {
		return l
	}
	s := scope{c: c, path: "log", node: r.Pos.Node, hdr: r.Pos.At}
	if x, ok := s.oneOf("format", r.Format, "text", "json"); ok {
		l.Format = x
	}
	if x, ok := s.oneOf("level", r.Level, "debug", "info", "warn", "error"); ok {
		l.Level = x
	}
	return l
}
