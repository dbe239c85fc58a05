// Package config defines anycastd's TOML schema, decodes it strictly, applies
// defaults and validates it into domain types.
//
// The types in this file are the validated, domain form of a configuration.
// Every other package works on these and never sees raw TOML.
package config

import (
	"net/netip"
	"net/url"
	"regexp"
	"time"
)

// Config is a complete, validated anycastd configuration.
type Config struct {
	BGP       BGP
	Interface Interface
	API       API
	Metrics   Metrics
	Log       Log
	Node      Node
	// Fleet is the [fleet] table: the fleet guard and view over etcd; nil
	// when absent (every site decides alone, as without it).
	Fleet  *Fleet  `diff:"table"`
	Checks []Check // in file order; names are unique
	VIPs   []VIP   // in file order; names are unique, prefixes unique across VIPs
}

// BGP is the [bgp] table.
type BGP struct {
	ASN             uint32
	RouterID        netip.Addr // always IPv4
	ListenPort      int        // 0: no listener, outbound sessions only
	ListenAddresses []netip.Addr
	// GracefulRestart enables graceful restart (RFC 4724): the capability
	// names every family of each session, and a restart keeps the routes
	// on the routers (off by default: routers would keep a dead site's
	// routes for the restart time).
	GracefulRestart bool
	// GracefulRestartTime is the Restart Time advertised in the capability
	// (RFC 4724 §3): how long a router keeps this node's routes as stale
	// after the session is lost, until anycastd is back. Whole seconds,
	// 1s..4095s (a 12-bit field); default 120s.
	GracefulRestartTime time.Duration
	Peers               []Peer // in file order; addresses are unique
}

// Family is an address family carried on a BGP session.
type Family string

const (
	FamilyIPv4 Family = "ipv4"
	FamilyIPv6 Family = "ipv6"
)

// Peer is one [[bgp.peer]].
type Peer struct {
	Address     netip.Addr
	Port        uint16 // default 179
	ASN         uint32
	Description string
	// HoldTime default 9s; KeepaliveInterval default HoldTime/3.
	HoldTime          time.Duration
	KeepaliveInterval time.Duration
	// ConnectRetry is the time between outbound connection attempts (default 5s).
	ConnectRetry time.Duration
	Password     string     // TCP MD5 (RFC 2385); empty: none
	MultihopTTL  uint8      // eBGP multihop TTL; 0: directly connected
	Passive      bool       // never connect out, only accept
	LocalAddress netip.Addr // zero: chosen by the kernel
	// TTLSecurityHops turns on GTSM (RFC 5082 §3) for the session: this
	// node sends with TTL (hop limit) 255 and accepts only segments that
	// arrive with at least 256-TTLSecurityHops, i.e. from a router at
	// most this many hops away (1: directly connected). 0: off (default).
	// Exclusive with MultihopTTL.
	TTLSecurityHops uint8
	// Families carried on the session; default: the family of Address.
	Families []Family
	// NextHopIPv4 / NextHopIPv6: next hop sent to this peer per family.
	// Zero: the session's local address (IPv4 session, IPv4 routes; IPv6
	// session, IPv6 routes). IPv6 routes over an IPv4 session need NextHopIPv6.
	NextHopIPv4 netip.Addr
	NextHopIPv6 netip.Addr
	// MaxReceivedPrefixes bounds the prefixes a peer may send per family
	// (default 1000; 0: no limit). anycastd accepts no routes, but the
	// speaker keeps every received path (about 1 KB each) until the
	// session ends. One more than this closes the session with a CEASE
	// NOTIFICATION, subcode 1 "Maximum Number of Prefixes Reached"
	// (RFC 4486 §4); the session stays down for MaxReceivedRestart.
	MaxReceivedPrefixes uint32
	// MaxReceivedRestart is how long a session closed for too many prefixes
	// stays down before anycastd lets it come up again (default 5m; 0:
	// until the next reload that changes the peer, or a restart).
	MaxReceivedRestart time.Duration
	// Communities and LargeCommunities (RFC 1997, RFC 8092) are added to
	// every VIP sent to this peer, after the VIP's own (none by default).
	Communities      []Community
	LargeCommunities []LargeCommunity
	// BFD runs a BFD session with the peer ([bgp.peer.bfd]); nil: none.
	BFD  *BFD `diff:"table"`
	Line int  // line of the [[bgp.peer]] header in the file, 0 if unknown
}

