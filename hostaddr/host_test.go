//go:build linux

package hostaddr

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/testutil"
)

var (
	p4  = netip.MustParsePrefix("203.0.113.42/32")
	p4b = netip.MustParsePrefix("203.0.113.43/32")
	p4c = netip.MustParsePrefix("203.0.113.44/32")
	p6  = netip.MustParsePrefix("2001:db8:42::1/128")
)

var nsSeq atomic.Int64

// testNS is a network namespace made for one test and deleted after it,
// whether it passes or not.
type testNS struct {
	name string
	h    netns.NsHandle
	// newLink is how links are made: dummy, or veth where the kernel has no
	// dummy driver.
	newLink func(string) netlink.Link
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	name := fmt.Sprintf("acd-host-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	n := &testNS{name: name, h: h}
	if exec.Command("ip", "-n", name, "link", "add", "probe0", "type", "dummy").Run() == nil {
		n.ip(t, "link", "del", "probe0")
	} else {
		t.Log("the kernel has no dummy links: veth links stand in for them")
		n.newLink = func(name string) netlink.Link {
			return &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
		}
	}
	return n
}

// addLink creates a link as someone else would (dummy, or veth).
func (n *testNS) addLink(t *testing.T, name string) {
	t.Helper()
	if n.newLink == nil {
		n.ip(t, "link", "add", name, "type", "dummy")
	} else {
		n.ip(t, "link", "add", name, "type", "veth", "peer", "name", name+"p")
	}
	n.ip(t, "link", "set", name, "up")
}

// linkType is the type of the links anycastd creates in n.
func (n *testNS) linkType() string {
	if n.newLink == nil {
		return "dummy"
	}
	return "veth"
}

// ip runs `ip -n NS args...`.
func (n *testNS) ip(t testing.TB, args ...string) { n.ipOut(t, args...) }

// ipOut runs `ip -n NS args...` and returns its output.
func (n *testNS) ipOut(t testing.TB, args ...string) string {
	t.Helper()
	args = append([]string{"-n", n.name}, args...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nlAddrs returns the addresses on dev read over netlink, with their flags;
// nil if dev does not exist.
func (n *testNS) nlAddrs(t *testing.T, dev string) map[netip.Prefix]int {
	t.Helper()
	nl, err := netlink.NewHandleAt(n.h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	link, err := nl.LinkByName(dev)
	if err != nil {
		return nil
	}
	addrs, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Prefix]int{}
	for _, a := range addrs {
		p, _ := prefixOf(a.IPNet)
		got[p] = a.Flags
	}
	return got
}

func (n *testNS) link(t *testing.T, dev string) netlink.Link {
	t.Helper()
	nl, err := netlink.NewHandleAt(n.h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	l, _ := nl.LinkByName(dev)
	return l
}

// wantAddrs checks, with netlink and with `ip -j`, that each prefix in on is
// on dev and each in off is not.
func (n *testNS) wantAddrs(t *testing.T, dev string, on, off []netip.Prefix) {
	t.Helper()
	nl, ip := n.nlAddrs(t, dev), testutil.IPAddrs(t, n.name, dev)
	for _, p := range on {
		if _, ok := nl[p]; !ok {
			t.Errorf("netlink: %s is not on %s; has %v", p, dev, nl)
		}
		if !ip[p] {
			t.Errorf("ip -j: %s is not on %s; has %v", p, dev, ip)
		}
	}
	for _, p := range off {
		if _, ok := nl[p]; ok {
			t.Errorf("netlink: %s is still on %s", p, dev)
		}
		if ip[p] {
			t.Errorf("ip -j: %s is still on %s", p, dev)
		}
	}
}

func hostConfig(dev, stateDir string, prefixes ...netip.Prefix) *config.Config {
	return &config.Config{
		Interface: config.Interface{Name: dev, Manage: true, StateDir: stateDir},
		VIPs:      []config.VIP{{Name: "web", Prefixes: prefixes}},
	}
}

// newHost starts a Host in n; logs go to the test log on failure.
func newHost(t *testing.T, n *testNS, cfg *config.Config) (*Host, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	h, err := New(cfg, Options{Namespace: &n.h, Logger: slog.New(slog.NewTextHandler(logs, nil)), newLink: n.newLink})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("host logs:\n%s", logs)
		}
	})
	return h, logs
}

// abandon drops the Host as a crash would: nothing is removed.
func (h *Host) abandon() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.release()
}

