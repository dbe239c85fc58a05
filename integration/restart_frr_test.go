//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// Planned restart with graceful restart (RFC 4724) against FRR, on the
// sessions-frr topology: the FRR side of TestPlannedRestart.

// frrWatch polls FRR's BGP table for prefixes from one peer and counts the
// polls where one of them was missing, and those where it was stale.
type frrWatch struct {
	poller
	vty    *vtyConn
	polls  int
	stale  int
	misses []string // "prefix at +offset"
	errs   []string
}

func watchFRR(l *lab.Lab, router, peer string, prefixes ...string) (*frrWatch, error) {
	vty, err := dialVty(l, router, "bgpd")
	if err != nil {
		return nil, err
	}
	w := &frrWatch{vty: vty}
	start := time.Now()
	w.poller = startPoller(func() {
		for _, p := range prefixes {
			paths, err := vty.bgp(p)
			if err != nil {
				w.errs = append(w.errs, err.Error())
				continue
			}
			w.polls++
			i := slices.IndexFunc(paths, func(bp frrBGPPath) bool { return bp.Peer == peer && bp.Best })
			switch {
			case i < 0:
				w.misses = append(w.misses, fmt.Sprintf("%s at +%v", p, ms(time.Since(start))))
			case paths[i].Stale:
				w.stale++
			}
		}
	})
	return w, nil
}

// vtyConn is a connection to one FRR daemon's vty socket, speaking
// vtysh's protocol: a command line ending in NUL, answered by the output
// and three NULs and a status byte. A poll then costs no process start.
type vtyConn struct {
	c   net.Conn
	buf []byte
}

func dialVty(l *lab.Lab, router, daemon string) (*vtyConn, error) {
	c, err := net.Dial("unix", filepath.Join(l.NodeDir(router), daemon+".vty"))
	if err != nil {
		return nil, err
	}
	return &vtyConn{c: c, buf: make([]byte, 64<<10)}, nil
}

func (v *vtyConn) Close() error { return v.c.Close() }

