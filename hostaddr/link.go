//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The link VIP addresses go on, and netlink helpers.

func newDummy(name string) netlink.Link {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
}

// warnElsewhere logs each VIP address found on another interface.
func (h *Host) warnElsewhere(addrs []netlink.Addr) {
	if len(addrs) == 0 {
		return
	}
	names := map[int]string{}
	if links, err := h.nl.LinkList(); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	for _, a := range addrs {
		p, _ := prefixOf(a.IPNet)
		name := names[a.LinkIndex]
		if name == "" {
			name = fmt.Sprintf("index %d", a.LinkIndex)
		}
		h.log.Warn("VIP address is also on another interface", "vip", h.vips[netip.PrefixFrom(p.Addr(), p.Addr().BitLen())],
			"prefix", p, "on", name)
	}
}

// cleanupPrevious removes what anycastd added to the interface an earlier
// run used (the configuration has changed since).
func (h *Host) cleanupPrevious(st hostState) {
	l, err := h.nl.LinkByName(st.Link)
	if err != nil || l.Attrs().Index != st.LinkIndex {
		return // gone, and its addresses with it
	}
	log := h.log.With("previous_interface", st.Link)
	for _, routes := range []bool{false, true} {
		owned := st.Owned
		if routes {
			owned = st.Routes
		}
		for _, p := range sortedPrefixes(owned) {
			if err := h.uninstall(p, routes, st.LinkIndex); err != nil && !isGone(err) {
				log.Error("cannot remove "+article(routes)+" anycastd added to its previous interface", "prefix", p, "err", err)
				continue
			}
			log.Info("removed "+article(routes)+" anycastd added to its previous interface", "prefix", p)
		}
	}
	if st.CreatedLink == st.Link {
		h.deleteLinkIfEmpty(l)
	}
}

// createLink creates the dummy link, recording it first.
func (h *Host) createLink() (netlink.Link, error) {
	if err := h.j.record("create-link %s", h.name); err != nil {
		return nil, err
	}
	l := h.newLink(h.name)
	if err := h.nl.LinkAdd(l); err != nil {
		_ = h.j.record("deleted-link %s", h.name)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil, fmt.Errorf("creating %s interface %s: the kernel has no %s link support (modprobe %s?): %w", l.Type(), h.name, l.Type(), l.Type(), err)
		}
		return nil, h.permission(fmt.Errorf("creating %s interface %s: %w", l.Type(), h.name, err))
	}
	link, err := h.nl.LinkByName(h.name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", h.name, err)
	}
	h.index, h.created = link.Attrs().Index, true
	h.log.Info("created interface", "type", l.Type())
	return link, nil
}

// deleteLinkIfEmpty deletes a link anycastd created, unless someone put
// addresses of their own on it. It reports whether the link is gone.
func (h *Host) deleteLinkIfEmpty(l netlink.Link) bool {
	name := l.Attrs().Name
	addrs, err := h.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		h.log.Error("cannot list the addresses of the interface anycastd created; keeping it", "link", name, "err", err)
		return false
	}
	var others []string
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_LINK {
			others = append(others, a.IPNet.String())
		}
	}
	if len(others) > 0 {
		h.log.Warn("keeping the interface anycastd created: it holds addresses anycastd did not add", "link", name, "addresses", others)
		return false
	}
	if err := h.nl.LinkDel(l); err != nil && !isNotFound(err) && !errors.Is(err, unix.ENODEV) {
		h.log.Error("cannot delete the interface anycastd created", "link", name, "err", err)
		return false
	}
	_ = h.j.record("deleted-link %s", name)
	h.log.Info("deleted the interface anycastd created", "link", name)
	return true
}

// relinkLocked finds the link again after it vanished, creating it again if
// it is missing (it cannot be lo).
func (h *Host) relinkLocked() error {
	link, err := h.nl.LinkByName(h.name)
	switch {
	case err == nil:
		if link.Attrs().Index == h.index {
			return fmt.Errorf("interface %s: %w", h.name, unix.ENODEV)
		}
		h.old[h.index] = true
		h.index, h.created = link.Attrs().Index, false
		h.log.Warn("interface was replaced; using the new one")
	case isNotFound(err) && h.name != "lo":
		h.old[h.index] = true
		if link, err = h.createLink(); err != nil {
			return err
		}
		h.log.Warn("interface was deleted: created it again")
	default:
		return fmt.Errorf("interface %s: %w", h.name, err)
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return h.permission(fmt.Errorf("bringing up %s: %w", h.name, err))
	}
	if h.routes {
		for p := range h.owned {
			h.linkGone[p] = true
		}
	}
	clear(h.owned) // they went with the old link
	clear(h.other)
	clear(h.adopted)
	clear(h.present)
	return h.j.record("link %s %d", h.name, h.index)
}

// addr is the netlink form of p on the link.
func (h *Host) addr(p netip.Prefix) *netlink.Addr { return addrOn(p, h.index) }

func addrOn(p netip.Prefix, index int) *netlink.Addr {
	a := &netlink.Addr{
		IPNet:     &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		LinkIndex: index,
	}
	if p.Addr().Is6() {
		// No DAD (the address is meant to be on many hosts), and no
		// prefix route: the /128 route in table main that the kernel
		// adds for each address is redundant with the address's local
		// route in table local, and it costs the kernel more than the
		// address itself (10,000 IPv6 addresses on lo: removed in 4 s
		// without their prefix routes, 25 s with them).
		a.Flags = unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE
	}
	return a
}

// prefixOf converts an address as netlink reports it.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

func sortedPrefixes(m map[netip.Prefix]bool) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// isGone reports whether deleting an address (a route: ESRCH) failed
// because it is not there.
func isGone(err error) bool {
	return errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ESRCH)
}
