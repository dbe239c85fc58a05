package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// exportOnly reports whether peers o and n differ only in what the export
// policy adds for that peer (communities, large_communities): a reload then
// sends the peer its routes again and keeps the session.
func exportOnly(o, n Peer) bool {
	o.Communities, o.LargeCommunities = n.Communities, n.LargeCommunities
	return fields(o, n) == ""
}

// bfdOnly reports whether peers o and n differ only in [bgp.peer.bfd]:
// the BFD session changes its timers (or starts or stops) and the BGP
// session is kept.
func bfdOnly(o, n Peer) bool {
	o.BFD = n.BFD
	return fields(o, n) == ""
}

// vipPeersNote completes the diff note of a changed VIP when its peers key
// changed: which sessions lose the VIP and which get it. note is what a
// reload does about the VIP's other changes; it is dropped when there are
// none.
func vipPeersNote(o, n VIP, note string) string {
	if slices.Equal(o.Peers, n.Peers) {
		return note
	}
	rest := o
	rest.Peers = n.Peers
	if fields(rest, n) == "" {
		note = ""
	}
	var parts []string
	if lost := peersMinus(o.Peers, n.Peers); len(lost) > 0 {
		parts = append(parts, fmt.Sprintf("withdrawn from %s", lost))
	}
	if got := peersMinus(n.Peers, o.Peers); len(got) > 0 {
		parts = append(parts, fmt.Sprintf("now sent to %s", got))
	}
	p := "no longer restricted: sent to every peer"
	if len(n.Peers) > 0 {
		p = strings.Join(parts, ", ")
	}
	p += " (only those sessions get an UPDATE; no session reset)"
	if note == "" {
		return p
	}
	return note + "; " + p
}

// peersMinus lists the addresses selected by a but not by b, where an
// empty list selects every peer; "every other peer" when a is empty.
func peersMinus(a, b []netip.Addr) string {
	if len(b) == 0 {
		return ""
	}
	if len(a) == 0 {
		return "every other peer"
	}
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x.String())
		}
	}
	return strings.Join(out, ", ")
}
