//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// BFD against FRR's bfdd (issue #20), on the sessions-frr lab: a single-hop
// IPv4 session at 3 × 100 ms next to a BGP session whose hold time is 9 s.

// bfdSide is one address family of the lab: the site's and the router's
// addresses on their link, and the VIP.
type bfdSide struct {
	site, router, vip, family string
	multihop                  bool // eBGP multihop: a multihop BFD session
}

var (
	bfdV4 = bfdSide{site: "198.18.61.2", router: "198.18.61.1", vip: frrVIP4, family: "ipv4"}
	bfdV6 = bfdSide{site: "2001:db8:ff61::2", router: "2001:db8:ff61::1", vip: frrVIP6, family: "ipv6"}
)

// bfdFRRConf is the router's frr.conf: the neighbor with BFD at
// 100 ms × 3 (a profile), BGP timers 3/9; with multihop, eBGP multihop
// (bgpd then registers a multihop BFD session, RFC 5883).
func bfdFRRConf(side bfdSide) string {
	// update-source: bgpd registers the BFD session with its local address
	// from the start. Without it, bgpd registers it with 0.0.0.0 and, once
	// the BGP session is up, deletes it and registers a new one (a new
	// discriminator, starting Down): the BFD session flaps once, and
	// anycastd, seeing BFD go down, resets BGP once more.
	f := frrSession{neighbor: side.site, families: []string{side.family},
		lines: []string{"update-source " + side.router, "bfd", "bfd profile fast"}}
	if side.multihop {
		f.lines = append(f.lines, "ebgp-multihop 2")
	}
	conf := strings.Replace(f.conf(), " timers bgp 1 3\n", " timers bgp 3 9\n", 1)
	conf = strings.Replace(conf, " neighbor "+side.site+" timers 1 3\n", " neighbor "+side.site+" timers 3 9\n", 1)
	return conf
}

// bfdProfile is the router's BFD profile "fast", 100 ms × 3, given to bfdd
// over vtysh (bfdd 8.4.4 does not read a bfd block from a -f frr.conf).
var bfdProfile = []string{"configure terminal", "bfd", "profile fast",
	"transmit-interval 100", "receive-interval 100", "detect-multiplier 3"}

// bfdSiteConf is the site's anycastd.toml with [bgp.peer.bfd] at minTx.
func bfdSiteConf(side bfdSide, minTx string) string {
	peer := fmt.Sprintf("address = %q\nfamilies = [%q]\n", side.router, side.family)
	if side.multihop {
		peer += "multihop_ttl = 2\n"
	}
	site := siteConfFRR(peer+fmt.Sprintf("[bgp.peer.bfd]\nmin_tx = %q\nmin_rx = \"100ms\"\nmultiplier = 3\n", minTx), side.vip)
	return strings.Replace(site, `hold_time = "3s"`, `hold_time = "9s"`, 1)
}

// startBFDFRR starts the sessions-frr lab with bfdd running on the router.
func startBFDFRR(t *testing.T, side bfdSide, site string) *lab.Lab {
	t.Helper()
	daemons, err := os.ReadFile("testdata/sessions-frr/daemons")
	if err != nil {
		t.Fatal(err)
	}
	l := startLab(t, sessionsFRRTopo, func(topo *lab.Topology) {
		for name, content := range map[string][]byte{
			"frr.conf":      []byte(bfdFRRConf(side)),
			"anycastd.toml": []byte(site),
			"daemons":       []byte(strings.Replace(string(daemons), "bfdd=no", "bfdd=yes", 1)),
		} {
			node := "router"
			if name == "anycastd.toml" {
				node = "site"
			}
			if err := topo.SetFile(node, name, content); err != nil {
				t.Fatal(err)
			}
		}
	})
	if out, err := l.Vtysh("router", bfdProfile...); err != nil {
		t.Fatalf("configuring bfdd: %v\n%s", err, out)
	}
	return l
}

// frrBFDPeer is one session of FRR's show bfd peers json.
type frrBFDPeer struct {
	Peer       string `json:"peer"`
	Local      string `json:"local"`
	Status     string `json:"status"`
	Uptime     int    `json:"uptime"`
	RemoteDiag string `json:"remote-diagnostic"`
	Multihop   bool   `json:"multihop"`
	RemoteID   uint32 `json:"remote-id"`
	RxInterval int    `json:"remote-transmit-interval"`
}

