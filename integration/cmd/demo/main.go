// Command demo shows anycast failover with anycastd on the anycast-2site lab
// (containerlab/anycast-2site), run in network namespaces: it brings the lab
// up, shows the core router's route and which site answers the client,
// kills site A's web service, shows the withdrawal at the core and the
// client moving to site B (with timings), restores the service, shows site A
// back, and tears everything down, also on Ctrl-C. It needs root, FRR and
// the anycastd and siteweb binaries; scripts/demo.sh (make demo) sets that
// up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

const (
	vip    = "203.0.113.10/32"
	vipURL = "http://203.0.113.10/"
)

// The core's neighbors, by address.
var edges = map[string]string{"198.18.11.2": "edge-a", "198.18.12.2": "edge-b"}

func main() {
	topoPath := flag.String("topology", "containerlab/anycast-2site/anycast-2site.clab.yml", "lab topology")
	anycastd := flag.String("anycastd", "bin/anycastd", "anycastd binary")
	siteweb := flag.String("siteweb", "bin/siteweb", "siteweb binary")
	cleanup := flag.Bool("cleanup", false, "only remove what earlier, interrupted labs left behind, then exit")
	flag.Parse()

	if os.Geteuid() != 0 {
		fail("the demo needs root (it creates network namespaces): run it with sudo")
	}
	if deleted, err := lab.Sweep(); err != nil {
		fmt.Printf("note: cleaning up earlier labs: %v\n", err)
	} else if len(deleted) > 0 {
		fmt.Printf("Removed %d namespaces left behind by an earlier, interrupted lab.\n", len(deleted))
	}
	if *cleanup {
		return
	}
	if missing := lab.Tools(lab.RoleFRR); len(missing) > 0 {
		fail("missing %s: install Debian's frr package", strings.Join(missing, ", "))
	}
	progs := map[string]string{}
	for name, p := range map[string]string{"anycastd": *anycastd, "siteweb": *siteweb} {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fail("%s binary: %v (build it first; make demo does)", name, err)
		}
		progs[name] = abs
	}
	topo, err := lab.Load(*topoPath)
	if err != nil {
		fail("%v", err)
	}

	stop := lab.HandleSignals(func(sig os.Signal) {
		fmt.Printf("\n\n%v: tearing the lab down...\n", sig)
	})
	defer stop()
	if err := demo(topo, progs); err != nil {
		if lab.Interrupted() {
			select {} // the signal handler tears down and exits
		}
		lab.CloseAll()
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	os.Exit(1)
}

