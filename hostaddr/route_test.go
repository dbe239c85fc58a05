//go:build linux

package hostaddr

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/anycastd/anycastd/config"
)

func routeConfig(dev, stateDir string, prefixes ...netip.Prefix) *config.Config {
	cfg := hostConfig(dev, stateDir, prefixes...)
	cfg.Interface.Method = config.InterfaceMethodLocalRoute
	return cfg
}

// localRoute is a route of type local in table local as `ip -j` shows it.
type localRoute struct {
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	Scope    string `json:"scope"`
}

// ipLocalRoutes returns the routes of type local in table local, both
// families, by prefix, read with `ip -j`.
func (n *testNS) ipLocalRoutes(t *testing.T) map[netip.Prefix][]localRoute {
	t.Helper()
	got := map[netip.Prefix][]localRoute{}
	for _, fam := range []string{"-4", "-6"} {
		out, err := exec.Command("ip", "-n", n.name, fam, "-j", "route", "show", "table", "local", "type", "local").Output()
		if err != nil {
			t.Fatalf("ip route show table local: %v", err)
		}
		var rs []struct {
			Dst string `json:"dst"`
			localRoute
		}
		if err := json.Unmarshal(out, &rs); err != nil {
			t.Fatalf("ip -j route show: %v\n%s", err, out)
		}
		for _, r := range rs {
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				continue // a prefix such as 127.0.0.0/8
			}
			p := netip.PrefixFrom(a, a.BitLen())
			got[p] = append(got[p], r.localRoute)
		}
	}
	return got
}

// wantRoutes checks that each prefix in on has anycastd's local route on
// dev (protocol 172, scope host) and each in off has none of anycastd's.
func (n *testNS) wantRoutes(t *testing.T, dev string, on, off []netip.Prefix) {
	t.Helper()
	all := n.ipLocalRoutes(t)
	ours := func(p netip.Prefix) bool {
		for _, r := range all[p] {
			if r.Protocol == "172" && r.Dev == dev && (p.Addr().Is6() || r.Scope == "host") {
				return true
			}
		}
		return false
	}
	for _, p := range on {
		if !ours(p) {
			t.Errorf("no local route of anycastd for %s on %s; table local has %v", p, dev, all[p])
		}
	}
	for _, p := range off {
		if ours(p) {
			t.Errorf("anycastd's local route for %s is still on %s", p, dev)
		}
	}
}

// hasLocal reports whether table local holds any local route for p.
func (n *testNS) hasLocal(t *testing.T, p netip.Prefix) bool {
	return len(n.ipLocalRoutes(t)[p]) > 0
}

func TestRouteLoopback(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	h, _ := newHost(t, n, routeConfig("lo", dir, p4, p6))
	mustAdd(t, h, p4, p6)
	mustAdd(t, h, p4) // again: no error
	n.wantRoutes(t, "lo", []netip.Prefix{p4, p6}, nil)
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6}) // routes, not addresses
	data, _ := os.ReadFile(filepath.Join(dir, journalName))
	for _, want := range []string{"add-route " + p4.String() + "\n", "add-route " + p6.String() + "\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("journal lacks %q:\n%s", want, data)
		}
	}
	if err := h.Remove(p4); err != nil {
		t.Fatal(err)
	}
	n.wantRoutes(t, "lo", []netip.Prefix{p6}, []netip.Prefix{p4})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4, p6})
	if n.hasLocal(t, p4) || n.hasLocal(t, p6) {
		t.Errorf("local routes left after Close: %v", n.ipLocalRoutes(t))
	}
	if _, err := os.Stat(filepath.Join(dir, journalName)); !os.IsNotExist(err) {
		t.Errorf("state file left after a clean Close: %v", err)
	}
	if err := h.Add(p4, "test"); err == nil {
		t.Errorf("Add after Close succeeded")
	}
}

func TestRouteDummyLink(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, routeConfig("acd0", t.TempDir(), p4, p6))
	mustAdd(t, h, p4, p6)
	n.wantRoutes(t, "acd0", []netip.Prefix{p4, p6}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if l := n.link(t, "acd0"); l != nil {
		t.Errorf("acd0, created by anycastd, still exists after Close")
	}
	n.wantRoutes(t, "acd0", nil, []netip.Prefix{p4, p6})
}