func mustAdd(t *testing.T, h *Host, ps ...netip.Prefix) {
	t.Helper()
	for _, p := range ps {
		if err := h.Add(p, "test"); err != nil {
			t.Fatalf("Add(%s): %v", p, err)
		}
	}
}

func TestHostLoopback(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	h, _ := newHost(t, n, hostConfig("lo", dir, p4, p6))
	if l := n.link(t, "lo"); l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is down after New")
	}
	mustAdd(t, h, p4, p6)
	mustAdd(t, h, p4) // again: no error
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6}, nil)
	if f := n.nlAddrs(t, "lo")[p6]; f&unix.IFA_F_NODAD == 0 || f&unix.IFA_F_NOPREFIXROUTE == 0 {
		t.Errorf("%s flags %#x: want nodad and noprefixroute", p6, f)
	}
	// No prefix route in table main for the IPv6 VIP (the local route in
	// table local delivers its traffic), and the host accepts it.
	if out := n.ipOut(t, "-6", "route", "show", "table", "main", p6.String()); strings.TrimSpace(out) != "" {
		t.Errorf("table main has a route for %s: %s", p6, out)
	}
	if out := n.ipOut(t, "-6", "route", "show", "table", "local", p6.String()); !strings.Contains(out, "local "+p6.Addr().String()) {
		t.Errorf("table local lacks the local route of %s: %q", p6, out)
	}
	if err := h.Remove(p4); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p6}, []netip.Prefix{p4})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6})
	if _, err := os.Stat(filepath.Join(dir, journalName)); !os.IsNotExist(err) {
		t.Errorf("state file left after a clean Close: %v", err)
	}
	if err := h.Add(p4, "test"); err == nil {
		t.Errorf("Add after Close succeeded")
	}
}

func TestHostDummyLink(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, hostConfig("acd0", t.TempDir(), p4, p6))
	l := n.link(t, "acd0")
	if l == nil || l.Type() != n.linkType() || l.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("acd0 after New: %+v, want an up %s link", l, n.linkType())
	}
	mustAdd(t, h, p4, p6)
	n.wantAddrs(t, "acd0", []netip.Prefix{p4, p6}, nil)
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if l := n.link(t, "acd0"); l != nil {
		t.Errorf("acd0, created by anycastd, still exists after Close")
	}
}

func TestHostExistingDummyLinkStays(t *testing.T) {
	n := newTestNS(t)
	n.addLink(t, "acd1")
	h, _ := newHost(t, n, hostConfig("acd1", t.TempDir(), p4, p6))
	mustAdd(t, h, p4, p6)
	n.wantAddrs(t, "acd1", []netip.Prefix{p4, p6}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n.link(t, "acd1") == nil {
		t.Fatalf("acd1, not created by anycastd, was deleted")
	}
	n.wantAddrs(t, "acd1", nil, []netip.Prefix{p4, p6})
}

func TestHostCreatedLinkKeptWithForeignAddresses(t *testing.T) {
	n := newTestNS(t)
	h, logs := newHost(t, n, hostConfig("acd0", t.TempDir(), p4))
	mustAdd(t, h, p4)
	other := netip.MustParsePrefix("192.0.2.1/32")
	n.ip(t, "addr", "add", other.String(), "dev", "acd0")
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n.link(t, "acd0") == nil {
		t.Fatalf("acd0 was deleted although it holds %s, not anycastd's", other)
	}
	n.wantAddrs(t, "acd0", []netip.Prefix{other}, []netip.Prefix{p4})
	if !strings.Contains(logs.String(), "keeping the interface anycastd created") {
		t.Errorf("no log line says why the link stays:\n%s", logs)
	}
}

func TestHostAdoptsExistingAddresses(t *testing.T) {
	n := newTestNS(t)
	n.ip(t, "addr", "add", p4.String(), "dev", "lo")
	n.ip(t, "addr", "add", p6.String(), "dev", "lo", "nodad")
	h, _ := newHost(t, n, hostConfig("lo", t.TempDir(), p4, p6, p4b))
	mustAdd(t, h, p4, p6, p4b)
	if err := h.Remove(p4); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6, p4b}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6}, []netip.Prefix{p4b})
}

