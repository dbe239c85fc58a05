package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/anycastd/anycastd/internal/bgptest"
)

// SIGHUP with a broken file changes nothing; with a good one it applies
// only the difference.
func TestSIGHUPReload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	cfg := baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr()))
	d := startDaemon(t, cfg)
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	_, updates, uptime := r.PeerState(t, edgeAddr)

	// A broken file: every problem logged, nothing changes.
	if err := os.WriteFile(d.path, []byte(cfg+"\n[[vip]]\nname = \"web\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	// One log line per problem, each with its line.
	wantLogs := []string{"reload refused", `problem="unknown key \"vip.bogus\"`, `problem="vip \"web\": name: \"web\" is already used`}
	bgptest.Eventually(t, wait, func() bool {
		for _, want := range wantLogs {
			if !strings.Contains(d.logs.String(), want) {
				return false
			}
		}
		return true
	}, "the refusal and each problem in the log", func() string { return d.logs.String() })
	_, after, up := r.PeerState(t, edgeAddr)
	if after != updates || !up.Equal(uptime) || !hasVIPs(t, r)() {
		t.Fatalf("a refused reload changed something: %d UPDATEs, session since %v (was %v)", after-updates, up, uptime)
	}

	// A good file adding a VIP: announced, nothing else touched.
	extra := netip.MustParsePrefix("203.0.113.44/32")
	good := cfg + fmt.Sprintf("\n[[vip]]\nname = \"api\"\nprefixes = [%q]\nchecks = [\"svc\"]\n", extra)
	if err := os.WriteFile(d.path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[extra]; return ok }, "the added VIP at the router", nil)
	_, after, up = r.PeerState(t, edgeAddr)
	if after != updates+1 || !up.Equal(uptime) || !hasVIPs(t, r)() {
		t.Errorf("adding a VIP by reload cost %d UPDATEs and reset the session (since %v, was %v); want 1 and no reset",
			after-updates, up, uptime)
	}
}