// A local route that was there before (the operator's, or the one an
// address brings) is adopted: used, never removed.
func TestRouteAdoptsExisting(t *testing.T) {
	n := newTestNS(t)
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "route", "add", "local", p4.String(), "dev", "lo", "table", "local")
	n.ip(t, "addr", "add", p6.String(), "dev", "lo", "nodad")
	h, logs := newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6, p4b))
	mustAdd(t, h, p4, p6, p4b)
	if h.owned[p4] || h.owned[p6] || !h.adopted[p4] || !h.adopted[p6] || !h.owned[p4b] {
		t.Errorf("owned %v, adopted %v; want %s owned, %s and %s adopted", h.owned, h.adopted, p4b, p4, p6)
	}
	if err := h.Remove(p4); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4, p6, p4b})
	if !n.hasLocal(t, p4) || !n.hasLocal(t, p6) || n.hasLocal(t, p4b) {
		t.Errorf("after Close table local has %v; want the operator's %s and %s only", n.ipLocalRoutes(t), p4, p6)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p6}, nil)
	if !strings.Contains(logs.String(), `msg="VIP local route was already in table local: using it, it will not be removed"`) {
		t.Errorf("no log line says the route is adopted:\n%s", logs)
	}
}

func TestRouteRestartKeepsOwnership(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "route", "add", "local", p4c.String(), "dev", "lo", "table", "local") // the operator's
	h1, _ := newHost(t, n, routeConfig("lo", dir, p4, p4b, p4c, p6))
	mustAdd(t, h1, p4, p4b, p4c, p6)
	h1.abandon() // a crash: nothing removed

	// p4b is no longer configured: removed at start. p4 and p6 are still
	// anycastd's, p4c still the operator's.
	h2, logs := newHost(t, n, routeConfig("lo", dir, p4, p4c, p6))
	n.wantRoutes(t, "lo", []netip.Prefix{p4, p6}, []netip.Prefix{p4b})
	if !h2.owned[p4] || !h2.owned[p6] || h2.owned[p4c] {
		t.Errorf("after the restart owned = %v", h2.owned)
	}
	if !strings.Contains(logs.String(), `msg="VIP local route added by an earlier run is still anycastd's"`) {
		t.Errorf("logs:\n%s", logs)
	}
	mustAdd(t, h2, p4, p4c, p6)
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4, p6})
	if !n.hasLocal(t, p4c) {
		t.Errorf("the operator's local route for %s was removed", p4c)
	}
}

// A restart with another method: what the earlier run added for VIPs no
// longer configured goes at start; for the others it stays until the VIP's
// entry of the new method replaces it. Only what the journal records is
// touched.
func TestMethodSwitchAddressToRoute(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "addr", "add", p4c.String(), "dev", "lo") // the operator's
	h1, _ := newHost(t, n, hostConfig("lo", dir, p4, p4b, p4c, p6))
	mustAdd(t, h1, p4, p4b, p4c, p6)
	h1.abandon()

	h2, logs := newHost(t, n, routeConfig("lo", dir, p4, p4c, p6))
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p4c, p6}, []netip.Prefix{p4b})
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4, p6})
	mustAdd(t, h2, p4, p4c, p6)
	n.wantAddrs(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6})
	n.wantRoutes(t, "lo", []netip.Prefix{p4, p6}, []netip.Prefix{p4c})
	if !h2.adopted[p4c] {
		t.Errorf("%s, the operator's address, is not adopted", p4c)
	}
	for _, want := range []string{
		`msg="removed an address anycastd added with another [interface] method for a VIP no longer configured" interface=lo method=local-route prefix=203.0.113.43/32 method=address`,
		`msg="removed the VIP address an earlier run added with another [interface] method" interface=lo method=local-route vip=test prefix=203.0.113.42/32 method=address`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6, p4b})
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4, p6})
}

func TestMethodSwitchRouteToAddress(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "route", "add", "local", p4c.String(), "dev", "lo", "table", "local", "proto", "172") // not in the journal
	h1, _ := newHost(t, n, routeConfig("lo", dir, p4, p4b, p6))
	mustAdd(t, h1, p4, p4b, p6)
	h1.abandon()

	h2, _ := newHost(t, n, hostConfig("lo", dir, p4, p6))
	n.wantRoutes(t, "lo", []netip.Prefix{p4, p6, p4c}, []netip.Prefix{p4b})
	mustAdd(t, h2, p4, p6)
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6}, nil)
	n.wantRoutes(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6})
	// Withdrawn VIPs keep nothing of the earlier method either.
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6})
	n.wantRoutes(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6})
}

// A VIP never added again after the switch: Close removes the earlier
// method's entry; Remove does too.
func TestMethodSwitchLeftoverRemoved(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	h1, _ := newHost(t, n, hostConfig("lo", dir, p4, p6))
	mustAdd(t, h1, p4, p6)
	h1.abandon()
	h2, _ := newHost(t, n, routeConfig("lo", dir, p4, p6))
	if err := h2.Remove(p4); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p6}, []netip.Prefix{p4})
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6})
	if _, err := os.Stat(filepath.Join(dir, journalName)); !os.IsNotExist(err) {
		t.Errorf("state file left after a clean Close: %v", err)
	}
}

