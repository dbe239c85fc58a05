package announcer

import (
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/anycastd/anycastd/config"
)

// What the speaker learns about a session from the router's OPEN and
// NOTIFICATIONs, beyond its state: problems that leave the session up but
// some routes unusable, and refusals that GoBGP does not explain.

// errNoExtendedNextHop is the LastError of an IPv6 session that carries
// IPv4 VIPs (without next_hop_ipv4) to a router that did not negotiate the
// extended next hop capability.
const errNoExtendedNextHop = "the router did not negotiate the extended next hop capability (RFC 8950 §3) for ipv4: " +
	"this node's IPv4 routes on this IPv6 session carry an IPv6 next hop, which such a router may not use (BIRD treats them as withdrawn; FRR 8.4 installs them anyway); " +
	"enable it on the router (BIRD: ipv4 { extended next hop on; }; FRR: neighbor X capability extended-nexthop) or set next_hop_ipv4"

// sessionProblem returns why an established session with p cannot carry
// all it is configured for, from the capabilities the router sent in its
// OPEN ("" if nothing is wrong).
//
// IPv4 over an IPv6 session without next_hop_ipv4: GoBGP (v4.8.0) offers
// the extended next hop capability for ipv4 unicast on every session and
// sends IPv4 routes with the session's IPv6 address as next hop in
// MP_REACH_NLRI (RFC 8950 §4), whether or not the router offered it too.
// A router that did not (RFC 8950 §3: it MUST NOT then be sent such a
// next hop) cannot use the route; BIRD 2 logs "Invalid NEXT_HOP attribute
// - mismatched address family" and treats it as withdrawn.
func sessionProblem(p config.Peer, remote []bgp.ParameterCapabilityInterface) string {
	if !p.Address.Is6() || p.Address.Is4In6() || !p.HasFamily(config.FamilyIPv4) || p.NextHopIPv4.IsValid() {
		return ""
	}
	ipv4, extended := false, false
	for _, c := range remote {
		switch c := c.(type) {
		case *bgp.CapMultiProtocol:
			ipv4 = ipv4 || c.CapValue == bgp.RF_IPv4_UC
		case *bgp.CapExtendedNexthop:
			for _, t := range c.Tuples {
				if t.NLRIAFI == bgp.AFI_IP && t.NLRISAFI == uint16(bgp.SAFI_UNICAST) && t.NexthopAFI == bgp.AFI_IP6 {
					extended = true
				}
			}
		}
	}
	if !ipv4 || extended {
		return "" // no IPv4 on the session at all, or as it should be
	}
	return errNoExtendedNextHop
}

// invalidWhileOpening is the LastError of a session whose router sent
// something other than an OPEN or KEEPALIVE during the OPEN exchange:
// nearly always a NOTIFICATION refusing this node's OPEN.
//
// GoBGP v4.8.0 does not decode such a NOTIFICATION: in OpenSent and
// OpenConfirm it treats any other message as "invalid-msg" and drops it
// (fsm.go, handleOpen and openconfirm), and on an outgoing connection it
// does the exchange without reporting a state at all (see
// notificationSent). So a router in strict BGP role mode (RFC 9234 §4.2:
// BIRD `require roles on`, FRR `neighbor X local-role ROLE strict-mode`),
// which refuses this node with Open Message Error, subcode 11 "Role
// Mismatch" because GoBGP cannot send the BGP Role capability, is named
// here as one cause among others, not identified.
const invalidWhileOpening = "the router refused this node's OPEN: it sent a NOTIFICATION instead of its own OPEN or KEEPALIVE " +
	"(GoBGP does not report the NOTIFICATION's code; the router's log has it: check AS numbers, router ID, " +
	"address families and capabilities on both sides; a router in strict BGP role mode (RFC 9234) refuses " +
	"every session from this node, which cannot send the BGP Role capability)"

// explainReason returns what to say for the reason GoBGP gives when a
// session leaves state prev.
func explainReason(prev, reason string) string {
	if reason == "invalid-msg" && (prev == "opensent" || prev == "openconfirm") {
		return invalidWhileOpening
	}
	return reason
}
