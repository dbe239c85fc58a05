//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

var nsSeq atomic.Int64

// hostNS makes a network namespace for one test (deleted after it) with lo
// up. Creating namespaces needs root.
func hostNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	name := fmt.Sprintf("acd-e2e-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
	return name
}

// hostConfig announces vip4 and vip6 while `true` passes, with the
// addresses on dev; the peer is never reachable (the addresses go on the
// interface whether a session is up or not).
func hostConfig(dev, stateDir string) string {
	return fmt.Sprintf(`
[bgp]
asn = 65001
router_id = "198.18.1.2"
listen_port = 0

[[bgp.peer]]
address = "127.0.0.2"
asn = 65000
families = ["ipv4", "ipv6"]
next_hop_ipv6 = "2001:db8::2"

[interface]
name = %q
state_dir = %q

[api]
listen = ""

[metrics]
listen = ""

[[check]]
name = "svc"
type = "exec"
command = ["true"]
interval = "100ms"
rise = 2

[[vip]]
name = "web"
prefixes = ["%s", "%s"]
checks = ["svc"]
`, dev, stateDir, vip4, vip6)
}

// startIn runs anycastd in ns, prefixed by wrap (e.g. setpriv).
func startIn(t *testing.T, ns, cfg string, wrap ...string) *daemon {
	t.Helper()
	return startDaemon(t, cfg, append([]string{"ip", "netns", "exec", ns}, wrap...)...)
}

func (d *daemon) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err // for cleanup
		return err
	case <-time.After(wait):
		t.Fatal("anycastd did not exit")
		return nil
	}
}

func TestHostAddressesFollowTheVIP(t *testing.T) {
	ns := hostNS(t)
	dev := "acd0"
	// The interface is anycastd's to create where the kernel has dummy
	// links; elsewhere a veth made beforehand stands in (and must stay).
	created := exec.Command("ip", "-n", ns, "link", "add", "probe0", "type", "dummy").Run() == nil
	if created {
		exec.Command("ip", "-n", ns, "link", "del", "probe0").Run()
	} else if out, err := exec.Command("ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", "acd0p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}
	d := startIn(t, ns, hostConfig(dev, t.TempDir()))
	both := func() bool { a := testutil.IPAddrs(t, ns, dev); return a[vip4] && a[vip6] }
	bgptest.Eventually(t, wait, both, "VIP addresses on "+dev, nil)

	// Deleted by hand: anycastd puts it back (on_address_lost = "restore").
	if out, err := exec.Command("ip", "-n", ns, "addr", "del", vip4.String(), "dev", dev).CombinedOutput(); err != nil {
		t.Fatalf("ip addr del: %v\n%s", err, out)
	}
	bgptest.Eventually(t, wait, both, "VIP address restored after it was deleted by hand", nil)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t); err != nil {
		t.Fatalf("anycastd exited with %v after SIGTERM, want 0", err)
	}
	a := testutil.IPAddrs(t, ns, dev)
	switch {
	case created && a != nil:
		t.Errorf("%s, created by anycastd, still exists after exit: %v", dev, a)
	case !created && a == nil:
		t.Errorf("%s, not created by anycastd, was deleted", dev)
	case a[vip4] || a[vip6]:
		t.Errorf("VIP addresses left on %s after exit: %v", dev, a)
	}
}

func TestHostWithoutNetAdmin(t *testing.T) {
	ns := hostNS(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv to drop CAP_NET_ADMIN")
	}
	d := startIn(t, ns, hostConfig("lo", t.TempDir()), "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin")
	if code := exitCode(d.wait(t)); code != 1 {
		t.Fatalf("exit status %d without CAP_NET_ADMIN, want 1", code)
	}
	var lines []string
	for _, l := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(l, "CAP_NET_ADMIN") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "manage = false") || !strings.Contains(lines[0], "operation not permitted") {
		t.Errorf("want one line saying CAP_NET_ADMIN is needed, got:\n%s", d.logs)
	}
	if a := testutil.IPAddrs(t, ns, "lo"); a[vip4] || a[vip6] {
		t.Errorf("addresses added without CAP_NET_ADMIN: %v", a)
	}
}