// BFD are a peer's BFD timers (RFC 5880 §6.8.1): single hop (RFC 5881)
// for a directly connected peer, multihop (RFC 5883) with MultihopTTL.
// The session's detection time is the peer's multiplier times the slower
// of our MinRx and its TX interval; a change by reload runs a Poll
// sequence (RFC 5880 §6.8.3) and never takes the session down.
type BFD struct {
	// MinTx is bfd.DesiredMinTxInterval (default 300ms, 10ms..60s):
	// how often this node would like to send while the session is Up.
	MinTx time.Duration
	// MinRx is bfd.RequiredMinRxInterval (default 300ms, 10ms..60s): how
	// often this node can take the peer's packets.
	MinRx time.Duration
	// Multiplier is bfd.DetectMult (default 3, 1..255).
	Multiplier uint8
}

// Internal reports whether the session is iBGP.
func (p Peer) Internal(localASN uint32) bool { return p.ASN == localASN }

// HasFamily reports whether the session carries family f.
func (p Peer) HasFamily(f Family) bool {
	for _, x := range p.Families {
		if x == f {
			return true
		}
	}
	return false
}

// Node is the [node] table: how this node takes traffic away gently.
type Node struct {
	// DrainTime is how long a drained VIP stays announced with the
	// GRACEFUL_SHUTDOWN community before it is withdrawn (default 5s); a
	// VIP's own drain_time overrides it.
	DrainTime time.Duration
	// MaintenanceFile: while this file exists every VIP is drained and
	// stays withdrawn. Empty: none.
	MaintenanceFile string
	// StartupDelay holds all announcements for this long after the first
	// BGP session comes up (0: announce as soon as checks have risen).
	StartupDelay time.Duration
}

// Interface is the [interface] table: where VIP addresses live on the host.
type Interface struct {
	Name   string // default "lo"; any other name is created as a dummy link
	Manage bool   // default true: add VIP addresses to the interface
	// StateDir holds the record of the addresses (and the link) anycastd
	// added, so that a restart knows what is its own (default /run/anycastd).
	StateDir string
	// Method is how a VIP is made local to the host (default
	// InterfaceMethodAddress). Changing it needs a restart.
	Method InterfaceMethod
}

// InterfaceMethod is the value of [interface] method: how anycastd makes
// the host accept a VIP's traffic.
type InterfaceMethod string

// Values of Interface.Method.
const (
	// InterfaceMethodAddress puts each VIP on the interface as an address
	// (/32, or /128 with nodad): services can bind it and see it among the
	// interface's addresses. The kernel's address insert is O(addresses on
	// the link): slow with thousands of VIPs.
	InterfaceMethodAddress InterfaceMethod = "address"
	// InterfaceMethodLocalRoute installs each VIP as a route of type local
	// in table local on the interface (constant cost per VIP). An IPv4
	// service can bind it; an IPv6 service cannot bind the VIP itself
	// unless net.ipv6.ip_nonlocal_bind = 1 (or IPV6_FREEBIND), but a
	// wildcard listener receives its traffic; services that enumerate the
	// interface addresses do not see it.
	InterfaceMethodLocalRoute InterfaceMethod = "local-route"
)