func frrBFDPeers(l *lab.Lab) ([]frrBFDPeer, error) {
	var out []frrBFDPeer
	err := l.VtyshJSON("router", "show bfd peers json", &out)
	return out, err
}

// bfdUp is a condition: FRR's BFD session with the site is up, the one
// bgpd registered with its local address once the BGP session came up. (It
// registers one without a local address first and replaces it then: that
// one says Down to the site as it goes, and the new one starts Down, so
// BFD flaps once at the start; anycastd keeps BGP up through it.)
func bfdUp(l *lab.Lab, side bfdSide) func() error {
	return func() error {
		ps, err := frrBFDPeers(l)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Peer == side.site && p.Local == side.router && p.Status == "up" && p.Multihop == side.multihop {
				return nil
			}
		}
		return fmt.Errorf("router: no BFD session up with %s from %s: %+v", side.site, side.router, ps)
	}
}

// settled waits for the VIP at FRR over BGP, then for BFD up in the session
// bgpd registers once BGP is up.
//
// FRR 8.4.4's bgpd also resets the BGP session itself, once, right after
// it first comes up ("Cease/BFD Down" as it replaces its BFD session): the
// lab is settled once the BGP session has been up for 3 s since.
func settled(t *testing.T, l *lab.Lab, side bfdSide) {
	t.Helper()
	eventually(t, 60*time.Second, 50*time.Millisecond, "BGP up for 3s with the VIP at FRR, and FRR's BFD session up", func() error {
		if err := bgpSteady(l, side)(); err != nil {
			return err
		}
		return bfdUp(l, side)()
	})
}

// bgpSteady is a condition: FRR's BGP session with the site has been
// Established for 3 s and FRR has a path for side's VIP.
func bgpSteady(l *lab.Lab, side bfdSide) func() error {
	return func() error {
		var out map[string]struct {
			State  string `json:"bgpState"`
			UpMsec int64  `json:"bgpTimerUpMsec"`
		}
		if err := l.VtyshJSON("router", "show bgp neighbors "+side.site+" json", &out); err != nil {
			return err
		}
		if n := out[side.site]; n.State != "Established" || n.UpMsec < 3000 {
			return fmt.Errorf("router: BGP session with %s %s for %d ms", side.site, n.State, n.UpMsec)
		}
		return bgpPathFrom(l, side)()
	}
}

// bgpPathFrom is a condition: FRR has a BGP path for side's VIP.
func bgpPathFrom(l *lab.Lab, side bfdSide) func() error {
	return func() error {
		paths, err := frrBGP(l, "router", side.vip)
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return fmt.Errorf("router: no path for %s", side.vip)
		}
		return nil
	}
}

// noBGPPath is a condition: FRR's BGP table has no path for prefix.
func noBGPPath(l *lab.Lab, prefix string) func() error {
	return func() error {
		paths, err := frrBGP(l, "router", prefix)
		if err != nil {
			return err
		}
		if len(paths) > 0 {
			return fmt.Errorf("router still has %v for %s", paths, prefix)
		}
		return nil
	}
}

// A frozen anycastd (SIGSTOP: the node looks dead, nothing is withdrawn)
// leaves FRR's BGP table within BFD's detection time, not the 9 s hold
// time; once it runs again, BFD and then BGP come back (after anycastd's
// hold-down) with the VIP. Single hop, IPv4 and IPv6.
func TestBFDFrozenNodeLeavesFRR(t *testing.T)     { frozenNodeLeavesFRR(t, bfdV4) }
func TestBFDFrozenNodeLeavesFRRIPv6(t *testing.T) { frozenNodeLeavesFRR(t, bfdV6) }

// The same over a multihop BFD session (RFC 5883, UDP 4784), as FRR's
// bgpd registers for an eBGP multihop neighbor.
func TestBFDFrozenNodeLeavesFRRMultihop(t *testing.T) {
	side := bfdV4
	side.multihop = true
	frozenNodeLeavesFRR(t, side)
}