// A journal written before local routes (no kinds) records addresses.
func TestRouteOldJournalIsAddresses(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "addr", "add", p4.String(), "dev", "lo")
	n.ip(t, "addr", "add", p4b.String(), "dev", "lo")
	writeJournal(t, n, dir, bootID(), "add "+p4.String()+"\n", "add "+p4b.String()+"\n")
	h, _ := newHost(t, n, routeConfig("lo", dir, p4))
	n.wantAddrs(t, "lo", []netip.Prefix{p4}, []netip.Prefix{p4b})
	mustAdd(t, h, p4)
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4})
	n.wantRoutes(t, "lo", []netip.Prefix{p4}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantRoutes(t, "lo", nil, []netip.Prefix{p4})
}

func TestRouteWatchReportsDeletion(t *testing.T) {
	n := newTestNS(t)
	h, logs := newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6))
	reports := watch(t, h, p4)
	mustAdd(t, h, p4, p6)

	// Restored by the callback: reported gone, then back, and still
	// anycastd's.
	n.ip(t, "route", "del", "local", p4.String(), "dev", "lo", "table", "local")
	wantReport(t, reports, report{p4, false})
	wantReport(t, reports, report{p4, true})
	n.wantRoutes(t, "lo", []netip.Prefix{p4}, nil)

	// Not restored ("withdraw"): gone until someone puts it back; then it
	// is theirs.
	n.ip(t, "-6", "route", "del", "local", p6.String(), "dev", "lo", "table", "local")
	wantReport(t, reports, report{p6, false})
	n.ip(t, "-6", "route", "add", "local", p6.String(), "dev", "lo", "table", "local")
	wantReport(t, reports, report{p6, true})
	if !strings.Contains(logs.String(), `msg="VIP local route anycastd added was deleted from table local by someone else"`) {
		t.Errorf("no warning about the deletion:\n%s", logs)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !n.hasLocal(t, p6) || n.hasLocal(t, p4) {
		t.Errorf("after Close table local has %v; want only the operator's %s", n.ipLocalRoutes(t), p6)
	}
	select {
	case r := <-reports:
		t.Errorf("reported %v after Close", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// Deleting the link takes its IPv4 routes without a route event: the link
// event tells.
func TestRouteLinkDeletedIsCreatedAgain(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, routeConfig("acd0", t.TempDir(), p4, p6))
	reports := watch(t, h, p4, p6)
	mustAdd(t, h, p4, p6)
	n.ip(t, "link", "del", "acd0")
	got := map[report]bool{}
	for len(got) < 4 {
		select {
		case r := <-reports:
			got[r] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("reports so far %v, want both prefixes gone and back", got)
		}
	}
	n.wantRoutes(t, "acd0", []netip.Prefix{p4, p6}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n.link(t, "acd0") != nil {
		t.Errorf("acd0, created again by anycastd, still exists after Close")
	}
}

func TestRouteIPv6Warning(t *testing.T) {
	const msg = `level=WARN msg="IPv6 services cannot bind a VIP installed as a local route unless net.ipv6.ip_nonlocal_bind=1 (or IPV6_FREEBIND); a wildcard listener receives its traffic" interface=lo method=local-route ipv6_vips=2`
	p6b := netip.MustParsePrefix("2001:db8:42::2/128")
	n := newTestNS(t)
	_, logs := newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6, p6b))
	if c := strings.Count(logs.String(), msg); c != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", c, logs)
	}
	_, logs = newHost(t, n, hostConfig("lo", t.TempDir(), p4, p6, p6b))
	if strings.Contains(logs.String(), "IPv6 services cannot bind") {
		t.Errorf("warning with method address:\n%s", logs)
	}
	// The namespace's setting counts, not the caller's.
	if out, err := exec.Command("ip", "netns", "exec", n.name, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/ip_nonlocal_bind"); strings.TrimSpace(string(b)) == "1" {
		t.Log("ip_nonlocal_bind is 1 outside the test namespace too")
	}
	_, logs = newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6, p6b))
	if strings.Contains(logs.String(), "IPv6 services cannot bind") {
		t.Errorf("warning although ip_nonlocal_bind = 1 in the namespace:\n%s", logs)
	}
}

