// Package config defines anycastd's TOML schema, decodes it strictly, applies
// defaults and validates it into domain types.
//
// The types in this file are the validated, domain form of a configuration.
// Every other package works on these and never sees raw TOML.
package config

import (
	"net/netip"
	"time"
)

// Config is a complete, validated anycastd configuration.
type Config struct {
	BGP       BGP
	Interface Interface
	API       API
	Metrics   Metrics
	Log       Log
	Checks    []Check // in file order; names are unique
	VIPs      []VIP   // in file order; names are unique, prefixes unique across VIPs
}

// BGP is the [bgp] table.
type BGP struct {
	ASN             uint32
	RouterID        netip.Addr // always IPv4
	ListenPort      int        // 0: no listener, outbound sessions only
	ListenAddresses []netip.Addr
	// GracefulRestart enables the graceful-restart capability (off by default:
	// routers would keep a dead site's routes for the restart time).
	GracefulRestart bool
	Peers           []Peer // in file order; addresses are unique
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
	// Families carried on the session; default: the family of Address.
	Families []Family
	// NextHopIPv4 / NextHopIPv6: next hop sent to this peer per family.
	// Zero: the session's local address (IPv4 session, IPv4 routes; IPv6
	// session, IPv6 routes). IPv6 routes over an IPv4 session need NextHopIPv6.
	NextHopIPv4 netip.Addr
	NextHopIPv6 netip.Addr
	Line        int // line of the [[bgp.peer]] header in the file, 0 if unknown
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

// Interface is the [interface] table: where VIP addresses live on the host.
type Interface struct {
	Name   string // default "lo"; any other name is created as a dummy link
	Manage bool   // default true: add VIP addresses to the interface
}

// API is the [api] table.
type API struct {
	Listen string // e.g. "unix:///run/anycastd/api.sock"; empty: no API
}

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string // e.g. "127.0.0.1:9479"; empty: no metrics listener
}

// Log is the [log] table (command-line flags override it).
type Log struct {
	Format string // "text" (default) or "json"
	Level  string // "debug", "info" (default), "warn", "error"
}

// CheckType names a kind of health check.
type CheckType string

const (
	CheckTCP  CheckType = "tcp"
	CheckHTTP CheckType = "http"
	CheckExec CheckType = "exec"
)

// Check is one [[check]]. Exactly one of TCP, HTTP, Exec is set, matching Type.
type Check struct {
	Name     string
	Type     CheckType
	Interval time.Duration // default 1s
	Timeout  time.Duration // default min(interval/2, 1s); always < Interval
	Rise     int           // default 3
	Fall     int           // default 3

	TCP  *TCPCheck
	HTTP *HTTPCheck
	Exec *ExecCheck

	Line int
}

// TCPCheck passes when a TCP connection to Address can be opened.
type TCPCheck struct {
	Address string // host:port
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// HTTPCheck passes when a request to URL answers with one of ExpectStatus.
type HTTPCheck struct {
	URL          string // http:// or https://
	Method       string // default GET
	ExpectStatus []StatusRange
}

// ExecCheck runs Command (argv, no shell) and passes on exit status 0.
// At the timeout the whole process group is killed.
type ExecCheck struct {
	Command []string
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
	Line          int
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
