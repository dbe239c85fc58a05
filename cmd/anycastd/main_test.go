package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

const wait = 15 * time.Second

var (
	binary     string
	edgeAddr   = netip.MustParseAddr("127.0.0.1")
	routerAddr = netip.MustParseAddr("127.0.0.2")
	vip4       = netip.MustParsePrefix("203.0.113.42/32")
	vip6       = netip.MustParsePrefix("2001:db8:42::1/128")
)

// TestMain builds the anycastd binary once; the tests run it as users do.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anycastd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "anycastd")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building anycastd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type daemon struct {
	cmd  *exec.Cmd
	logs *testutil.SyncBuffer
	done chan error
	path string // its configuration file
}

// startDaemon writes cfg to a file and runs anycastd on it until the test
// ends (SIGKILL at cleanup if it is still running), behind the command
// prefix wrap if any (e.g. ip netns exec NS). Its logs are printed when the
// test fails.
func startDaemon(t *testing.T, cfg string, wrap ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, cfg, nil, wrap...)
}

// startDaemonEnv is startDaemon with env added to the environment.
func startDaemonEnv(t *testing.T, cfg string, env []string, wrap ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	// Readable by a daemon run as another user (TestHostAsServiceUser).
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "anycastd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(wrap), binary, "-config", path, "-log-level", "debug")
	d := &daemon{logs: &testutil.SyncBuffer{}, done: make(chan error, 1), path: path}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if env != nil {
		d.cmd.Env = append(os.Environ(), env...)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("anycastd logs:\n%s", d.logs)
		}
	})
	return d
}

// baseConfig is a daemon with one peer (the router) and one VIP guarded by
// the check in checkTOML.
func baseConfig(r *bgptest.Router, checkTOML string) string {
	return fmt.Sprintf(`
[bgp]
asn = 65001
router_id = "198.18.1.2"
listen_port = 0

[[bgp.peer]]
address = "%s"
port = %d
asn = %d
hold_time = "9s"
connect_retry = "1s"
local_address = "%s"
families = ["ipv4", "ipv6"]
next_hop_ipv6 = "2001:db8::2"

[node]
drain_time = "1s"

[interface]
manage = false

[api]
listen = ""

[metrics]
listen = ""

[[check]]
name = "svc"
interval = "100ms"
timeout = "50ms"
rise = 2
fall = 2
%s

[[vip]]
name = "web"
prefixes = ["%s", "%s"]
checks = ["svc"]
communities = ["65001:100"]
`, r.Addr, r.Port, r.ASN, edgeAddr, checkTOML, vip4, vip6)
}

func startRouter(t *testing.T) *bgptest.Router {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	return r
}

func hasVIPs(t *testing.T, r *bgptest.Router) func() bool {
	return func() bool {
		got := r.Received(t)
		_, ok4 := got[vip4]
		_, ok6 := got[vip6]
		return ok4 && ok6
	}
}

func hasNone(t *testing.T, r *bgptest.Router) func() bool {
	return func() bool { return len(r.Received(t)) == 0 }
}

func TestTCPCheckDrivesAnnouncement(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	r := startRouter(t)
	startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", addr)))

	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced once the tcp check rises", nil)
	if nh := r.Received(t)[vip6].NextHop; nh != "2001:db8::2" {
		t.Errorf("IPv6 next hop at router = %s, want 2001:db8::2", nh)
	}

	ln.Close()
	bgptest.Eventually(t, wait, hasNone(t, r), "withdrawal after the listener closed", nil)

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("reopening %s: %v", addr, err)
	}
	defer ln.Close()
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back after the listener reopened", nil)
}

func TestHTTPCheckDrivesAnnouncement(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	r := startRouter(t)
	d := startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"http\"\nurl = %q", srv.URL+"/healthz")))

	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced once the http check rises", nil)
	healthy.Store(false)
	bgptest.Eventually(t, wait, hasNone(t, r), "withdrawal while the service answers 503", nil)
	if !strings.Contains(d.logs.String(), "503") {
		t.Errorf("logs do not say why the VIP was withdrawn (status 503):\n%s", d.logs)
	}
	healthy.Store(true)
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back once the service answers 200", nil)
}

func TestSIGTERMDrainsWithdrawsAndExitsZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	d := startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())))
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	_, before, _ := r.PeerState(t, edgeAddr)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// RFC 8326: first the VIPs come with GRACEFUL_SHUTDOWN, for drain_time.
	bgptest.Eventually(t, wait, func() bool {
		return slices.Contains(r.Received(t)[vip4].Communities, "65535:0")
	}, "VIP with graceful-shutdown 65535:0 during the drain", nil)
	select {
	case err := <-d.done:
		d.done <- err // for cleanup
		if err != nil {
			t.Fatalf("anycastd exited with %v after SIGTERM, want exit status 0", err)
		}
	case <-time.After(wait):
		t.Fatal("anycastd did not exit after SIGTERM")
	}
	bgptest.Eventually(t, wait, hasNone(t, r), "router holds no VIP after SIGTERM", nil)
	// The VIPs were withdrawn with an UPDATE before the session closed.
	_, after, _ := r.PeerState(t, edgeAddr)
	if after <= before {
		t.Errorf("router received %d UPDATEs before SIGTERM and %d after; want a withdrawal UPDATE", before, after)
	}
}

