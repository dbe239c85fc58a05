//go:build integration

package integration

import (
	"fmt"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// The anycast-bird topology (containerlab/anycast-bird).
const (
	birdTopo = "containerlab/anycast-bird/anycast-bird.clab.yml"
	vip4     = "203.0.113.20/32"
	vip6     = "2001:db8:20::1/128"
	url4     = "http://203.0.113.20/"
	url6     = "http://[2001:db8:20::1]/"
)

// birdRoute is one route of a prefix in BIRD: the protocol (BGP session)
// it came from, and whether it is the primary (best) one.
type birdRoute struct {
	Proto   string
	Primary bool
}

var birdRouteLine = regexp.MustCompile(`unicast \[(\S+)[^\]]*\](\s+\*)?`)

// birdRoutes returns BIRD's routes for prefix.
func birdRoutes(l *lab.Lab, router, prefix string) ([]birdRoute, error) {
	out, err := l.Birdc(router, "show route for "+prefix+" all")
	if err != nil {
		return nil, err
	}
	var routes []birdRoute
	for _, m := range birdRouteLine.FindAllStringSubmatch(out, -1) {
		routes = append(routes, birdRoute{Proto: m[1], Primary: m[2] != ""})
	}
	return routes, nil
}

// birdBest is a condition: BIRD's primary route for prefix comes from
// primary, and it has a route from each of also.
func birdBest(l *lab.Lab, prefix, primary string, also ...string) func() error {
	return func() error {
		routes, err := birdRoutes(l, "router", prefix)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(routes, func(r birdRoute) bool { return r.Primary })
		if i < 0 || routes[i].Proto != primary {
			return fmt.Errorf("BIRD: %s: want the primary route from %s, have %v", prefix, primary, routes)
		}
		for _, a := range also {
			if !slices.ContainsFunc(routes, func(r birdRoute) bool { return r.Proto == a }) {
				return fmt.Errorf("BIRD: %s: no route from %s: %v", prefix, a, routes)
			}
		}
		return nil
	}
}

func birdNoRouteFrom(l *lab.Lab, prefix, proto string) func() error {
	return func() error {
		routes, err := birdRoutes(l, "router", prefix)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(routes, func(r birdRoute) bool { return r.Proto == proto }) {
			return fmt.Errorf("BIRD: %s: still a route from %s: %v", prefix, proto, routes)
		}
		return nil
	}
}

func all(conds ...func() error) func() error {
	return func() error {
		for _, c := range conds {
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestBIRD: both sites announce an IPv4 and an IPv6 VIP to BIRD (site-a over
// one IPv4 session carrying both families, site-b over one session per
// family); when site A's health check fails it withdraws both, and when it
// passes again it announces them again.
func TestBIRD(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	l := startLab(t, birdTopo, nil)

	steady := all(
		birdBest(l, vip4, "site_a", "site_b4"),
		birdBest(l, vip6, "site_a", "site_b6"),
	)
	took := eventually(t, 30*time.Second, 50*time.Millisecond, "BIRD prefers site A for both VIPs, with site B as backup", steady)
	eventually(t, 10*time.Second, 50*time.Millisecond, "client answered by site-a (IPv4 and IPv6)", all(
		answeredBy(l, "client", url4, "site-a"),
		answeredBy(l, "client", url6, "site-a"),
	))
	t.Logf("steady state %v after the lab was up: BIRD has both VIPs from both sites, prefers site A", ms(took))

	// Withdraw: site A's service starts failing its health checks.
	start := time.Now()
	if err := l.SignalProcess("site-a", "siteweb", syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	route := watchFrom(start, 10*time.Second, 10*time.Millisecond, all(
		birdNoRouteFrom(l, vip4, "site_a"),
		birdNoRouteFrom(l, vip6, "site_a"),
		birdBest(l, vip4, "site_b4"),
		birdBest(l, vip6, "site_b6"),
	))
	client := watchFrom(start, 10*time.Second, 10*time.Millisecond, all(
		answeredBy(l, "client", url4, "site-b"),
		answeredBy(l, "client", url6, "site-b"),
	))
	tRoute := route.wait(t, "BIRD drops site A's routes")
	tClient := client.wait(t, "client answered by site-b")
	t.Logf("WITHDRAW: site-a's /healthz fails (503): both of site A's routes gone at BIRD after %v; "+
		"client answered by site-b over IPv4 and IPv6 after %v", ms(tRoute), ms(tClient))

	// The router was told to withdraw, not left to time out: the sessions
	// stayed up.
	out, err := l.Birdc("router", "show protocols")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"site_a", "site_b4", "site_b6"} {
		if !regexp.MustCompile(`(?m)^` + p + `\s.*Established`).MatchString(out) {
			t.Errorf("BIRD protocol %s not Established:\n%s", p, out)
		}
	}

	// Recover.
	start = time.Now()
	if err := l.SignalProcess("site-a", "siteweb", syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	route = watchFrom(start, 10*time.Second, 10*time.Millisecond, steady)
	client = watchFrom(start, 10*time.Second, 10*time.Millisecond, all(
		answeredBy(l, "client", url4, "site-a"),
		answeredBy(l, "client", url6, "site-a"),
	))
	tRoute = route.wait(t, "BIRD prefers site A again")
	tClient = client.wait(t, "client answered by site-a again")
	t.Logf("RECOVER: site-a healthy again: BIRD prefers site A for both VIPs after %v; client answered by site-a after %v",
		ms(tRoute), ms(tClient))
}