func TestHostWarnsAboutOtherInterfaces(t *testing.T) {
	n := newTestNS(t)
	n.addLink(t, "other0")
	n.ip(t, "addr", "add", p4.String(), "dev", "other0")
	n.ip(t, "addr", "add", "2001:db8:42::1/64", "dev", "other0", "nodad")
	_, logs := newHost(t, n, hostConfig("lo", t.TempDir(), p4, p6))
	var warns []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "VIP address is also on another interface") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 2 {
		t.Fatalf("got %d warnings, want one per address:\n%s", len(warns), logs)
	}
	for i, want := range []string{"prefix=203.0.113.42/32", "prefix=2001:db8:42::1/64"} {
		if !strings.Contains(warns[i], want) || !strings.Contains(warns[i], "on=other0") || !strings.Contains(warns[i], "level=WARN") {
			t.Errorf("warning %d = %q, want %s on=other0", i, warns[i], want)
		}
	}
}

type report struct {
	prefix  netip.Prefix
	present bool
}

// watch runs h.Watch; reports arrive on the channel. restore says which
// prefixes the callback adds back, as the announcer does with "restore".
func watch(t *testing.T, h *Host, restore ...netip.Prefix) <-chan report {
	ch := make(chan report, 16)
	stop, err := h.Watch(func(p netip.Prefix, present bool) {
		if !present && containsPrefix(restore, p) {
			if err := h.Add(p, "test"); err != nil {
				t.Errorf("restoring %s: %v", p, err)
			}
		}
		ch <- report{p, present}
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(stop)
	return ch
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func wantReport(t *testing.T, ch <-chan report, want report) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("reported %v, want %v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no report, want %v", want)
	}
}

func TestHostWatchReportsDeletion(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, hostConfig("lo", t.TempDir(), p4, p6))
	reports := watch(t, h, p4)
	mustAdd(t, h, p4, p6)

	// Restored by the callback: reported gone, then back, and still
	// anycastd's.
	n.ip(t, "addr", "del", p4.String(), "dev", "lo")
	wantReport(t, reports, report{p4, false})
	wantReport(t, reports, report{p4, true})
	n.wantAddrs(t, "lo", []netip.Prefix{p4}, nil)

	// Not restored ("withdraw"): gone until someone puts it back; then it
	// is theirs.
	n.ip(t, "addr", "del", p6.String(), "dev", "lo")
	wantReport(t, reports, report{p6, false})
	n.ip(t, "addr", "add", p6.String(), "dev", "lo", "nodad")
	wantReport(t, reports, report{p6, true})

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p6}, []netip.Prefix{p4})
	select {
	case r := <-reports:
		t.Errorf("reported %v after Close", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// A VIP a reload added (not in the configuration the Host started with):
// its address is watched like the others, and the logs name its VIP.
func TestHostWatchesVIPAddedLater(t *testing.T) {
	n := newTestNS(t)
	h, logs := newHost(t, n, hostConfig("lo", t.TempDir(), p4))
	reports := watch(t, h)
	if err := h.Add(p6, "api"); err != nil {
		t.Fatal(err)
	}
	n.ip(t, "addr", "del", p6.String(), "dev", "lo")
	wantReport(t, reports, report{p6, false})
	for _, want := range []string{`msg="added VIP address" interface=lo vip=api prefix=` + p6.String(),
		`vip=api prefix=` + p6.String()} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestHostLinkDeletedIsCreatedAgain(t *testing.T) {
	n := newTestNS(t)
	h, _ := newHost(t, n, hostConfig("acd0", t.TempDir(), p4, p6))
	reports := watch(t, h, p4, p6)
	mustAdd(t, h, p4, p6)
	n.ip(t, "link", "del", "acd0")
	got := map[report]bool{}
	for range 4 {
		select {
		case r := <-reports:
			got[r] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("reports so far %v, want both prefixes gone and back", got)
		}
	}
	n.wantAddrs(t, "acd0", []netip.Prefix{p4, p6}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n.link(t, "acd0") != nil {
		t.Errorf("acd0, created again by anycastd, still exists after Close")
	}
}