func demo(topo *lab.Topology, progs map[string]string) error {
	begin := time.Now()
	say(`anycastd demo: anycast failover between two sites

    client ── core (FRR, AS 65000) ─┬─ edge-a (FRR, AS 65001) ── site-a (anycastd + web)
                                    └─ edge-b (FRR, AS 65002) ── site-b (anycastd + web)

Both sites serve the same address, %s, and announce it with anycastd
while their web service passes its health check (every 200ms; 2 failures
withdraw, 2 successes announce). Site A is nearer: edge-b prepends its AS
twice, so the core prefers the path through edge-a.`, vipURL)

	step("Starting the lab: one network namespace per node, veth links, FRR, anycastd")
	l, err := lab.Start(context.Background(), topo, lab.Options{Programs: progs})
	if err != nil {
		return err
	}
	defer func() {
		step("Tearing down: anycastd withdraws and stops, FRR stops, namespaces are deleted")
		if err := l.Close(); err != nil {
			fmt.Printf("  teardown: %v\n", err)
		} else {
			fmt.Println("  done, nothing left behind.")
		}
	}()
	fmt.Printf("  lab %s is up (namespaces acd-%s-*)\n", topo.Name, l.ID)

	took, err := lab.WaitFor(30*time.Second, 50*time.Millisecond, func() error {
		return bestVia(l, "edge-a", "edge-b")
	})
	if err != nil {
		return fmt.Errorf("waiting for the core to learn the VIP from both sites: %w", err)
	}
	fmt.Printf("  BGP converged %s later.\n", secs(took))
	if _, err := lab.WaitFor(10*time.Second, 50*time.Millisecond, answered(l, "site-a")); err != nil {
		return fmt.Errorf("waiting for site A to answer: %w", err)
	}

	step("The core's routes to " + vip)
	showCore(l)
	step("The client asks " + vipURL)
	showClient(l, 3)

	var results [][2]string

	step("Breaking site A: killing its web service")
	start := time.Now()
	if err := l.KillProcess("site-a", "siteweb", syscall.SIGKILL); err != nil {
		return err
	}
	fmt.Printf("  %s  site-a's web service is dead (SIGKILL); anycastd's health check will notice\n", "+0.000s")
	route, client, err := race(l, start, func() error { return noPathVia(l, "edge-a") }, answered(l, "site-b"))
	if err != nil {
		return err
	}
	fmt.Printf("  %s  core: path via edge-a withdrawn, now routing to site B\n", plus(route))
	fmt.Printf("  %s  client: answered by site-b\n", plus(client))
	results = append(results,
		[2]string{"service killed -> route withdrawn at the core", secs(route)},
		[2]string{"service killed -> client answered by site B", secs(client)})
	step("The core's routes now")
	showCore(l)
	step("The client asks again")
	showClient(l, 3)

	step("Repairing site A: starting its web service again")
	start = time.Now()
	if err := l.StartProcess("site-a", "siteweb"); err != nil {
		return err
	}
	fmt.Printf("  %s  site-a's web service is running; anycastd announces after 2 passing checks\n", "+0.000s")
	route, client, err = race(l, start, func() error { return bestVia(l, "edge-a", "edge-b") }, answered(l, "site-a"))
	if err != nil {
		return err
	}
	fmt.Printf("  %s  core: path via edge-a is back and preferred\n", plus(route))
	fmt.Printf("  %s  client: answered by site-a\n", plus(client))
	results = append(results,
		[2]string{"service back -> core prefers site A again", secs(route)},
		[2]string{"service back -> client answered by site A", secs(client)})
	step("The core's routes now")
	showCore(l)
	step("The client asks again")
	showClient(l, 3)

	step("Timings")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, r := range results {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	tw.Flush()
	fmt.Printf("  (whole demo so far: %s)\n", secs(time.Since(begin)))
	return nil
}

// race polls both conditions from start and returns when each first held.
func race(l *lab.Lab, start time.Time, route, client func() error) (tRoute, tClient time.Duration, err error) {
	type result struct {
		which int
		d     time.Duration
		err   error
	}
	ch := make(chan result, 2)
	for i, cond := range []func() error{route, client} {
		go func() {
			_, err := lab.WaitFor(20*time.Second, 10*time.Millisecond, cond)
			ch <- result{i, time.Since(start), err}
		}()
	}
	var errs []error
	for range 2 {
		r := <-ch
		if r.err != nil {
			errs = append(errs, r.err)
		}
		if r.which == 0 {
			tRoute = r.d
		} else {
			tClient = r.d
		}
	}
	return tRoute, tClient, errors.Join(errs...)
}

type path struct {
	via, asPath string
	best        bool
}

func corePaths(l *lab.Lab) ([]path, error) {
	var out struct {
		Paths []struct {
			ASPath struct {
				String string `json:"string"`
			} `json:"aspath"`
			Bestpath *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := l.VtyshJSON("core", "show bgp ipv4 unicast "+vip+" json", &out); err != nil {
		return nil, err
	}
	var paths []path
	for _, p := range out.Paths {
		via := edges[p.Peer.PeerID]
		if via == "" {
			via = p.Peer.PeerID
		}
		paths = append(paths, path{via: via, asPath: p.ASPath.String, best: p.Bestpath != nil && p.Bestpath.Overall})
	}
	slices.SortFunc(paths, func(a, b path) int { return strings.Compare(a.via, b.via) })
	return paths, nil
}

// bestVia: the core's best path goes via best, and it also has paths via
// the others.
func bestVia(l *lab.Lab, best string, others ...string) error {
	paths, err := corePaths(l)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if p.best && p.via != best {
			return fmt.Errorf("best path via %s", p.via)
		}
	}
	for _, want := range append(others, best) {
		if !slices.ContainsFunc(paths, func(p path) bool { return p.via == want }) {
			return fmt.Errorf("no path via %s", want)
		}
	}
	return nil
}

func noPathVia(l *lab.Lab, via string) error {
	paths, err := corePaths(l)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(paths, func(p path) bool { return p.via == via }) {
		return fmt.Errorf("still a path via %s", via)
	}
	return nil
}

func showCore(l *lab.Lab) {
	paths, err := corePaths(l)
	if err != nil {
		fmt.Printf("  (%v)\n", err)
		return
	}
	if len(paths) == 0 {
		fmt.Println("  no route")
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, p := range paths {
		mark := " "
		if p.best {
			mark = ">"
		}
		fmt.Fprintf(tw, "  %s via %s\tAS path %s\t%s\n", mark, p.via, p.asPath, map[bool]string{true: "(best)"}[p.best])
	}
	tw.Flush()
	if out, err := l.Exec("core", "ip", "route", "show", strings.TrimSuffix(vip, "/32")); err == nil {
		fmt.Printf("  kernel: %s\n", strings.TrimSpace(out))
	}
}

func get(l *lab.Lab) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	status, body, err := l.HTTPGet(ctx, "client", vipURL)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("HTTP status %d", status)
	}
	return strings.TrimSpace(body), nil
}

func answered(l *lab.Lab, site string) func() error {
	return func() error {
		got, err := get(l)
		if err != nil {
			return err
		}
		if got != site {
			return fmt.Errorf("answered by %s", got)
		}
		return nil
	}
}

func showClient(l *lab.Lab, n int) {
	for range n {
		got, err := get(l)
		if err != nil {
			got = "error: " + err.Error()
		}
		fmt.Printf("  client: GET %s  ->  %s\n", vipURL, got)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func step(s string) { fmt.Printf("\n== %s\n", s) }

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func plus(d time.Duration) string { return "+" + secs(d) }
