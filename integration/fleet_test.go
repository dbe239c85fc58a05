//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// The anycast-fleet topology (containerlab/anycast-fleet): three sites
// under one FRR router, a fleet guard over etcd (issue #21).
const (
	fleetTopo = "containerlab/anycast-fleet/anycast-fleet.clab.yml"
	fleetVIP  = "203.0.113.30/32"
	// fleetMinSites is the VIP's min_sites in the sites' anycastd.toml.
	fleetMinSites = 2
	// fleetDegraded is the [vip.degraded] community a guarded VIP carries.
	fleetDegraded = "65000:666"
	// fleetLeaseTTL is [fleet] lease_ttl.
	fleetLeaseTTL = 3 * time.Second
	// The services on each site: the web service (its http check is
	// health-driven: the guard may refuse to withdraw for it) and the api
	// service (its listen check's failure is definite).
	webService = "siteweb"
	apiService = "siteweb-2"
)

// fleetSites are the sites, by name, with the address the router sees.
var fleetSites = map[string]string{
	"site-a": "198.18.71.2",
	"site-b": "198.18.72.2",
	"site-c": "198.18.73.2",
}

// fleetLab is the running anycast-fleet lab, with each site's API socket
// and an anycastctl to ask it.
type fleetLab struct {
	*lab.Lab
	socks map[string]string // site → API unix socket
	ctl   string            // anycastctl binary
}

// startFleet builds anycastctl and starts anycast-fleet with each site's
// API on a unix socket (and flap hold-down off). A missing etcd fails the
// lab's start: it is never a skip.
func startFleet(t *testing.T) *fleetLab {
	t.Helper()
	needLab(t, lab.RoleFRR)
	dir, err := os.MkdirTemp("", "acd-fleet") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctl := filepath.Join(dir, "anycastctl")
	build := exec.Command("go", "build", "-o", ctl, "./cmd/anycastctl")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building anycastctl: %v\n%s", err, out)
	}
	f := &fleetLab{socks: map[string]string{}, ctl: ctl}
	f.Lab = startLab(t, fleetTopo, func(topo *lab.Topology) {
		for site := range fleetSites {
			conf, err := topo.Nodes[site].File("anycastd.toml")
			if err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(dir, site+".sock")
			edited := strings.Replace(string(conf), "[api]\nlisten = \"\"\n", "[api]\nlisten = \"unix://"+sock+"\"\n", 1)
			// The test changes the VIP's state more often than the
			// default flap hold-down allows (max_flaps in flap_window),
			// which would hold it withdrawn: not what is tested here.
			edited = strings.Replace(edited, "\nmin_sites = ", "\nmax_flaps = 0\nmin_sites = ", 1)
			if !strings.Contains(edited, sock) || !strings.Contains(edited, "max_flaps = 0") {
				t.Fatalf("%s: anycastd.toml has no [api] listen = \"\" to point at %s, or no min_sites:\n%s", site, sock, conf)
			}
			if err := topo.SetFile(site, "anycastd.toml", []byte(edited)); err != nil {
				t.Fatal(err)
			}
			f.socks[site] = sock
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := f.Log("etcd", "etcd"); err == nil {
				t.Logf("etcd log (tail):\n%s", tailLines(strings.TrimSpace(out), 40))
			}
			for _, site := range slices.Sorted(maps.Keys(fleetSites)) {
				vips, _ := f.vipsText(site)
				fleet, _ := f.Exec(site, f.ctl, "-socket", f.socks[site], "fleet")
				t.Logf("%s: anycastctl vips:\n%s\nanycastctl fleet:\n%s", site, vips, fleet)
			}
		}
	})
	return f
}

// fleetPath is one site's path for the VIP at the router.
type fleetPath struct {
	Site        string
	Communities string // FRR's community string, "" for none
}

// fleetRoutes returns the router's paths for the VIP, by site.
func (f *fleetLab) fleetRoutes() (map[string]fleetPath, error) {
	var out struct {
		Paths []struct {
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
			Community *struct {
				String string `json:"string"`
			} `json:"community"`
		} `json:"paths"`
	}
	if err := f.VtyshJSON("router", "show bgp ipv4 unicast "+fleetVIP+" json", &out); err != nil {
		return nil, err
	}
	paths := map[string]fleetPath{}
	for _, p := range out.Paths {
		site := ""
		for s, addr := range fleetSites {
			if addr == p.Peer.PeerID {
				site = s
			}
		}
		if site == "" {
			return nil, fmt.Errorf("router: %s: a path from %s, which is no site", fleetVIP, p.Peer.PeerID)
		}
		fp := fleetPath{Site: site}
		if p.Community != nil {
			fp.Communities = p.Community.String
		}
		paths[site] = fp
	}
	return paths, nil
}

