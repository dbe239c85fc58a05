//go:build integration

package integration

import (
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// The anycast-2site topology (containerlab/anycast-2site).
const (
	twoSite   = "containerlab/anycast-2site/anycast-2site.clab.yml"
	vip2      = "203.0.113.10/32"
	vipURL2   = "http://203.0.113.10/"
	edgeA     = "198.18.11.2" // edge-a, as the core sees it
	edgeB     = "198.18.12.2" // edge-b, as the core sees it
	siteAAddr = "198.18.1.2"  // site-a's anycastd, as edge-a sees it
	siteBAddr = "198.18.2.2"  // site-b's anycastd, as edge-b sees it
)

// startTwoSite starts anycast-2site and waits for the steady state: the
// core prefers site A (via edge-a) and holds site B's path as the backup,
// and the client is answered by site A.
func startTwoSite(t *testing.T) *lab.Lab {
	t.Helper()
	needLab(t, lab.RoleFRR)
	l := startLab(t, twoSite, nil)
	took := eventually(t, 30*time.Second, 50*time.Millisecond, "core prefers site A with site B as backup",
		bestFrom(l, "core", vip2, edgeA, edgeB))
	eventually(t, 10*time.Second, 50*time.Millisecond, "client answered by site-a", answeredBy(l, "client", vipURL2, "site-a"))
	t.Logf("steady state %v after the lab was up: core prefers site A, client answered by site-a", ms(took))
	return l
}

// TestFailoverAndRecovery kills site A's web service and measures how long
// until the core has dropped site A's path and the client is answered by
// site B; then restarts the service and measures the way back.
func TestFailoverAndRecovery(t *testing.T) {
	l := startTwoSite(t)

	start := time.Now()
	if err := l.KillProcess("site-a", "siteweb", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	route := watchFrom(start, 10*time.Second, 10*time.Millisecond, func() error {
		if err := noPathFrom(l, "core", vip2, edgeA)(); err != nil {
			return err
		}
		return bestFrom(l, "core", vip2, edgeB)()
	})
	client := watchFrom(start, 10*time.Second, 10*time.Millisecond, answeredBy(l, "client", vipURL2, "site-b"))
	tRoute := route.wait(t, "core drops site A's path")
	tClient := client.wait(t, "client answered by site-b")
	t.Logf("FAILOVER (check interval 200ms, fall 2): web service on site-a killed; "+
		"site A's path gone at the core after %v; client answered by site-b after %v", ms(tRoute), ms(tClient))
	eventually(t, 5*time.Second, 20*time.Millisecond, "edge-a drops site-a's path", noPathFrom(l, "edge-a", vip2, siteAAddr))
	if tRoute > 3*time.Second {
		t.Errorf("withdrawal took %v; with interval 200ms and fall 2 it should take well under a second", tRoute)
	}

	start = time.Now()
	if err := l.StartProcess("site-a", "siteweb"); err != nil {
		t.Fatal(err)
	}
	route = watchFrom(start, 10*time.Second, 10*time.Millisecond, bestFrom(l, "core", vip2, edgeA, edgeB))
	client = watchFrom(start, 10*time.Second, 10*time.Millisecond, answeredBy(l, "client", vipURL2, "site-a"))
	tRoute = route.wait(t, "core prefers site A again")
	tClient = client.wait(t, "client answered by site-a again")
	t.Logf("RECOVERY (rise 2): web service on site-a restarted; "+
		"core prefers site A again after %v; client answered by site-a after %v", ms(tRoute), ms(tClient))
}

// TestAnycastdKilled kills site A's anycastd with SIGKILL: the core loses
// site A's path (at the latest when edge-a's hold timer, 3s, expires) and
// the client fails over. The kernel closes the dead process's TCP
// connection, so FRR usually notices at once; the hold timer itself is
// exercised by freezing anycastd (SIGSTOP), which keeps the connection open
// but silent.
func TestAnycastdKilled(t *testing.T) {
	l := startTwoSite(t)

	start := time.Now()
	if err := l.KillNode("site-a", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	route := watchFrom(start, 10*time.Second, 10*time.Millisecond, noPathFrom(l, "core", vip2, edgeA))
	client := watchFrom(start, 10*time.Second, 10*time.Millisecond, answeredBy(l, "client", vipURL2, "site-b"))
	tRoute := route.wait(t, "core drops site A's path after SIGKILL")
	tClient := client.wait(t, "client answered by site-b")
	_, reason, err := frrNeighbor(l, "edge-a", siteAAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILL of site-a's anycastd: site A's path gone at the core after %v, client answered by site-b after %v; "+
		"edge-a's reason for the session reset: %q", ms(tRoute), ms(tClient), reason)
	if tRoute > 3*time.Second+2*time.Second {
		t.Errorf("the core kept site A's path %v after anycastd died; the hold time is 3s", tRoute)
	}

	if err := l.StartNode("site-a"); err != nil {
		t.Fatal(err)
	}
	tBack := eventually(t, 15*time.Second, 20*time.Millisecond, "core prefers site A after anycastd restarts", bestFrom(l, "core", vip2, edgeA))
	eventually(t, 5*time.Second, 20*time.Millisecond, "client answered by site-a", answeredBy(l, "client", vipURL2, "site-a"))
	t.Logf("anycastd on site-a restarted: core prefers site A again after %v", ms(tBack))

	// Frozen: the TCP connection stays open, only the hold timer can end it.
	start = time.Now()
	if err := l.KillNode("site-a", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	route = watchFrom(start, 15*time.Second, 10*time.Millisecond, noPathFrom(l, "core", vip2, edgeA))
	client = watchFrom(start, 15*time.Second, 10*time.Millisecond, answeredBy(l, "client", vipURL2, "site-b"))
	tRoute = route.wait(t, "core drops site A's path after edge-a's hold timer expires")
	tClient = client.wait(t, "client answered by site-b")
	_, reason, err = frrNeighbor(l, "edge-a", siteAAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGSTOP of site-a's anycastd (hold time 3s): site A's path gone at the core after %v, client answered by site-b after %v; "+
		"edge-a's reason: %q", ms(tRoute), ms(tClient), reason)
	// The last keepalive came at most one keepalive interval (1s) before
	// the freeze, so the 3s hold timer expires 2-3s after it.
	if tRoute < 1500*time.Millisecond || tRoute > 3*time.Second+2*time.Second {
		t.Errorf("site A's path went %v after the freeze; with a 3s hold time expect 2-3s", tRoute)
	}

	if err := l.KillNode("site-a", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	tBack = eventually(t, 15*time.Second, 20*time.Millisecond, "core prefers site A after anycastd resumes", bestFrom(l, "core", vip2, edgeA))
	eventually(t, 5*time.Second, 20*time.Millisecond, "client answered by site-a", answeredBy(l, "client", vipURL2, "site-a"))
	t.Logf("anycastd on site-a resumed (SIGCONT): core prefers site A again after %v", ms(tBack))
}

// TestUpstreamRouterRestart kills bgpd on edge-a, then on the core, and
// starts it again: the sessions come back and every VIP is announced again.
func TestUpstreamRouterRestart(t *testing.T) {
	l := startTwoSite(t)

	// edge-a: site-a's own upstream.
	start := time.Now()
	if err := l.KillProcess("edge-a", "bgpd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, 10*time.Millisecond, "core falls back to site B", bestFrom(l, "core", vip2, edgeB))
	eventually(t, 10*time.Second, 10*time.Millisecond, "client answered by site-b", answeredBy(l, "client", vipURL2, "site-b"))
	t.Logf("edge-a's bgpd killed: client answered by site-b after %v", ms(time.Since(start)))

	start = time.Now()
	if err := l.StartProcess("edge-a", "bgpd"); err != nil {
		t.Fatal(err)
	}
	tSession := eventually(t, 20*time.Second, 20*time.Millisecond, "edge-a's session with site-a's anycastd", established(l, "edge-a", siteAAddr))
	eventually(t, 10*time.Second, 20*time.Millisecond, "edge-a has site A's VIP again", bestFrom(l, "edge-a", vip2, siteAAddr))
	eventually(t, 10*time.Second, 20*time.Millisecond, "core prefers site A again", bestFrom(l, "core", vip2, edgeA, edgeB))
	eventually(t, 10*time.Second, 20*time.Millisecond, "client answered by site-a", answeredBy(l, "client", vipURL2, "site-a"))
	t.Logf("edge-a's bgpd restarted: session with anycastd up after %v, site A announced and preferred at the core after %v",
		ms(tSession), ms(time.Since(start)))

	// The core: both sites' VIPs must come back.
	if err := l.KillProcess("core", "bgpd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := l.StartProcess("core", "bgpd"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, 20*time.Millisecond, "core learns both sites again", bestFrom(l, "core", vip2, edgeA, edgeB))
	eventually(t, 10*time.Second, 20*time.Millisecond, "client answered by site-a", answeredBy(l, "client", vipURL2, "site-a"))
	t.Logf("core's bgpd restarted: both sites' VIP paths back at the core after %v", ms(time.Since(start)))
	for _, c := range []struct{ edge, site string }{{"edge-a", siteAAddr}, {"edge-b", siteBAddr}} {
		if err := bestFrom(l, c.edge, vip2, c.site)(); err != nil {
			t.Error(err)
		}
	}
}