func TestCheckConfig(t *testing.T) {
	out, err := exec.Command(binary, "-check-config", "../../examples/anycastd.toml").CombinedOutput()
	if err != nil {
		t.Fatalf("-check-config on the example: %v\n%s", err, out)
	}
	for _, want := range []string{"configuration OK", "203.0.113.42/32", "2001:db8:42::1/128", "198.18.1.1",
		"Drain: announced with GRACEFUL_SHUTDOWN for 5s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-check-config output lacks %q:\n%s", want, out)
		}
	}

	// A maintenance file (a migrated ExaBGP --disable) is shown.
	maint := filepath.Join(t.TempDir(), "maint.toml")
	example, err := os.ReadFile("../../examples/anycastd.toml")
	if err != nil {
		t.Fatal(err)
	}
	withFile := strings.Replace(string(example), `# maintenance_file = "/etc/anycastd/maintenance.web"`, `maintenance_file = "/etc/anycastd/maintenance.web"`, 1)
	if err := os.WriteFile(maint, []byte(withFile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "-check-config", maint).CombinedOutput()
	if want := "Drain of VIP web: announced with GRACEFUL_SHUTDOWN for 5s before a withdrawal (SIGTERM, anycastctl drain); maintenance file /etc/anycastd/maintenance.web drains it while it exists"; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("-check-config with a VIP's maintenance_file: %v; output lacks %q:\n%s", err, want, out)
	}

	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[bgp]\nasn = 65001\nrouter_id = \"198.18.1.2\"\nbogus = 1\n"), 0o644)
	out, err = exec.Command(binary, "-check-config", bad).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Errorf("-check-config on a bad file exited %d, want 1\n%s", code, out)
	}
	if !strings.Contains(string(out), `unknown key "bgp.bogus" (line 4)`) {
		t.Errorf("error does not name the key and line:\n%s", out)
	}

	// -diff without -check-config is a usage error: the daemon must not
	// start on a command line meant to compare two files.
	out, err = exec.Command(binary, "-diff", "../../examples/anycastd.toml", "-config", "../../examples/anycastd.toml").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "-diff works only with -check-config") {
		t.Errorf("-diff without -check-config exited %d, want 2 with a usage error:\n%s", code, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// The metrics endpoint tells what is announced and why, as a scrape sees it.
func TestMetricsEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	port := bgptest.FreePort(t, edgeAddr)
	cfg := strings.Replace(baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())),
		"[metrics]\nlisten = \"\"", fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"", port), 1)
	startDaemon(t, cfg)
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)

	scrape := func() string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return b.String()
	}
	wantLines := []string{
		`anycastd_vip_announced{prefix="203.0.113.42/32",vip="web"} 1`,
		`anycastd_vip_state{state="up",vip="web"} 1`,
		`anycastd_check_up{check="svc",type="tcp"} 1`,
		`anycastd_peer_up{peer="127.0.0.2",peer_asn="65000"} 1`,
		`anycastd_peer_prefixes_advertised{peer="127.0.0.2"} 2`,
		`anycastd_vip_transitions_total{to="up",vip="web"} 1`,
		`anycastd_check_results_total{check="svc",outcome="pass",type="tcp"}`,
		`anycastd_config_last_reload_successful 1`,
		`anycastd_build_info{`,
	}
	bgptest.Eventually(t, wait, func() bool {
		body := scrape()
		for _, l := range wantLines {
			if !strings.Contains(body, l) {
				return false
			}
		}
		return true
	}, "metrics reflecting the announcement", func() string {
		var missing []string
		body := scrape()
		for _, l := range wantLines {
			if !strings.Contains(body, l) {
				missing = append(missing, l)
			}
		}
		return fmt.Sprintf("missing %q", missing)
	})
}

// -h prints the usage on stdout and exits 0; a bad flag prints the error
// and the usage on stderr and exits 2 (the man page's "bad command line").
func TestHelpAndBadFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "Usage: anycastd") || errOut.Len() != 0 {
		t.Errorf("-h: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout only", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-bogus"}, &out, &errOut); code != 2 || out.Len() != 0 ||
		!strings.Contains(errOut.String(), "-bogus") || strings.Count(errOut.String(), "Usage:") != 1 {
		t.Errorf("-bogus: exit %d, stdout %q, stderr %q; want 2 and the error with one usage on stderr", code, out.String(), errOut.String())
	}
}