func (p fleetPath) degraded() bool {
	return slices.Contains(strings.Fields(p.Communities), fleetDegraded)
}

// describeFleet lists the paths by site with their communities.
func describeFleet(paths map[string]fleetPath) string {
	if len(paths) == 0 {
		return "no path"
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(paths)) {
		c := paths[s].Communities
		if c == "" {
			c = "no community"
		}
		parts = append(parts, s+" ("+c+")")
	}
	return strings.Join(parts, ", ")
}

// announcedExactly is a condition: the router has the VIP from exactly the
// given sites, from those in degraded with the degraded community and from
// the others without it.
func (f *fleetLab) announcedExactly(sites []string, degraded ...string) func() error {
	return func() error {
		paths, err := f.fleetRoutes()
		if err != nil {
			return err
		}
		if !slices.Equal(slices.Sorted(maps.Keys(paths)), slices.Sorted(slices.Values(sites))) {
			return fmt.Errorf("router has %s from %s, want it from exactly %v", fleetVIP, describeFleet(paths), sites)
		}
		for s, p := range paths {
			if want := slices.Contains(degraded, s); p.degraded() != want {
				return fmt.Errorf("router: %s from %s: degraded community %v, want %v", fleetVIP, describeFleet(paths), p.degraded(), want)
			}
		}
		return nil
	}
}

// guardedFloor is a condition: exactly fleetMinSites sites announce the VIP
// at the router, every one with the degraded community.
func (f *fleetLab) guardedFloor() func() error {
	return func() error {
		paths, err := f.fleetRoutes()
		if err != nil {
			return err
		}
		if len(paths) != fleetMinSites {
			return fmt.Errorf("router has %s from %s, want exactly %d sites (min_sites)", fleetVIP, describeFleet(paths), fleetMinSites)
		}
		for _, p := range paths {
			if !p.degraded() {
				return fmt.Errorf("router has %s from %s: every path should carry %s", fleetVIP, describeFleet(paths), fleetDegraded)
			}
		}
		return nil
	}
}

// vipsText runs `anycastctl vips` against site's anycastd, in its namespace.
func (f *fleetLab) vipsText(site string) (string, error) {
	return f.Exec(site, f.ctl, "-socket", f.socks[site], "vips")
}

// vipState returns the state of the VIP "web" as `anycastctl vips` shows it
// at site.
func (f *fleetLab) vipState(site string) (string, error) {
	out, err := f.vipsText(site)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if fs := strings.Fields(line); len(fs) >= 2 && fs[0] == "web" {
			return fs[1], nil
		}
	}
	return "", fmt.Errorf("%s: anycastctl vips shows no VIP web:\n%s", site, out)
}

// stateIs is a condition: `anycastctl vips` at site shows the VIP in state.
func (f *fleetLab) stateIs(site, want string) func() error {
	return func() error {
		got, err := f.vipState(site)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: anycastctl vips shows web %s, want %s", site, got, want)
		}
		return nil
	}
}

// fleetView is what `anycastctl -o json fleet web` says at a site.
type fleetView struct {
	Configured bool `json:"configured"`
	Fleet      struct {
		Coordinator struct {
			Connected bool   `json:"connected"`
			Error     string `json:"error"`
		} `json:"coordinator"`
		VIPs []struct {
			Name            string `json:"name"`
			MinSites        int    `json:"minSites"`
			AnnouncingSites int    `json:"announcingSites"`
			KnownSites      int    `json:"knownSites"`
		} `json:"vips"`
	} `json:"fleet"`
}

