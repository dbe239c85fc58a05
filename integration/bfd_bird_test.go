//go:build integration

package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BFD against BIRD 2 (issue #20), on the sessions lab: `protocol bfd` at
// 3 × 100 ms and `bfd on` in the BGP protocol, next to a BGP session whose
// hold time is 9 s. A frozen anycastd leaves BIRD's table within BFD's
// detection time. Single hop, IPv4 and IPv6.
func TestBFDFrozenNodeLeavesBIRD(t *testing.T) {
	frozenNodeLeavesBIRD(t, "198.18.60.2", "198.18.60.1", "ipv4", sessVIP4)
}

func TestBFDFrozenNodeLeavesBIRDIPv6(t *testing.T) {
	frozenNodeLeavesBIRD(t, "2001:db8:ff60::2", "2001:db8:ff60::1", "ipv6", sessVIP6)
}

// frozenNodeLeavesBIRD runs the case with the site at site, BIRD at
// router, over family, announcing vip.
func frozenNodeLeavesBIRD(t *testing.T, site, router, family, vip string) {
	// error wait time: BIRD holds a session closed by an error (BFD down
	// is one) down for 60 s at first by default.
	bird := birdSession{neighbor: site, channels: family + " { import all; export none; };",
		options: "bfd on;\n\terror wait time 1, 10;"}
	conf := strings.Replace(bird.conf(), "hold time 3;", "hold time 9;", 1)
	conf = strings.Replace(conf, "keepalive time 1;", "keepalive time 3;", 1)
	conf += `protocol bfd {
	interface "eth-r" {
		min rx interval 100 ms;
		min tx interval 100 ms;
		multiplier 3;
	};
}
`
	siteConf := siteConf(fmt.Sprintf("address = %q\nfamilies = [%q]\n", router, family)+
		"[bgp.peer.bfd]\nmin_tx = \"100ms\"\nmin_rx = \"100ms\"\nmultiplier = 3\n", vip)
	siteConf = strings.Replace(siteConf, `hold_time = "3s"`, `hold_time = "9s"`, 1)
	l := startSessions(t, birdSession{}, siteConf, conf)

	bfdUpBIRD := func() error {
		out, err := l.Birdc("router", "show bfd sessions")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == site && f[2] == "Up" {
				return nil
			}
		}
		return fmt.Errorf("BIRD: no BFD session up with %s:\n%s", site, out)
	}
	eventually(t, 30*time.Second, 50*time.Millisecond, "BIRD's BFD session up", bfdUpBIRD)
	eventually(t, 30*time.Second, 50*time.Millisecond, "the VIP at BIRD", birdVia(l, vip))
	never(t, time.Second, 50*time.Millisecond, "BFD and BGP steady", func() error {
		if err := bfdUpBIRD(); err != nil {
			return err
		}
		return birdVia(l, vip)()
	})

	if err := l.SignalProcess("site", "anycastd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 8*time.Second, 10*time.Millisecond, "the VIP gone from BIRD (BFD, before the 9s hold time)", func() error {
		if birdVia(l, vip)() == nil {
			return fmt.Errorf("BIRD still has %s", vip)
		}
		return nil
	})
	if err := l.SignalProcess("site", "anycastd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("BFD 3 × 100 ms against BIRD, %s: frozen node's VIP gone from BIRD's table after %v (BGP hold time 9s)", family, ms(took))
	if took >= 3*time.Second {
		t.Errorf("the VIP left after %v: that is BGP's hold time, not BFD's 300 ms detection", took)
	}
	eventually(t, 30*time.Second, 50*time.Millisecond, "BFD up again", bfdUpBIRD)
	eventually(t, 30*time.Second, 50*time.Millisecond, "the VIP back at BIRD", birdVia(l, vip))
}