func frozenNodeLeavesFRR(t *testing.T, side bfdSide) {
	l := startBFDFRR(t, side, bfdSiteConf(side, "100ms"))
	settled(t, l, side)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := l.Log("site", "anycastd")
			bl, _ := l.Log("router", "bgpd")
			t.Logf("site log:\n%s\nbgpd log:\n%s", log, bl)
		}
	})
	// Steady: BGP up and not reset for BFD, FRR's BFD session up.
	never(t, time.Second, 50*time.Millisecond, "BGP and BFD steady", func() error {
		if err := bfdUp(l, side)(); err != nil {
			return err
		}
		return bgpPathFrom(l, side)()
	})

	if err := l.SignalProcess("site", "anycastd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 8*time.Second, 10*time.Millisecond, "the VIP gone from FRR (BFD, before the 9s hold time)", noBGPPath(l, side.vip))
	if err := l.SignalProcess("site", "anycastd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	kind := "single hop"
	if side.multihop {
		kind = "multihop"
	}
	t.Logf("BFD 3 × 100 ms, %s %s: frozen node's VIP gone from FRR's BGP table after %v (BGP hold time 9s)", side.family, kind, ms(took))
	if took >= 3*time.Second {
		t.Errorf("the VIP left after %v: that is BGP's hold time, not BFD's 300 ms detection", took)
	}
	eventually(t, 30*time.Second, 50*time.Millisecond, "BFD up again", bfdUp(l, side))
	eventually(t, 30*time.Second, 50*time.Millisecond, "the VIP back at FRR", bgpPathFrom(l, side))
}

// FRR's BFD going away (bfdd frozen) makes anycastd close the BGP session
// at once and keep it down until BFD is back.
func TestBFDRouterDownResetsSession(t *testing.T) {
	l := startBFDFRR(t, bfdV4, bfdSiteConf(bfdV4, "100ms"))
	settled(t, l, bfdV4)

	before, err := l.Log("site", "anycastd")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(before, "keeping it down") {
		t.Fatalf("the BGP session was reset for BFD before the test froze bfdd:\n%s", before)
	}
	if err := l.SignalProcess("router", "bfdd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 8*time.Second, 10*time.Millisecond, "anycastd logs BFD down and closes the session", func() error {
		log, err := l.Log("site", "anycastd")
		if err != nil {
			return err
		}
		if !strings.Contains(log[len(before):], "BFD down: closing the BGP session") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	t.Logf("router's bfdd frozen: anycastd closed the BGP session after %v", ms(took))
	if err := l.SignalProcess("router", "bfdd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, 50*time.Millisecond, "BFD up again", bfdUp(l, bfdV4))
	eventually(t, 30*time.Second, 50*time.Millisecond, "the VIP back at FRR", bgpPathFrom(l, bfdV4))
}

// A reload that changes min_tx runs a Poll sequence: the BFD session stays
// up throughout (FRR's uptime keeps counting) and FRR sees the new interval.
func TestBFDReloadKeepsSessionUp(t *testing.T) {
	l := startBFDFRR(t, bfdV4, bfdSiteConf(bfdV4, "100ms"))
	settled(t, l, bfdV4)
	before, err := l.Log("site", "anycastd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.NodeDir("site"), "anycastd.toml"), []byte(bfdSiteConf(bfdV4, "200ms")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.SignalProcess("site", "anycastd", syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, 50*time.Millisecond, "FRR sees the site's new 200 ms transmit interval", func() error {
		ps, err := frrBFDPeers(l)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Peer == "198.18.61.2" && p.RxInterval == 200 {
				return nil
			}
		}
		return fmt.Errorf("not yet: %+v", ps)
	})
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := l.Log("site", "anycastd")
			bl, _ := l.Log("router", "bfdd")
			t.Logf("site log:\n%s\nbfdd log:\n%s", log, bl)
		}
	})
	never(t, 2*time.Second, 50*time.Millisecond, "the BFD session stays up", bfdUp(l, bfdV4))
	log, _ := l.Log("site", "anycastd")
	if strings.Contains(log[len(before):], "BFD session down") {
		t.Errorf("the reload took the BFD session down:\n%s", log)
	}
}

// Stopping anycastd (SIGTERM) takes its BFD session AdminDown: FRR sees
// the session down with the site's diagnostic "administratively down",
// which it must not take for a path failure (RFC 5882 §3.2).
func TestBFDStopTellsFRR(t *testing.T) {
	l := startBFDFRR(t, bfdV4, bfdSiteConf(bfdV4, "100ms"))
	settled(t, l, bfdV4)
	if err := l.SignalProcess("site", "anycastd", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, 20*time.Millisecond, "FRR's BFD session down, administratively, by the site", func() error {
		ps, err := frrBFDPeers(l)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Peer == bfdV4.site && p.Status == "down" && strings.Contains(p.RemoteDiag, "administratively down") {
				return nil
			}
		}
		return fmt.Errorf("not yet: %+v", ps)
	})
}
