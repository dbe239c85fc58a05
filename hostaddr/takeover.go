//go:build linux

package hostaddr

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// takeOver compares what the journal says anycastd added to the link with
// what is there now, at start: what is still there stays anycastd's, what it
// added for VIPs no longer configured is removed. Entries of the other
// method (the method changed between runs) are removed for VIPs no longer
// configured, and kept for the others until Add puts the VIP's entry of
// this method in (so that a planned restart that changes the method does
// not drop the VIPs' traffic in between), Remove or Close.
func (h *Host) takeOver(st hostState) error {
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	onLink := map[netip.Prefix]bool{}
	var elsewhere []netlink.Addr
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok {
			continue
		}
		if a.LinkIndex == h.index {
			onLink[p] = true
		} else if _, vip := h.vips[netip.PrefixFrom(p.Addr(), p.Addr().BitLen())]; vip {
			elsewhere = append(elsewhere, a)
		}
	}
	var local, ours map[netip.Prefix]bool
	if h.routes || len(st.Routes) > 0 {
		if local, ours, err = h.localRoutes(h.index); err != nil {
			return fmt.Errorf("listing local routes: %w", err)
		}
	}
	// This method's entries and what of them is on the link; the other's.
	mine, on, theirs, theirsOn := st.Owned, onLink, st.Routes, ours
	if h.routes {
		mine, on, theirs, theirsOn = st.Routes, ours, st.Owned, onLink
	}
	removed := false
	for _, p := range sortedPrefixes(mine) {
		switch {
		case !on[p]:
			// Recorded, then a crash before it was added, or removed since.
		case h.vips[p] == "":
			if err := h.uninstall(p, h.routes, h.index); err != nil && !isGone(err) {
				h.log.Error("cannot remove "+article(h.routes)+" anycastd added for a VIP no longer configured", "prefix", p, "err", err)
				h.owned[p] = true // try again at Close
				continue
			}
			delete(on, p)
			removed = true
			h.log.Info("removed "+article(h.routes)+" anycastd added for a VIP no longer configured", "prefix", p)
		default:
			h.owned[p] = true
			h.log.Info("VIP "+noun(h.routes)+" added by an earlier run is still anycastd's", "vip", h.vips[p], "prefix", p)
		}
	}
	other := !h.routes
	for _, p := range sortedPrefixes(theirs) {
		switch {
		case !theirsOn[p]:
		case h.vips[p] == "":
			if err := h.uninstall(p, other, h.index); err != nil && !isGone(err) {
				h.log.Error("cannot remove "+article(other)+" anycastd added with another [interface] method for a VIP no longer configured",
					"prefix", p, "method", methodName(other), "err", err)
				h.other[p] = true // try again at Close
				continue
			}
			delete(theirsOn, p)
			removed = true
			h.log.Info("removed "+article(other)+" anycastd added with another [interface] method for a VIP no longer configured",
				"prefix", p, "method", methodName(other))
		default:
			h.other[p] = true
			h.log.Info("VIP "+noun(other)+" an earlier run added with another [interface] method stays until the VIP's "+noun(h.routes)+" replaces it",
				"vip", h.vips[p], "prefix", p, "method", methodName(other))
		}
	}
	if h.routes && removed {
		// An address takes its local route with it; another may remain.
		if local, _, err = h.localRoutes(h.index); err != nil {
			return fmt.Errorf("listing local routes: %w", err)
		}
	}
	for p := range h.vips {
		if h.routes {
			h.present[p] = local[p]
		} else {
			h.present[p] = onLink[p]
		}
	}
	h.warnElsewhere(elsewhere)
	return h.j.compact(h.stateLocked())
}

// article is noun with its article: "an address", "a local route".
func article(routes bool) string {
	if routes {
		return "a local route"
	}
	return "an address"
}