func (v *vtyConn) run(cmd string) ([]byte, error) {
	v.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := v.c.Write(append([]byte(cmd), 0)); err != nil {
		return nil, err
	}
	var out []byte
	for {
		n, err := v.c.Read(v.buf)
		out = append(out, v.buf[:n]...)
		if k := len(out); k >= 4 && bytes.Equal(out[k-4:k-1], []byte{0, 0, 0}) {
			if status := out[k-1]; status != 0 {
				return nil, fmt.Errorf("%q: status %d: %s", cmd, status, out[:k-4])
			}
			return out[:k-4], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// bgp returns the paths for prefix, as frrBGP does.
func (v *vtyConn) bgp(prefix string) ([]frrBGPPath, error) {
	out, err := v.run(fmt.Sprintf("show bgp %s unicast %s json", familyOf(prefix), prefix))
	if err != nil {
		return nil, err
	}
	var p bgpPrefixJSON
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", out, err)
	}
	return p.paths(), nil
}

func (w *frrWatch) end() { w.poller.end(); w.vty.Close() }

// TestPlannedRestartFRR: FRR with `bgp graceful-restart` and a site with
// graceful_restart (one IPv4 session carrying both families). FRR shows the
// site's graceful-restart capability with both families (Forwarding State)
// and the restart time. Then the site's anycastd restarts with SIGUSR2
// while FRR's table is polled every 20 ms and the client polls the IPv4
// VIP: FRR keeps both VIPs throughout (stale while the site is away), and
// no request fails.
func TestPlannedRestartFRR(t *testing.T) {
	needLab(t, lab.RoleFRR)
	const peer = "198.18.61.2"
	site := siteConfFRR("address = \"198.18.61.1\"\nfamilies = [\"ipv4\", \"ipv6\"]\nnext_hop_ipv6 = \"2001:db8:ff61::2\"", frrVIP4, frrVIP6)
	site = strings.Replace(site, "listen_port = 0\n",
		fmt.Sprintf("listen_port = 0\ngraceful_restart = true\ngraceful_restart_time = %q\n", grRestart), 1)
	if !strings.Contains(site, "graceful_restart = true") {
		t.Fatalf("cannot turn graceful restart on in:\n%s", site)
	}
	l := startSessionsFRR(t, frrSession{
		neighbor: peer,
		families: []string{"ipv4", "ipv6"},
		router:   []string{"bgp graceful-restart"},
	}, site)
	steady := all(
		established(l.Lab, "router", peer),
		frrBGPVia(l.Lab, "router", frrVIP4, peer),
		frrBGPVia(l.Lab, "router", frrVIP6, "2001:db8:ff61::2 global"),
		frrInstalled(l.Lab, "router", frrVIP4, peer, "eth-r"),
		frrInstalled(l.Lab, "router", frrVIP6, "2001:db8:ff61::2", "eth-r"),
	)
	took := eventually(t, 20*time.Second, 50*time.Millisecond, "FRR has both VIPs from the site", steady)
	eventually(t, 5*time.Second, 50*time.Millisecond, "the client reaches the IPv4 VIP", answeredBy(l.Lab, "client", frrURL4, "site"))
	t.Logf("FRR has both VIPs %v after the lab was up", ms(took))

	// The graceful-restart capability FRR received: both families with
	// the Forwarding State bit, and the restart time.
	var nbr map[string]struct {
		Caps struct {
			GracefulRestart string         `json:"gracefulRestart"`
			RemoteTimerMsec int            `json:"gracefulRestartRemoteTimerMsecs"`
			Families        map[string]any `json:"addressFamiliesByPeer"`
		} `json:"neighborCapabilities"`
		GR struct {
			RemoteGrMode string `json:"remoteGrMode"`
			Timers       struct {
				Received int `json:"receivedRestartTimer"`
			} `json:"timers"`
			IPv4 struct {
				FBit bool `json:"fBit"`
			} `json:"ipv4Unicast"`
			IPv6 struct {
				FBit bool `json:"fBit"`
			} `json:"ipv6Unicast"`
		} `json:"gracefulRestartInfo"`
	}
	if err := l.VtyshJSON("router", "show bgp neighbors "+peer+" json", &nbr); err != nil {
		t.Fatal(err)
	}
	n := nbr[peer]
	t.Logf("FRR, the site's graceful-restart capability: %s, remote mode %s, restart time %d ms (%d s), families %v, F bit ipv4 %v ipv6 %v",
		n.Caps.GracefulRestart, n.GR.RemoteGrMode, n.Caps.RemoteTimerMsec, n.GR.Timers.Received, n.Caps.Families, n.GR.IPv4.FBit, n.GR.IPv6.FBit)
	if n.Caps.GracefulRestart != "advertisedAndReceived" || n.GR.RemoteGrMode != "Restart" {
		t.Errorf("FRR: graceful restart %q, remote mode %q, want advertisedAndReceived, Restart", n.Caps.GracefulRestart, n.GR.RemoteGrMode)
	}
	if want := int(grRestart.Seconds()); n.Caps.RemoteTimerMsec != want*1000 || n.GR.Timers.Received != want {
		t.Errorf("FRR: received restart time %d ms / %d s, want %d s", n.Caps.RemoteTimerMsec, n.GR.Timers.Received, want)
	}
	for _, f := range []string{"ipv4Unicast", "ipv6Unicast"} {
		if m, _ := n.Caps.Families[f].(map[string]any); m["preserved"] != true {
			t.Errorf("FRR: the site's capability does not preserve %s: %v", f, n.Caps.Families)
		}
	}
	if !n.GR.IPv4.FBit || !n.GR.IPv6.FBit {
		t.Errorf("FRR: Forwarding State bit ipv4 %v ipv6 %v, want both", n.GR.IPv4.FBit, n.GR.IPv6.FBit)
	}

	// Planned restart.
	fw, err := watchFRR(l.Lab, "router", peer, frrVIP4, frrVIP6)
	if err != nil {
		t.Fatal(err)
	}
	cw := watchClient(l.Lab, frrURL4)
	start := time.Now()
	if err := l.SignalProcess("site", "anycastd", syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	tExit := waitExited(t, l.Lab, "site")
	down := eventually(t, 10*time.Second, 20*time.Millisecond, "FRR sees the session go", func() error {
		if established(l.Lab, "router", peer)() == nil {
			return fmt.Errorf("FRR's session with the site still Established")
		}
		return nil
	})
	staleAt := frrBGPVia(l.Lab, "router", frrVIP4, peer)()
	paths, _ := frrBGP(l.Lab, "router", frrVIP4)
	t.Logf("planned stop: anycastd exited after %v, FRR's session down %v later; FRR holds %s: %v (%v)", ms(tExit), ms(down), frrVIP4, paths, staleAt)
	if err := l.StartProcess("site", "anycastd"); err != nil {
		t.Fatal(err)
	}
	tUp := eventually(t, grRestart, 20*time.Millisecond, "FRR's session with the site again", established(l.Lab, "router", peer))
	tGap := time.Since(start)
	eventually(t, 10*time.Second, 20*time.Millisecond, "both VIPs, no longer stale, after the restart", all(steady, func() error {
		for _, p := range []string{frrVIP4, frrVIP6} {
			paths, err := frrBGP(l.Lab, "router", p)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(paths, func(bp frrBGPPath) bool { return bp.Stale }) {
				return fmt.Errorf("%s still stale: %v", p, paths)
			}
		}
		return nil
	}))
	// A few more polls after the End-of-RIB, which would drop what was not
	// sent again.
	never(t, time.Second, 50*time.Millisecond, "both VIPs stay", steady)
	fw.end()
	cw.end()
	t.Logf("PLANNED RESTART with FRR (SIGUSR2, graceful_restart_time %v): session back %v after the new start, %v after SIGUSR2; FRR polls %d, polls without a path from the site %d %v, polls with it stale %d, poll errors %d; "+
		"client requests %d, failed %d %v, answered by %v",
		grRestart, ms(tUp), ms(tGap), fw.polls, len(fw.misses), fw.misses, fw.stale, len(fw.errs), cw.total, len(cw.failed), cw.failed, cw.answered)
	if len(fw.misses) > 0 {
		t.Errorf("FRR lost the site's routes during the planned restart: %v", fw.misses)
	}
	if fw.polls == 0 {
		t.Errorf("FRR's table was never read: %v", fw.errs)
	}
	if fw.stale == 0 {
		t.Errorf("FRR never marked the site's routes stale: was the session really down?")
	}
	if len(cw.failed) > 0 || cw.total == 0 {
		t.Errorf("the client failed during the planned restart: %d of %d failed: %v", len(cw.failed), cw.total, cw.failed)
	}
}