// API is the [api] table.
type API struct {
	Listen string // e.g. "unix:///run/anycastd/api.sock"; empty: no API
	// Group owns the unix socket (mode 0660), so its members may use the
	// API; empty: the daemon's group. A name or a numeric ID.
	Group string
	// TCPListen is an additional host:port listener; empty: none. Over
	// TCP, control calls need a verified client certificate.
	TCPListen string
	// TLSCertFile and TLSKeyFile (both or neither) serve TCP listeners
	// with TLS; ClientCAFile verifies client certificates (needs TLS).
	TLSCertFile, TLSKeyFile string
	ClientCAFile            string
}

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string // e.g. "127.0.0.1:9479"; empty: no metrics listener
	// GoBGPCollector adds GoBGP's own collector (per-peer message and route
	// counts); off by default since each scrape lists every advertised route.
	GoBGPCollector bool
	// CheckDurationHistogram exports anycastd_check_duration_seconds per
	// check as a histogram (13 buckets, 15 series a check). Off by default:
	// then it is a summary with only _sum and _count (2 series a check;
	// at 10,000 checks the histogram alone is 150,000 series).
	CheckDurationHistogram bool
}

// Log is the [log] table (command-line flags override it).
type Log struct {
	Format string // "text" (default) or "json"
	Level  string // "debug", "info" (default), "warn", "error"
}

// CheckType names a kind of health check.
type CheckType string

const (
	CheckTCP   CheckType = "tcp"
	CheckHTTP  CheckType = "http"
	CheckHTTPS CheckType = "https" // http with TLS required: the url must be https://
	CheckDNS   CheckType = "dns"
	CheckGRPC  CheckType = "grpc"
	CheckExec  CheckType = "exec"
	// The instant-failure checks: a definite failure (the process exited,
	// the listener is gone, the service reported failing) takes the check
	// down at once, without waiting for Fall; Rise still applies.
	CheckProcess CheckType = "process"
	CheckListen  CheckType = "listen"
	CheckTTL     CheckType = "ttl"
)

// Check is one [[check]]. Exactly one of TCP, HTTP, DNS, GRPC, Exec,
// Process, Listen, TTL is set, matching Type (HTTP for both http and https).
// Its values are valid and parsed, defaults applied: the health package
// uses them as they are. Use Equal, not ==, to compare two checks.
type Check struct {
	Name     string
	Type     CheckType
	Interval time.Duration // default 1s
	// FastInterval is used instead of Interval while a state change is
	// pending: after the first failure when up, after the first pass when
	// down or unknown. Default Interval; never above it.
	FastInterval time.Duration
	// Timeout defaults to min(FastInterval/2, 1s); always < FastInterval.
	Timeout time.Duration
	Rise    int // default 3
	Fall    int // default 3

	TCP  *TCPCheck
	HTTP *HTTPCheck
	DNS  *DNSCheck
	GRPC *GRPCCheck
	Exec *ExecCheck

	Process *ProcessCheck
	Listen  *ListenCheck
	TTL     *TTLCheck

	Line int
}

// TLSClient is the client side of TLS for a check. Relative file names are
// relative to the daemon's working directory; the files existed and parsed
// when the configuration was loaded (a checker reads them again when it
// starts: they may have changed since).
type TLSClient struct {
	// ServerName is the name sent (SNI) and verified: tls_server_name, else
	// for tcp and grpc the host of Address (an IP address is verified but
	// not sent). For http and https it stays empty unless set: each request
	// then uses the host of its URL (not Host), redirects included.
	ServerName         string
	CAFile             string // PEM roots to verify the server with; default: the system's
	CertFile, KeyFile  string // client certificate (both or neither)
	InsecureSkipVerify bool   // only when set explicitly
}