func TestParseJournalRoutes(t *testing.T) {
	in := journalHeader + "\nlink lo 1\nadd 203.0.113.42/32\nadd-route 203.0.113.43/32\nadd-route 2001:db8:42::1/128\n" +
		"del-route 203.0.113.43/32\nadd-route 203.0.113.44/32\nadd-route 203.0.11add-route 203.0.113.42/32\n"
	st, err := parseJournal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedPrefixes(st.Owned); len(got) != 1 || got[0] != p4 {
		t.Errorf("addresses = %v, want %s", got, p4)
	}
	if got, want := sortedPrefixes(st.Routes), []netip.Prefix{p4, p4c, p6}; !slices.Equal(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	if len(st.Torn) != 1 {
		t.Errorf("torn = %q, want one fragment", st.Torn)
	}
	st, err = parseJournal([]byte(journalHeader + "\nlink acd0 4\nadd-route 203.0.113.42/32\nlink acd0 5\n"))
	if err != nil || len(st.Routes) != 0 {
		t.Errorf("a new link index leaves routes %v (err %v), want none", st.Routes, err)
	}
}

// inNS runs f on a thread in n's network namespace (sockets f makes stay
// there).
func (n *testNS) inNS(t *testing.T, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.h); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		f()
		if err := netns.Set(orig); err != nil {
			errc <- err // the thread stays locked: it ends with this goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("entering %s: %v", n.name, err)
	}
}

// roundTrip connects to ln from n and checks a byte gets through.
func roundTrip(t *testing.T, n *testNS, ln net.Listener, addr string) {
	t.Helper()
	var c net.Conn
	var err error
	n.inNS(t, func() { c, err = net.DialTimeout("tcp", addr, 2*time.Second) })
	if err != nil {
		t.Fatalf("connecting to %s: %v", addr, err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := c.Write([]byte{42}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(s, b); err != nil || b[0] != 42 {
		t.Fatalf("reading from %s: %v %v", addr, b, err)
	}
}

// What a service can do with a VIP installed as a local route: an IPv4
// service binds the VIP itself; an IPv6 one cannot (ip_nonlocal_bind is 0),
// but a wildcard listener receives its traffic.
func TestRouteBind(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6))
	mustAdd(t, h, p4, p6)

	var ln4, ln6, any6 net.Listener
	var err4, err6, errAny error
	n.inNS(t, func() {
		ln4, err4 = net.Listen("tcp4", netip.AddrPortFrom(p4.Addr(), 0).String())
		ln6, err6 = net.Listen("tcp6", netip.AddrPortFrom(p6.Addr(), 0).String())
		any6, errAny = net.Listen("tcp6", "[::]:0")
	})
	if err4 != nil {
		t.Fatalf("IPv4 service binding %s: %v", p4.Addr(), err4)
	}
	defer ln4.Close()
	roundTrip(t, n, ln4, ln4.Addr().String())

	if err6 == nil {
		ln6.Close()
		t.Errorf("an IPv6 service bound %s, a local route only; the warning says it cannot", p6.Addr())
	} else if !errors.Is(err6, unix.EADDRNOTAVAIL) {
		t.Errorf("IPv6 service binding %s: %v, want EADDRNOTAVAIL", p6.Addr(), err6)
	}
	if errAny != nil {
		t.Fatal(errAny)
	}
	defer any6.Close()
	port := any6.Addr().(*net.TCPAddr).Port
	roundTrip(t, n, any6, netip.AddrPortFrom(p6.Addr(), uint16(port)).String())

	// Once anycastd has removed the route, the VIP is nobody's.
	if err := h.Remove(p4); err != nil {
		t.Fatal(err)
	}
	var err error
	n.inNS(t, func() {
		var ln net.Listener
		if ln, err = net.Listen("tcp4", netip.AddrPortFrom(p4.Addr(), 0).String()); err == nil {
			ln.Close()
		}
	})
	if err == nil {
		t.Errorf("%s can still be bound after Remove", p4.Addr())
	}
}

// A link set down loses its IPv6 routes (with route events): put back, the
// link is brought up again first.
func TestRouteLinkDownRestored(t *testing.T) {
	n := newTestNS(t)
	h, logs := newHost(t, n, routeConfig("lo", t.TempDir(), p4, p6))
	reports := watch(t, h, p4, p6)
	mustAdd(t, h, p4, p6)
	n.ip(t, "link", "set", "lo", "down")
	wantReport(t, reports, report{p6, false})
	wantReport(t, reports, report{p6, true})
	n.wantRoutes(t, "lo", []netip.Prefix{p4, p6}, nil)
	if l := n.link(t, "lo"); l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is still down")
	}
	if !strings.Contains(logs.String(), "interface is down: bringing it up") {
		t.Errorf("logs:\n%s", logs)
	}
}