// fleetSees is a condition: `anycastctl fleet web` at site shows the
// coordinator connected (or lost) and, with connected, the VIP announced
// by `announcing` of `known` sites.
func (f *fleetLab) fleetSees(site string, connected bool, announcing, known int) func() error {
	return func() error {
		out, err := f.Exec(site, f.ctl, "-socket", f.socks[site], "-o", "json", "fleet", "web")
		if err != nil {
			return err
		}
		var v fleetView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return fmt.Errorf("%s: anycastctl -o json fleet web: %w: %.300s", site, err, out)
		}
		co := v.Fleet.Coordinator
		switch {
		case !v.Configured:
			return fmt.Errorf("%s: anycastctl fleet: no [fleet] configured", site)
		case co.Connected != connected:
			return fmt.Errorf("%s: anycastctl fleet: coordinator connected %v (%s), want %v", site, co.Connected, co.Error, connected)
		case !connected:
			return nil
		case len(v.Fleet.VIPs) != 1 || v.Fleet.VIPs[0].Name != "web":
			return fmt.Errorf("%s: anycastctl fleet web: VIPs %+v, want web alone", site, v.Fleet.VIPs)
		}
		w := v.Fleet.VIPs[0]
		if w.MinSites != fleetMinSites || w.AnnouncingSites != announcing || w.KnownSites != known {
			return fmt.Errorf("%s: anycastctl fleet web: min_sites %d, %d of %d sites announcing; want %d, %d of %d",
				site, w.MinSites, w.AnnouncingSites, w.KnownSites, fleetMinSites, announcing, known)
		}
		return nil
	}
}

