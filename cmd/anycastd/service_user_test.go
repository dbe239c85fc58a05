//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

// TestHostAsServiceUser runs anycastd as contrib/systemd/anycastd.service
// and the Kubernetes DaemonSet do: an unprivileged user whose only
// capabilities are CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (ambient), with
// no_new_privs. It must start, listen on port 179, put the VIP addresses
// on lo, serve the API socket in its state directory, and on SIGTERM
// remove them and exit 0. (netlink's handle for "this namespace" used to
// call setns(2), which needs CAP_SYS_ADMIN: it failed at start.)
func TestHostAsServiceUser(t *testing.T) {
	ns := hostNS(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run as another user with ambient capabilities")
	}
	// The state directory is the service user's, as RuntimeDirectory=
	// makes it; its parents are searchable.
	const nobody = 65534
	parent := t.TempDir()
	if err := os.Chmod(filepath.Dir(parent), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(parent, "run")
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(state, "api.sock")
	cfg := strings.Replace(hostConfig("lo", state), "listen_port = 0\n", "listen_port = 179\n", 1)
	cfg = strings.Replace(cfg, "[api]\nlisten = \"\"", "[api]\nlisten = \"unix://"+socket+"\"", 1)
	caps := "-all,+net_admin,+net_bind_service"
	d := startIn(t, ns, cfg, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps="+caps, "--ambient-caps="+caps, "--bounding-set="+caps, "--no-new-privs")

	both := func() bool { a := testutil.IPAddrs(t, ns, "lo"); return a[vip4] && a[vip6] }
	bgptest.Eventually(t, wait, both, "VIP addresses on lo, added as the service user", func() string { return d.logs.String() })
	bgptest.Eventually(t, wait, func() bool {
		out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :179").Output()
		return strings.Contains(string(out), ":179")
	}, "the BGP listener on port 179", func() string { return d.logs.String() })
	if fi, err := os.Stat(socket); err != nil {
		t.Errorf("API socket: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody {
		t.Errorf("API socket owned by uid %d, want the service user's %d", st.Uid, nobody)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t); err != nil {
		t.Fatalf("anycastd exited with %v after SIGTERM, want 0", err)
	}
	if a := testutil.IPAddrs(t, ns, "lo"); a[vip4] || a[vip6] {
		t.Errorf("VIP addresses left on lo after exit: %v", a)
	}
}