// TCPCheck passes when a TCP connection to Address can be opened (and, with
// TLS, the handshake completes), Send can be written and the reply starts
// with Expect.
type TCPCheck struct {
	Address       string     // host:port, port 1..65535; a host name is resolved at each connection
	Send          string     // written after connecting; empty: nothing
	Expect        string     // the reply must start with it; empty: not read
	TLS           *TLSClient // nil: plaintext
	SourceAddress netip.Addr // zero: chosen by the kernel
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// HTTPCheck passes when a request to URL answers with one of ExpectStatus
// and, when set, a body that contains ExpectBody and matches ExpectBodyRegex.
type HTTPCheck struct {
	URL string // as written: http:// or https:// (https:// for type https), with a host
	// ParsedURL is URL parsed, what requests are sent to (shared: copy it
	// before changing it). It is derived from URL: Compare and Check.Equal
	// look at URL instead.
	ParsedURL       *url.URL          `diff:"-"`
	Method          string            // an HTTP token in upper case; default GET
	ExpectStatus    []StatusRange     // not empty; default 200-299
	ExpectBody      string            // substring of the body; empty: not checked
	ExpectBodyRegex *regexp.Regexp    // RE2, matched against the body read; nil: not checked
	Host            string            // Host header; empty: from URL (TLS server name: see TLSClient)
	Headers         map[string]string // extra request headers (canonical names)
	FollowRedirects bool              // default false: a 3xx is the answer
	SourceAddress   netip.Addr        // zero: chosen by the kernel
	MaxBodyBytes    int64             // at most this much body is read, 1 B..64 MiB; default 64 KiB
	TLS             *TLSClient        // nil: defaults (system roots, verification on)
}

// DNSCheck passes when Server answers a query for QueryName/QueryType with
// ExpectRcode and, when ExpectAnswer is set, each of its values is the rdata
// of one of the answer records.
type DNSCheck struct {
	Server       string      // host:port (an IP address alone gets port 53); default 127.0.0.1:53
	Protocol     string      // "udp" (default) or "tcp"
	QueryName    string      // fully qualified (ends with '.'), at most 253 characters before it
	QueryType    DNSType     // one of DNSQueryTypes; default A
	ExpectRcode  DNSRcode    // one of DNSRcodes; default NOERROR
	ExpectAnswer []DNSAnswer // empty: answers not checked
}

// DNSType is a DNS RR type number (IANA "DNS Parameters"), e.g. 28 for
// AAAA. Its String is the type's name.
type DNSType uint16

// DNSRcode is a DNS response code (RFC 1035 §4.1.1, RFC 2136 §2.2), e.g. 3
// for NXDOMAIN. Its String is the code's name.
type DNSRcode uint16

// DNSAnswer is one value of expect_answer: the rdata of an answer record as
// written, e.g. "203.0.113.1", "10 mail.example.net." or, for TXT, the text
// without quotes.
type DNSAnswer struct {
	Text string
	// Addr is Text as an IP address (IPv4-mapped IPv6 unmapped), which an
	// answer matches by value; zero when Text is not an IP address.
	Addr netip.Addr
}

// GRPCCheck passes when grpc.health.v1.Health/Check for Service at Address
// answers SERVING.
type GRPCCheck struct {
	Address string     // host:port, port 1..65535; a host name is resolved at each connection
	Service string     // default "": the server as a whole
	TLS     *TLSClient // nil: plaintext
}

// ExecCheck runs Command (argv) and passes on exit status 0. At the timeout
// the whole process group is killed.
type ExecCheck struct {
	// Command is the argv as run, with a non-empty program. With shell =
	// true it is {"/bin/sh", "-c", <the configured string>} and Shell is true.
	Command []string
	Shell   bool
	Env     map[string]string // added to a minimal environment (PATH)
	Dir     string            // working directory (it existed at load); empty: the daemon's
}

// ProcessCheck watches the service's main process through a pidfd: it
// fails at once when the process exits, and follows a restarted process
// (a new pid in PIDFile, a new MainPID of Unit). Exactly one of PIDFile and
// Unit is set.
type ProcessCheck struct {
	PIDFile string // absolute path of a file holding the pid in decimal
	Unit    string // systemd service unit whose MainPID is watched, always with its suffix, e.g. "nginx.service"
}

// ListenCheck passes while the kernel has a listening socket (for udp: a
// bound, unconnected one) on Port that accepts connections to Addr: bound to
// Addr itself or to the wildcard address of its family (for an IPv4 Addr
// also a dual-stack [::] socket). The kernel's socket table is read over
// netlink; no connection is opened.
type ListenCheck struct {
	Addr     netip.Addr // never IPv4-mapped IPv6; zero: any address, either family
	Port     uint16     // 1..65535
	Protocol string     // "tcp" (default) or "udp"
}

// TTLCheck passes while the service reports itself healthy at least once
// per TTL (Manager.Report, anycastctl report). A missed deadline or a
// "failing" report takes the check down at once.
type TTLCheck struct {
	TTL time.Duration // at least 10ms
}

// VIP is one [[vip]]: a service address announced while its checks pass.
type VIP struct {
	Name     string
	Prefixes []netip.Prefix // host routes unless AllowAggregate
	Checks   []string       // names of checks guarding the VIP (at least one)
	// Require is how many of Checks must pass: len(Checks) for "all"
	// (the default), 1 for "any", or the configured number.
	Require          int
	Communities      []Community
	LargeCommunities []LargeCommunity
	MED              *uint32
	LocalPref        *uint32 // sent to iBGP peers only
	Prepend          int     // extra copies of the local ASN in the AS path (eBGP)
	AllowAggregate   bool
	// RemoveOnWithdraw removes the VIP's addresses from the interface after
	// a withdrawal (default false: connections in flight can finish).
	RemoveOnWithdraw bool
	// OnAddressLost says what happens when someone deletes a VIP address
	// from the interface: AddressLostRestore (default) puts it back,
	// AddressLostWithdraw withdraws the VIP until the address returns.
	OnAddressLost string
	// DrainTime overrides Node.DrainTime for this VIP (0: the node's).
	DrainTime time.Duration
	// MaintenanceFile: while it exists this VIP is drained (empty: none).
	MaintenanceFile string
	// OnFailure is OnFailureWithdraw (default) or OnFailureDegrade: keep
	// announcing with the Degraded attributes when the checks fail.
	OnFailure string
	// Degraded are the attributes of a degraded announcement; nil when the
	// VIP has no [vip.degraded] table.
	Degraded *Degraded `diff:"table"`
	// FlapHoldDown holds a flapping VIP withdrawn (or degraded).
	FlapHoldDown FlapHoldDown
	// Peers are the addresses of the [[bgp.peer]] sessions the VIP is sent
	// to (each one of BGP.Peers); empty: every session. See SentTo.
	Peers []netip.Addr
	// MinSites is the fleet guard's floor: a health-driven withdrawal never
	// leaves fewer sites announcing the VIP (default 1 with [fleet], 0
	// without it; 0: no floor).
	MinSites int
	Line     int
}

// Values of VIP.OnFailure.
const (
	OnFailureWithdraw = "withdraw"
	OnFailureDegrade  = "degrade"
)

// Degraded is [vip.degraded]: how a VIP is announced while degraded.
type Degraded struct {
	Prepend          int              // replaces the VIP's prepend
	MED              *uint32          // replaces the VIP's MED
	Communities      []Community      // added to the VIP's communities
	LargeCommunities []LargeCommunity // added to the VIP's large communities
	// MinPassing: with on_failure = "withdraw", a VIP with fewer than
	// `require` but at least MinPassing checks passing is announced
	// degraded instead of withdrawn (0: never).
	MinPassing int
}

// FlapHoldDown is a VIP's flap hold-down (max_flaps, flap_window,
// hold_down): a VIP whose checks change its state more than MaxFlaps times
// within Window is held (withdrawn, or degraded with on_failure =
// "degrade") for HoldDown. MaxFlaps 0 turns it off. It is not RFC 2439
// route flap damping: it counts the VIP's own transitions, not a peer's
// routes, and has no penalty decay.
type FlapHoldDown struct {
	MaxFlaps int
	Window   time.Duration
	HoldDown time.Duration
}

// Values of VIP.OnAddressLost.
const (
	AddressLostRestore  = "restore"
	AddressLostWithdraw = "withdraw"
)

// Community is an RFC 1997 community, ASN:value, packed as ASN<<16|value.
type Community uint32

// LargeCommunity is an RFC 8092 large community, global:local1:local2.
type LargeCommunity struct{ Global, Local1, Local2 uint32 }

// CheckByName returns the check named name.
func (c *Config) CheckByName(name string) (Check, bool) {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch, true
		}
	}
	return Check{}, false
}