// eachFleetSite runs fn for every site at once and returns the first error.
func eachFleetSite(fn func(site string) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(fleetSites))
	for site := range fleetSites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(site); err != nil {
				errs <- fmt.Errorf("%s: %w", site, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

var fleetAll = []string{"site-a", "site-b", "site-c"}

// TestFleetGuard runs the fleet guard (issue #21) on anycast-fleet: three
// sites with a VIP at min_sites 2, one etcd, as the router sees it.
//
//  1. Steady state: the router has the VIP from all three sites.
//  2. The web service killed at every site at once: exactly 2 sites keep
//     the VIP at the router, with the degraded community, and stay so;
//     anycastctl shows them guarded, the third down.
//  3. Web services back: all three announce again, not degraded.
//  4. etcd killed: nothing is withdrawn over more than two lease TTLs;
//     then site-c's web service killed: site-c stays announced, guarded
//     (on_coordinator_lost = "hold"); etcd back: site-c is withdrawn (two
//     other sites announce, min_sites 2).
//  5. Definite failures: with the fleet at its floor again (two guarded
//     sites), the api service (a listen check's definite failure) killed at
//     one keeper withdraws it below the floor, and the site that had
//     withdrawn comes back guarded (the decision is taken again on every
//     fleet change); killed at the other keeper, then at that last site,
//     each withdraws, down to no site at all.
func TestFleetGuard(t *testing.T) {
	f := startFleet(t)

	took := eventually(t, 30*time.Second, 50*time.Millisecond, "router has the VIP from all three sites",
		f.announcedExactly(fleetAll))
	for _, site := range fleetAll {
		eventually(t, 5*time.Second, 100*time.Millisecond, site+" shows web up", f.stateIs(site, "up"))
		// The guard must count the fleet before anything fails: with the
		// coordinator not yet reached, "hold" would keep every site.
		eventually(t, 10*time.Second, 100*time.Millisecond, site+"'s fleet view: etcd connected, 3 of 3 sites announce",
			f.fleetSees(site, true, 3, 3))
	}
	if _, err := get(f.Lab, "client", "http://203.0.113.30/"); err != nil {
		t.Errorf("client: GET of the VIP: %v", err)
	}
	for _, site := range fleetAll { // the coordinator is reached over the lab's links
		status, body, err := f.HTTPGet(t.Context(), site, "http://198.18.100.1:2379/health")
		if err != nil || status != 200 || !strings.Contains(body, `"health":"true"`) {
			t.Fatalf("%s: etcd's /health through the router: %d %q %v", site, status, body, err)
		}
	}
	t.Logf("1. steady state %v after the lab was up: the router has %s from all three sites", ms(took), fleetVIP)

	// 2. The web service dies everywhere at once.
	if err := eachFleetSite(func(site string) error { return f.KillProcess(site, webService, syscall.SIGKILL) }); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 15*time.Second, 20*time.Millisecond, fmt.Sprintf("exactly %d sites keep the VIP, degraded", fleetMinSites),
		f.guardedFloor())
	floor, err := f.fleetRoutes()
	if err != nil {
		t.Fatal(err)
	}
	never(t, 2*fleetLeaseTTL, 100*time.Millisecond, "the floor holds", func() error {
		paths, err := f.fleetRoutes()
		if err != nil {
			return err
		}
		if !slices.Equal(slices.Sorted(maps.Keys(paths)), slices.Sorted(maps.Keys(floor))) {
			return fmt.Errorf("router now has %s from %s, had it from %s", fleetVIP, describeFleet(paths), describeFleet(floor))
		}
		return f.guardedFloor()()
	})
	var keepers, gone []string
	for _, site := range fleetAll {
		if _, ok := floor[site]; ok {
			keepers = append(keepers, site)
			eventually(t, 5*time.Second, 100*time.Millisecond, site+" shows web guarded", f.stateIs(site, "guarded"))
		} else {
			gone = append(gone, site)
			eventually(t, 5*time.Second, 100*time.Millisecond, site+" shows web down", f.stateIs(site, "down"))
		}
		eventually(t, 5*time.Second, 100*time.Millisecond, site+"'s fleet view: 2 of 3 sites announce",
			f.fleetSees(site, true, fleetMinSites, 3))
	}
	t.Logf("2. web service killed at all three sites: after %v the router has %s from exactly %d (%s), the floor held for %v; "+
		"anycastctl: %v guarded, %v down", ms(took), fleetVIP, fleetMinSites, describeFleet(floor), 2*fleetLeaseTTL, keepers, gone)

	// 3. The web services come back. A guarded site may drop out for a
	// moment on the way (another site recovers first, the guard permits
	// its withdrawal, then its own check rises): the UPDATEs the router
	// receives from each guarded site are logged (1: the attributes
	// changed; 2 or more: withdrawn and announced again, or more churn).
	before := map[string]int{}
	for _, site := range keepers {
		if before[site], err = f.updatesReceived(site); err != nil {
			t.Fatal(err)
		}
	}
	if err := eachFleetSite(func(site string) error { return f.StartProcess(site, webService) }); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 15*time.Second, 20*time.Millisecond, "all three sites announce again, not degraded", f.announcedExactly(fleetAll))
	updates := map[string]int{}
	for _, site := range keepers {
		n, err := f.updatesReceived(site)
		if err != nil {
			t.Fatal(err)
		}
		updates[site] = n - before[site]
	}
	for _, site := range fleetAll {
		eventually(t, 5*time.Second, 100*time.Millisecond, site+" shows web up", f.stateIs(site, "up"))
		eventually(t, 5*time.Second, 100*time.Millisecond, site+"'s fleet view: 3 of 3 sites announce", f.fleetSees(site, true, 3, 3))
	}
	t.Logf("3. web services back: all three sites announce, none degraded, %v after the restart; "+
		"UPDATEs the router received from the guarded sites meanwhile: %v", ms(took), updates)

	// 4. etcd dies: losing the coordinator withdraws nothing.
	if err := f.KillProcess("etcd", "etcd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	window := 2*fleetLeaseTTL + time.Second
	never(t, window, 100*time.Millisecond, "with etcd gone, all three sites keep the VIP, not degraded", f.announcedExactly(fleetAll))
	for _, site := range fleetAll {
		if err := f.fleetSees(site, false, 0, 0)(); err != nil {
			t.Errorf("%v after %v without etcd", err, window)
		}
	}
	t.Logf("4a. etcd killed: all three sites kept %s, not degraded, for %v (lease_ttl %v)", fleetVIP, window, fleetLeaseTTL)

	if err := f.KillProcess("site-c", webService, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	guarded := f.announcedExactly(fleetAll, "site-c")
	took = fleetHoldUntil(t, 10*time.Second, "site-c stays announced while etcd is gone", fleetKeeps(f, "site-c"), guarded)
	never(t, fleetLeaseTTL, 100*time.Millisecond, "site-c stays guarded while etcd is gone", guarded)
	eventually(t, 5*time.Second, 100*time.Millisecond, "site-c shows web guarded", f.stateIs("site-c", "guarded"))
	t.Logf("4b. site-c's web service killed with etcd gone: site-c kept %s, degraded (guarded, hold), after %v, and for %v more",
		fleetVIP, ms(took), fleetLeaseTTL)

	start := time.Now()
	if err := f.StartProcess("etcd", "etcd"); err != nil {
		t.Fatal(err)
	}
	etcdUp := time.Since(start)
	// The nodes reach etcd again when their etcd client retries, on gRPC's
	// reconnection backoff (seconds after an outage of seconds).
	took = etcdUp + eventually(t, 20*time.Second, 20*time.Millisecond, "site-c withdraws once the guard counts the others",
		f.announcedExactly([]string{"site-a", "site-b"}))
	eventually(t, 5*time.Second, 100*time.Millisecond, "site-c shows web down", f.stateIs("site-c", "down"))
	for _, site := range fleetAll {
		eventually(t, 5*time.Second, 100*time.Millisecond, site+"'s fleet view: etcd connected again, 2 of 3 sites announce",
			f.fleetSees(site, true, 2, 3))
	}
	t.Logf("4c. etcd restarted (healthy after %v): site-c's path gone %v after the restart; site-a and site-b announce, not degraded",
		ms(etcdUp), ms(took))

	if err := f.StartProcess("site-c", webService); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, 20*time.Millisecond, "all three sites announce again", f.announcedExactly(fleetAll))

	// 5. Definite failures withdraw below the floor, down to the last
	// site. The site that withdrew at the floor still fails its web check
	// only: when a keeper leaves, its decision is taken again and it comes
	// back, guarded, to restore the floor.
	if err := eachFleetSite(func(site string) error { return f.KillProcess(site, webService, syscall.SIGKILL) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, 20*time.Millisecond, "the floor again", f.guardedFloor())
	floor, err = f.fleetRoutes()
	if err != nil {
		t.Fatal(err)
	}
	keepers = slices.Sorted(maps.Keys(floor))
	var back string
	for _, site := range fleetAll {
		if _, ok := floor[site]; !ok {
			back = site
		}
	}
	if err := f.KillProcess(keepers[0], apiService, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 5*time.Second, 10*time.Millisecond, keepers[0]+" withdraws on its definite failure, "+back+" restores the floor",
		f.announcedExactly([]string{keepers[1], back}, keepers[1], back))
	never(t, time.Second, 100*time.Millisecond, keepers[0]+" stays withdrawn", noPathFrom(f.Lab, "router", fleetVIP, fleetSites[keepers[0]]))
	t.Logf("5a. api service (listen check) killed at the guarded %s: withdrawn below the floor; %s, whose web check fails, "+
		"back guarded to restore it: router has %s from %s and %s after %v", keepers[0], back, fleetVIP, keepers[1], back, ms(took))
	if err := f.KillProcess(keepers[1], apiService, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 5*time.Second, 10*time.Millisecond, keepers[1]+" withdraws on its definite failure, "+back+" stays",
		f.announcedExactly([]string{back}, back))
	if err := f.KillProcess(back, apiService, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	last := eventually(t, 5*time.Second, 10*time.Millisecond, back+", the last site, withdraws on its definite failure",
		f.announcedExactly(nil))
	for _, site := range fleetAll {
		eventually(t, 5*time.Second, 100*time.Millisecond, site+" shows web down", f.stateIs(site, "down"))
	}
	t.Logf("5b. api service killed at %s: withdrawn after %v, %s alone keeps %s, guarded; killed at %s, the last site: withdrawn after %v",
		keepers[1], ms(took), back, fleetVIP, back, ms(last))
}

// updatesReceived returns how many UPDATE messages the router has
// received from site's anycastd.
func (f *fleetLab) updatesReceived(site string) (int, error) {
	peer := fleetSites[site]
	var out map[string]struct {
		MessageStats struct {
			UpdatesRecv int `json:"updatesRecv"`
		} `json:"messageStats"`
	}
	if err := f.VtyshJSON("router", "show bgp neighbors "+peer+" json", &out); err != nil {
		return 0, err
	}
	n, ok := out[peer]
	if !ok {
		return 0, fmt.Errorf("router has no neighbor %s", peer)
	}
	return n.MessageStats.UpdatesRecv, nil
}

// fleetKeeps is a condition: the router still has the VIP from site.
func fleetKeeps(f *fleetLab, site string) func() error {
	return func() error {
		paths, err := f.fleetRoutes()
		if err != nil {
			return err
		}
		if _, ok := paths[site]; !ok {
			return fmt.Errorf("router: %s withdrawn by %s (now: %s)", fleetVIP, site, describeFleet(paths))
		}
		return nil
	}
}

// fleetHoldUntil polls every 20ms until goal holds, failing the test if
// invariant fails first or timeout passes; it returns how long it took.
func fleetHoldUntil(t *testing.T, timeout time.Duration, what string, invariant, goal func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if err := invariant(); err != nil {
			t.Fatalf("%s: after %v: %v", what, ms(time.Since(start)), err)
		}
		err := goal()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
