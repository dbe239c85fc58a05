//go:build integration

package integration

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// Planned restart with graceful restart (RFC 4724), against BIRD 2 on the
// anycast-bird topology.

const (
	// vipAPI is a second VIP of site-a, whose address anycastd itself puts
	// on lo (interface.manage = true), to see the address survive a
	// planned restart and be adopted by the next run.
	vipAPI     = "203.0.113.21/32"
	grRestart  = 30 * time.Second // graceful_restart_time of site-a in this test
	pollPeriod = 20 * time.Millisecond
)

// grSiteA turns graceful restart on for site-a's anycastd, lets it manage
// its VIP addresses (state in stateDir) and adds VIP "api" (vipAPI),
// guarded by a check that passes while site-a's web service runs.
func grSiteA(t *testing.T, stateDir string) func(*lab.Topology) {
	return func(topo *lab.Topology) {
		n := topo.Nodes["site-a"]
		conf, err := n.File("anycastd.toml")
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(conf), "listen_port = 0 # outbound sessions only\n",
			fmt.Sprintf("listen_port = 0 # outbound sessions only\ngraceful_restart = true\ngraceful_restart_time = %q\n", grRestart), 1)
		s = strings.Replace(s, "manage = false # the VIPs are put on lo by the node's exec lines\n",
			fmt.Sprintf("manage = true\nname = \"lo\"\nstate_dir = %q\n", stateDir), 1)
		s += `
[[check]]
name = "web-port"
type = "tcp"
address = "203.0.113.20:80"
interval = "200ms"
timeout = "100ms"
rise = 2
fall = 2

[[vip]]
name = "api"
prefixes = ["` + vipAPI + `"]
checks = ["web-port"]
`
		if !strings.Contains(s, "graceful_restart = true") || !strings.Contains(s, "manage = true") {
			t.Fatalf("site-a's anycastd.toml changed; cannot turn graceful restart on:\n%s", conf)
		}
		if err := topo.SetFile("site-a", "anycastd.toml", []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
}

// poller runs a function every pollPeriod in a goroutine of its own until
// end.
type poller struct {
	stop chan struct{}
	done chan struct{}
}

func startPoller(f func()) poller {
	p := poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(pollPeriod)
		defer tick.Stop()
		for {
			f()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// end stops the polls and waits for the last one to return.
func (p poller) end() { close(p.stop); <-p.done }

// routerWatch polls BIRD's routes for prefixes from one protocol and
// counts the polls where one of them was missing.
type routerWatch struct {
	poller
	polls  int
	misses []string // "prefix at +offset"
	errs   int
}

func watchRouter(l *lab.Lab, proto string, prefixes ...string) *routerWatch {
	w := &routerWatch{}
	start := time.Now()
	w.poller = startPoller(func() {
		for _, p := range prefixes {
			routes, err := birdRoutes(l, "router", p)
			if err != nil {
				w.errs++
				continue
			}
			w.polls++
			if !slices.ContainsFunc(routes, func(r birdRoute) bool { return r.Proto == proto }) {
				w.misses = append(w.misses, fmt.Sprintf("%s at +%v", p, ms(time.Since(start))))
			}
		}
	})
	return w
}

// clientWatch polls a URL from the client and counts failures and which
// site answered.
type clientWatch struct {
	poller
	mu       sync.Mutex
	total    int
	failed   []string
	answered map[string]int
}

func watchClient(l *lab.Lab, url string) *clientWatch {
	w := &clientWatch{answered: map[string]int{}}
	start := time.Now()
	w.poller = startPoller(func() {
		got, err := get(l, "client", url)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.total++
		if err != nil {
			w.failed = append(w.failed, fmt.Sprintf("+%v: %v", ms(time.Since(start)), err))
		} else {
			w.answered[got]++
		}
	})
	return w
}

// waitExited waits until site-a's anycastd has exited.
func waitExited(t *testing.T, l *lab.Lab, node string) time.Duration {
	t.Helper()
	return eventually(t, 15*time.Second, 10*time.Millisecond, node+"'s anycastd exits", func() error {
		if l.Running(node, "anycastd") {
			return fmt.Errorf("still running")
		}
		return nil
	})
}

// hasAddr is a condition: node has addr on lo.
func hasAddr(l *lab.Lab, node, prefix string) func() error {
	return func() error {
		out, err := l.Exec(node, "ip", "-o", "addr", "show", "dev", "lo")
		if err != nil {
			return err
		}
		if !strings.Contains(out, " "+prefix+" ") {
			return fmt.Errorf("%s not on %s's lo:\n%s", prefix, node, out)
		}
		return nil
	}
}

// sessionUp is a condition: BIRD's protocol is Established.
func sessionUp(l *lab.Lab, proto string) func() error {
	return func() error {
		out, err := l.Birdc("router", "show protocols "+proto)
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`(?m)^` + proto + `\s.*Established`).MatchString(out) {
			return fmt.Errorf("BIRD protocol %s not Established:\n%s", proto, out)
		}
		return nil
	}
}

// TestPlannedRestart restarts site-a's anycastd with SIGUSR2 while the
// client polls the VIP and BIRD's table is polled: with graceful restart
// BIRD keeps site A's routes (as stale) across the restart, so it never
// loses them and the client keeps reaching site A. Then, restarted again
// while site A's web service fails its checks: once the new anycastd's
// checks have fallen, the session comes up, End-of-RIB follows without
// the VIP, and BIRD drops site A's routes at once, long before the restart
// time runs out; VIP "api", still healthy, stays.
func TestPlannedRestart(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	stateDir := t.TempDir()
	l := startLab(t, birdTopo, grSiteA(t, stateDir))
	steady := all(
		birdBest(l, vip4, "site_a", "site_b4"),
		birdBest(l, vip6, "site_a", "site_b6"),
		birdBest(l, vipAPI, "site_a"),
	)
	eventually(t, 30*time.Second, 50*time.Millisecond, "BIRD prefers site A for every VIP", steady)
	eventually(t, 10*time.Second, 50*time.Millisecond, "client answered by site-a", answeredBy(l, "client", url4, "site-a"))

	// Step 1: the capability BIRD received names both families, with the
	// restart time.
	out, err := l.Birdc("router", "show protocols all site_a")
	if err != nil {
		t.Fatal(err)
	}
	// BIRD 2.0.12 prints the received capability under "Neighbor
	// capabilities": "Restart recovery" is the Restart State bit, "AF
	// preserved" the families with the Forwarding State bit.
	neighbor := out[strings.Index(out, "Neighbor capabilities"):]
	grCap := regexp.MustCompile(`(?s)Graceful restart\n(.*?)\n\s+4-octet`).FindStringSubmatch(neighbor)
	if grCap == nil {
		t.Fatalf("BIRD received no graceful-restart capability from site-a:\n%s", out)
	}
	t.Logf("BIRD, the graceful-restart capability site-a sent: %s", strings.Join(strings.Fields(grCap[1]), " "))
	for _, want := range []string{
		fmt.Sprintf("Restart time: %d", int(grRestart.Seconds())),
		"AF supported: ipv4 ipv6",
		"AF preserved: ipv4 ipv6",
	} {
		if !strings.Contains(grCap[1], want) {
			t.Errorf("BIRD: site-a's graceful-restart capability lacks %q:\n%s", want, grCap[1])
		}
	}

	// Healthy planned restart.
	rw := watchRouter(l, "site_a", vip4, vip6, vipAPI)
	cw := watchClient(l, url4)
	start := time.Now()
	if err := l.SignalProcess("site-a", "anycastd", syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	tExit := waitExited(t, l, "site-a")
	if err := hasAddr(l, "site-a", vipAPI)(); err != nil {
		t.Errorf("after the planned stop: %v", err)
	}
	gr, _ := l.Birdc("router", "show protocols site_a")
	t.Logf("planned stop: anycastd exited after %v; BIRD: %s", ms(tExit), lastLine(gr))
	if err := l.StartProcess("site-a", "anycastd"); err != nil {
		t.Fatal(err)
	}
	tUp := eventually(t, grRestart, 20*time.Millisecond, "BIRD's session with site-a again", sessionUp(l, "site_a"))
	tGap := time.Since(start)
	eventually(t, 10*time.Second, 20*time.Millisecond, "site A's routes after the restart", steady)
	// A few more polls after the End-of-RIB, which would drop what was not
	// sent again.
	never(t, time.Second, 50*time.Millisecond, "site A's routes stay", steady)
	rw.end()
	cw.end()
	log, _ := l.Log("site-a", "anycastd")
	t.Logf("PLANNED RESTART (SIGUSR2, graceful_restart_time %v): session back %v after the new start, %v after SIGUSR2; router polls %d, polls without a site_a route %d %v; "+
		"client requests %d, failed %d %v, answered by %v",
		grRestart, ms(tUp), ms(tGap), rw.polls, len(rw.misses), rw.misses, cw.total, len(cw.failed), cw.failed, cw.answered)
	if len(rw.misses) > 0 {
		t.Errorf("BIRD lost site A's routes during the planned restart: %v", rw.misses)
	}
	if rw.polls == 0 {
		t.Errorf("BIRD's table was never read (%d errors)", rw.errs)
	}
	if cw.answered["site-b"] > 0 || len(cw.failed) > 0 {
		t.Errorf("the client left site A during the planned restart: %d failed, answered by %v", len(cw.failed), cw.answered)
	}
	if !strings.Contains(log, "VIP address added by an earlier run is still anycastd's") {
		t.Errorf("the restarted anycastd did not adopt the address it added before the restart:\n%s", tailLines(log, 40))
	}

	// Restart while the service fails: the VIP goes once decided.
	if err := l.SignalProcess("site-a", "anycastd", syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitExited(t, l, "site-a")
	if err := l.SignalProcess("site-a", "siteweb", syscall.SIGUSR1); err != nil { // /healthz fails (503)
		t.Fatal(err)
	}
	if err := all(birdBest(l, vip4, "site_a"), birdBest(l, vipAPI, "site_a"))(); err != nil {
		t.Fatalf("BIRD dropped site A's routes before anycastd was back: %v", err)
	}
	start = time.Now()
	if err := l.StartProcess("site-a", "anycastd"); err != nil {
		t.Fatal(err)
	}
	gone := watchFrom(start, grRestart, 10*time.Millisecond, all(
		birdNoRouteFrom(l, vip4, "site_a"),
		birdNoRouteFrom(l, vip6, "site_a"),
		birdBest(l, vip4, "site_b4"),
	))
	tGone := gone.wait(t, "BIRD drops site A's web routes after the restart")
	if err := sessionUp(l, "site_a")(); err != nil {
		t.Errorf("site A's routes went, but not by End-of-RIB on an established session: %v", err)
	}
	if err := birdBest(l, vipAPI, "site_a")(); err != nil {
		t.Errorf("VIP api, healthy, left BIRD: %v", err)
	}
	eventually(t, 5*time.Second, 20*time.Millisecond, "client answered by site-b", answeredBy(l, "client", url4, "site-b"))
	t.Logf("RESTART WITH A FAILED CHECK: site A's web routes gone at BIRD %v after the start (restart time %v); VIP api kept",
		ms(tGone), grRestart)
	if tGone > grRestart/2 {
		t.Errorf("the failed VIP went only after %v: the routers kept it until their restart time rather than its decision", tGone)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
