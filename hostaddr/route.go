//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// With [interface] method = "local-route" a VIP is not an address on the
// link but a route of type local (RTN_LOCAL) in table local (255) on it,
// scope host, protocol RouteProtocol:
//
//	local 203.0.113.42 dev lo table local proto 172 scope host
//
// The kernel accepts the VIP's traffic as its own, as for an address, but
// installs it at a constant cost (an address insert is O(addresses on the
// link)). The host accepts a VIP's traffic while table local holds any route
// of type local for it, whoever installed it on whichever link (an address
// puts one there too): that is what the watch reports, and such a route
// found before anycastd installs its own is adopted, never removed. anycastd
// removes only the routes it installed: a route of its protocol on its link,
// recorded in the journal.

// RouteProtocol is the rtnetlink protocol number (rtm_protocol) of the
// local routes anycastd installs: `ip route show table local proto 172`
// lists them. The kernel gives no meaning to numbers above RTPROT_STATIC
// (4); 172 (0xAC) is in no iproute2 rt_protos list, and FRR (11, 186–198),
// BIRD (12), keepalived (18) and Calico (80) use others. To have ip print a
// name: echo "172 anycastd" > /etc/iproute2/rt_protos.d/anycastd.conf
const RouteProtocol = 172

// route is the netlink form of p's local route on the link.
func (h *Host) route(p netip.Prefix) *netlink.Route { return routeOn(p, h.index) }

func routeOn(p netip.Prefix, index int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: index,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Table:     unix.RT_TABLE_LOCAL,
		Type:      unix.RTN_LOCAL,
		Scope:     netlink.SCOPE_HOST,
		Protocol:  RouteProtocol,
	}
}

// install puts p on the link the configured way: an address, or a local
// route. A link that is down takes no IPv6 route: it is brought up (New
// brought it up already) and the route added again.
func (h *Host) install(p netip.Prefix) error {
	if !h.routes {
		return h.nl.AddrAdd(nil, h.addr(p))
	}
	err := h.nl.RouteAdd(h.route(p))
	if errors.Is(err, unix.ENETDOWN) {
		h.log.Warn("interface is down: bringing it up")
		if err := h.nl.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: h.index}}); err != nil {
			return fmt.Errorf("bringing up %s: %w", h.name, err)
		}
		err = h.nl.RouteAdd(h.route(p))
	}
	return err
}

// uninstall removes p's address (routes false) or anycastd's local route
// (routes true) from link index.
func (h *Host) uninstall(p netip.Prefix, routes bool, index int) error {
	if routes {
		return h.nl.RouteDel(routeOn(p, index))
	}
	return h.nl.AddrDel(nil, addrOn(p, index))
}

// What the journal and the logs call an entry of each method.
func opAdd(routes bool) string {
	if routes {
		return "add-route"
	}
	return "add"
}

func opDel(routes bool) string {
	if routes {
		return "del-route"
	}
	return "del"
}

func noun(routes bool) string {
	if routes {
		return "local route"
	}
	return "address"
}

// place says where an entry of each method is.
func place(routes bool) string {
	if routes {
		return "in table local"
	}
	return "on the interface"
}

func methodName(routes bool) string {
	if routes {
		return "local-route"
	}
	return "address"
}

// localRoutes lists the single-address routes of type local in table local:
// local holds every prefix that has one (whoever's, on whichever link: the
// host accepts its traffic), ours those anycastd installs (its protocol, on
// link index). A dump that changes as it is read is read again.
func (h *Host) localRoutes(index int) (local, ours map[netip.Prefix]bool, err error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL}
	for attempt := 0; ; attempt++ {
		local, ours = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
		err = h.nl.RouteListFilteredIter(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_TYPE,
			func(r netlink.Route) bool {
				p, ok := prefixOf(r.Dst)
				if !ok || !p.IsSingleIP() {
					return true
				}
				local[p] = true
				if r.Protocol == RouteProtocol && r.LinkIndex == index {
					ours[p] = true
				}
				return true
			})
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == 9 {
			return local, ours, err
		}
	}
}

// removeOtherLocked removes the entry of p an earlier run added with the
// other method, and its record.
func (h *Host) removeOtherLocked(p netip.Prefix) error {
	other := !h.routes
	if err := h.uninstall(p, other, h.index); err != nil && !isGone(err) {
		return fmt.Errorf("removing the %s %s an earlier run (method = %s) added on %s: %w", noun(other), p, methodName(other), h.name, err)
	}
	if err := h.j.record("%s %s", opDel(other), p); err != nil {
		h.log.Error("state file", "err", err)
	}
	delete(h.other, p)
	h.log.Info("removed the VIP "+noun(other)+" an earlier run added with another [interface] method", "vip", h.vips[p], "prefix", p, "method", methodName(other))
	return nil
}

// warnIPv6Bind warns, once at start, when VIPs installed as local routes
// are IPv6 and the namespace does not let services bind them.
func (h *Host) warnIPv6Bind() {
	n := 0
	for p := range h.vips {
		if p.Addr().Is6() {
			n++
		}
	}
	if n == 0 {
		return
	}
	if v, err := h.sysctl("net/ipv6/ip_nonlocal_bind"); err == nil && v == "1" {
		return
	} else if err != nil {
		h.log.Debug("reading net.ipv6.ip_nonlocal_bind", "err", err)
	}
	h.log.Warn("IPv6 services cannot bind a VIP installed as a local route unless net.ipv6.ip_nonlocal_bind=1 (or IPV6_FREEBIND); a wildcard listener receives its traffic",
		"ipv6_vips", n)
}

// sysctl reads /proc/sys/<name> as the Host's namespace sees it: a network
// sysctl is that of the namespace of the thread that opens it. The read
// happens on a thread of its own that enters the namespace; should it fail
// to return to its own, it is never reused (it ends with its goroutine).
func (h *Host) sysctl(name string) (string, error) {
	path := "/proc/sys/" + name
	if h.ownNS {
		b, err := os.ReadFile(path)
		return strings.TrimSpace(string(b)), err
	}
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		b, err := os.ReadFile(path)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		ch <- result{strings.TrimSpace(string(b)), err}
	}()
	r := <-ch
	return r.v, r.err
}
