//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/integration/lab"
)

// A router that sends anycastd a full table by mistake: BIRD in the
// anycast-bird topology gets a static protocol "bulk4" with 120,000 IPv4
// /32s, kept out of its kernel and exported to site-b's IPv4 session only.
// The protocol starts disabled, so that site-b's anycastd is measured idle
// first; `birdc enable bulk4` then makes BIRD send them.
const (
	bulkCount   = 120000
	routerB4    = "198.18.52.1" // the router, as site-b's IPv4 [[bgp.peer]]
	rssSlack    = 16 << 20      // how much site-b's RSS may grow with max_received_prefixes
	limitWarn   = "BGP peer sent more prefixes than max_received_prefixes"
	limitReason = "maximum number of prefixes reached (max_received_prefixes 1000)"
)

// TestFullTableFromARouter: BIRD sends 120,000 routes on site-b's IPv4
// session, where max_received_prefixes is left at its default (1000).
// anycastd closes that session (CEASE, Maximum Number of Prefixes Reached)
// and says why; site-b's IPv6 session and site-a keep their routes; site-b's
// anycastd stays within 16 MiB of its idle RSS, also while the session comes
// up again after max_received_prefixes_restart (3s here) and is closed
// again.
func TestFullTableFromARouter(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	ft := startFullTable(t, `max_received_prefixes_restart = "3s"`)
	l := ft.l

	p := ft.waitSteady(t)
	if p.GetMaxReceivedPrefixes() != 1000 {
		t.Fatalf("site-b's session with %s: max_received_prefixes %d, want the default 1000", routerB4, p.GetMaxReceivedPrefixes())
	}
	idle, idleHWM := ft.idleRSS(t)

	// BIRD sends the table. Background: the most routes BIRD reports
	// exported on site_b4 (it resets the count when the session goes down).
	exported := watchBIRDExported(l, "site_b4")
	defer exported.stop()
	rss, start, loaded := ft.sendTable(t)
	defer rss.stop()
	birdDown := watchFrom(start, 20*time.Second, 10*time.Millisecond, birdNotEstablished(l, "site_b4"))
	closed := watchFrom(start, 20*time.Second, 10*time.Millisecond,
		func() error {
			p, err := ft.peer()
			if err != nil {
				return err
			}
			if p.GetMaxPrefixesExceeded() < 1 || p.GetState() == pb.PeerState_PEER_STATE_ESTABLISHED {
				return fmt.Errorf("session with %s: %s, max_prefixes_exceeded %d, last error %q",
					routerB4, p.GetState(), p.GetMaxPrefixesExceeded(), p.GetLastError())
			}
			if !strings.Contains(p.GetLastError(), limitReason) {
				return fmt.Errorf("session with %s closed, last error %q, want it to say %q", routerB4, p.GetLastError(), limitReason)
			}
			return nil
		})
	tClosed := closed.wait(t, "anycastd closes the session with the router's IPv4 address for too many prefixes")
	exported.stop()
	tBIRDDown := birdDown.wait(t, "BIRD's site_b4 leaves Established")
	tLoaded := loaded.wait(t, "BIRD loads the 120,000 static routes")
	eventually(t, 5*time.Second, 50*time.Millisecond, "anycastd logs the warning", logged(l, "site-b", limitWarn, "peer="+routerB4, "max_received_prefixes=1000"))
	p, err := ft.peer()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("birdc enable bulk4: BIRD had the 120,000 routes after %v; anycastd closed the session after %v (last error %q, "+
		"%d UPDATEs received); BIRD's site_b4 left Established after %v; %s",
		ms(tLoaded), ms(tClosed), p.GetLastError(), p.GetReceived().GetUpdate(), ms(tBIRDDown), exported)

	// Observation: at least 10 s, and until the session has come up again
	// after max_received_prefixes_restart and been closed again (up to 25
	// s). Site-b's IPv6 session and site A keep their routes throughout.
	keep := all(
		birdEstablished(l, "site_b6"),
		birdEstablished(l, "site_a"),
		birdBest(l, vip4, "site_a"),
		birdBest(l, vip6, "site_a", "site_b6"),
		func() error {
			if !l.Running("site-b", "anycastd") || l.Pid("site-b", "anycastd") != ft.pid {
				return fmt.Errorf("site-b's anycastd (pid %d) is no longer running", ft.pid)
			}
			return nil
		},
	)
	obsStart := time.Now()
	var reclosed time.Duration
	var checks int
	for {
		if err := keep(); err != nil {
			t.Fatalf("%v after the session was closed: %v", ms(time.Since(obsStart)), err)
		}
		checks++
		// The API not too often: its garbage would count as anycastd's RSS.
		if reclosed == 0 && checks%10 == 0 {
			if p, err := ft.peer(); err == nil && p.GetMaxPrefixesExceeded() >= 2 {
				reclosed = time.Since(start) - tClosed
			}
		}
		since := time.Since(obsStart)
		if since >= 10*time.Second && (reclosed > 0 || since >= 25*time.Second) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, samples, err := rss.stop()
	if err != nil {
		t.Fatal(err)
	}
	hwm := mustStatus(t, ft.pid, "VmHWM")
	if out, err := l.Log("site-b", "anycastd"); err == nil {
		var about []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, routerB4) {
				about = append(about, line)
			}
		}
		t.Logf("site-b's anycastd about %s:\n%s", routerB4, strings.Join(about, "\n"))
	}
	p, err = ft.peer()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("observed %v (%d checks): site_b6 and site_a Established, BIRD kept %s from site_a and %s from site_a and site_b6",
		ms(time.Since(obsStart)), checks, vip4, vip6)
	if reclosed > 0 {
		t.Logf("max_received_prefixes_restart 3s: the session came up again and was closed again %v after the first closure "+
			"(closed %d times in all, state now %s, BIRD site_b4: %s)",
			ms(reclosed), p.GetMaxPrefixesExceeded(), p.GetState(), birdProtoInfo(l, "site_b4"))
	} else {
		t.Errorf("max_received_prefixes_restart 3s: the session was not closed a second time within %v (closed %d times, state %s, last error %q)",
			ms(time.Since(obsStart)), p.GetMaxPrefixesExceeded(), p.GetState(), p.GetLastError())
	}
	t.Logf("site-b anycastd: idle RSS %s, after 120,000 routes %s (max of %d samples from birdc enable on; VmHWM %s idle, %s after)",
		mib(idle), mib(after), samples, mib(idleHWM), mib(hwm))
	if after-idle > rssSlack {
		t.Errorf("site-b's anycastd grew from %s to %s RSS, more than %s, although max_received_prefixes is 1000",
			mib(idle), mib(after), mib(rssSlack))
	}
}

// TestFullTableWithoutLimit is the figure without max_received_prefixes:
// site-b's anycastd accepts the session with all 120,000 routes and keeps
// them in GoBGP's Adj-RIB-In. Only with ANYCASTD_FULLTABLE_NOLIMIT=1.
func TestFullTableWithoutLimit(t *testing.T) {
	if os.Getenv("ANYCASTD_FULLTABLE_NOLIMIT") != "1" {
		t.Skip("set ANYCASTD_FULLTABLE_NOLIMIT=1 to measure anycastd holding 120,000 received routes with max_received_prefixes = 0 (the figure without the limit; slow and memory-hungry)")
	}
	needLab(t, lab.RoleBIRD)
	ft := startFullTable(t, `max_received_prefixes = 0`)
	l := ft.l

	p := ft.waitSteady(t)
	if p.GetMaxReceivedPrefixes() != 0 {
		t.Fatalf("site-b's session with %s: max_received_prefixes %d, want 0", routerB4, p.GetMaxReceivedPrefixes())
	}
	idle, idleHWM := ft.idleRSS(t)

	rss, start, loaded := ft.sendTable(t)
	defer rss.stop()
	sent := watchFrom(start, 60*time.Second, 50*time.Millisecond, birdExported(l, "site_b4", bulkCount))
	var received uint64
	tReceived := eventually(t, 60*time.Second, 100*time.Millisecond, "anycastd holds the 120,000 routes", func() error {
		p, err := ft.peer()
		if err != nil {
			return err
		}
		received = p.GetPrefixesReceived()
		if p.GetState() != pb.PeerState_PEER_STATE_ESTABLISHED {
			return fmt.Errorf("session with %s: %s (last error %q)", routerB4, p.GetState(), p.GetLastError())
		}
		if received < bulkCount {
			return fmt.Errorf("session with %s: %d prefixes received", routerB4, received)
		}
		return nil
	})
	tLoaded := loaded.wait(t, "BIRD loads the 120,000 static routes")
	tSent := sent.wait(t, "BIRD exports the 120,000 routes on site_b4")
	// A few more seconds: the garbage collector's next cycles.
	never(t, 3*time.Second, 100*time.Millisecond, "the IPv4 session stays up and the VIPs stay announced", all(
		birdEstablished(l, "site_b4"),
		birdEstablished(l, "site_b6"),
		birdBest(l, vip4, "site_a", "site_b4"),
		birdBest(l, vip6, "site_a", "site_b6"),
	))
	after, samples, err := rss.stop()
	if err != nil {
		t.Fatal(err)
	}
	hwm := mustStatus(t, ft.pid, "VmHWM")
	now := mustStatus(t, ft.pid, "VmRSS")
	t.Logf("birdc enable bulk4: BIRD had the routes after %v, counted them exported on site_b4 after %v; "+
		"anycastd reported %d prefixes received after %v", ms(tLoaded), ms(tSent), received, ms(tReceived))
	t.Logf("site-b anycastd without max_received_prefixes: idle RSS %s, after 120,000 routes %s "+
		"(max of %d samples; %s at the end; VmHWM %s idle, %s after): %.0f bytes per route",
		mib(idle), mib(after), samples, mib(now), mib(idleHWM), mib(hwm), float64(after-idle)/bulkCount)
}

// fullTable is the anycast-bird lab prepared for the full-table tests.
type fullTable struct {
	l    *lab.Lab
	api  pb.AnycastdServiceClient
	pid  int // site-b's anycastd
	sock string
}

// startFullTable starts anycast-bird with the bulk4 protocol (disabled) on
// the router and site-b's API on a unix socket; peerLines are added to
// site-b's [[bgp.peer]] for the router's IPv4 address.
func startFullTable(t *testing.T, peerLines string) *fullTable {
	t.Helper()
	dir, err := os.MkdirTemp("", "acd-ft") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ft := &fullTable{sock: filepath.Join(dir, "api.sock")}
	ft.l = startLab(t, birdTopo, func(topo *lab.Topology) {
		conf, err := topo.Nodes["router"].File("bird.conf")
		if err != nil {
			t.Fatal(err)
		}
		// Not into the kernel: 198.18.0.0/15 also holds the links.
		conf = replaceOnce(t, "router's bird.conf", conf,
			"ipv4 { export all; };", `ipv4 { export where proto != "bulk4"; };`)
		conf = replaceOnce(t, "router's bird.conf", conf,
			"ipv4 { import filter from_site_b4; export none; };",
			`ipv4 { import filter from_site_b4; export where proto = "bulk4"; };`)
		conf = append(conf, bulkProtocol(t, bulkCount)...)
		if err := topo.SetFile("router", "bird.conf", conf); err != nil {
			t.Fatal(err)
		}

		toml, err := topo.Nodes["site-b"].File("anycastd.toml")
		if err != nil {
			t.Fatal(err)
		}
		toml = replaceOnce(t, "site-b's anycastd.toml", toml,
			"[api]\nlisten = \"\"\n", "[api]\nlisten = \"unix://"+ft.sock+"\"\n")
		toml = replaceOnce(t, "site-b's anycastd.toml", toml,
			"description = \"router (IPv4)\"\n", "description = \"router (IPv4)\"\n"+peerLines+"\n")
		if bytes.Contains(toml, []byte("max_received_prefixes =")) != strings.Contains(peerLines, "max_received_prefixes =") {
			t.Fatalf("site-b's anycastd.toml sets max_received_prefixes unexpectedly:\n%s", toml)
		}
		if err := topo.SetFile("site-b", "anycastd.toml", toml); err != nil {
			t.Fatal(err)
		}
	})
	// Before the lab's own cleanup (cleanups run last first): without the
	// 120,000 routes, the dump of a failed test stays readable.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, proto := range []string{"site_b4", "bulk4"} {
			out, _ := ft.l.Birdc("router", "show protocols all "+proto)
			t.Logf("BIRD: show protocols all %s:\n%s", proto, strings.TrimSpace(out))
		}
		ft.l.Birdc("router", "disable bulk4")
		// Down once BIRD has flushed the routes from its table.
		lab.WaitFor(10*time.Second, 20*time.Millisecond, func() error {
			if info := birdProtoInfo(ft.l, "bulk4"); !strings.HasPrefix(info, "down") {
				return fmt.Errorf("BIRD: bulk4 %s", info)
			}
			return nil
		})
	})
	conn, err := grpc.NewClient("unix:"+ft.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ft.api = pb.NewAnycastdServiceClient(conn)
	ft.pid = ft.l.Pid("site-b", "anycastd")
	if ft.pid == 0 {
		t.Fatal("site-b's anycastd has no pid")
	}
	return ft
}

// waitSteady waits for TestBIRD's steady state (both VIPs from both sites,
// site A preferred) and returns site-b's session with the router's IPv4
// address, Established.
func (ft *fullTable) waitSteady(t *testing.T) *pb.Peer {
	t.Helper()
	took := eventually(t, 30*time.Second, 50*time.Millisecond, "BIRD has both VIPs from both sites, prefers site A", all(
		birdBest(ft.l, vip4, "site_a", "site_b4"),
		birdBest(ft.l, vip6, "site_a", "site_b6"),
	))
	var p *pb.Peer
	eventually(t, 10*time.Second, 50*time.Millisecond, "site-b's API shows the IPv4 session Established", func() error {
		var err error
		if p, err = ft.peer(); err != nil {
			return err
		}
		if p.GetState() != pb.PeerState_PEER_STATE_ESTABLISHED {
			return fmt.Errorf("session with %s: %s", routerB4, p.GetState())
		}
		return nil
	})
	t.Logf("steady state %v after the lab was up; site-b's session with %s: max_received_prefixes %d, %d prefixes received",
		ms(took), routerB4, p.GetMaxReceivedPrefixes(), p.GetPrefixesReceived())
	return p
}

// idleRSS samples site-b's anycastd over 2 s and returns the highest VmRSS
// and the VmHWM at the end.
func (ft *fullTable) idleRSS(t *testing.T) (rss, hwm int64) {
	t.Helper()
	s := sampleRSS(ft.pid, 100*time.Millisecond)
	time.Sleep(2 * time.Second) // the sampling window, not a wait for a condition
	rss, n, err := s.stop()
	if err != nil {
		t.Fatal(err)
	}
	hwm = mustStatus(t, ft.pid, "VmHWM")
	t.Logf("site-b anycastd idle: VmRSS %s (max of %d samples over 2s), VmHWM %s", mib(rss), n, mib(hwm))
	return rss, hwm
}

// peer returns site-b's session with the router's IPv4 address, from its API.
// sendTable samples site-b's anycastd's RSS every 20 ms from now on and
// makes BIRD send its 120,000 routes; loaded is BIRD holding them all.
func (ft *fullTable) sendTable(t *testing.T) (rss *rssSampler, start time.Time, loaded *watch) {
	t.Helper()
	rss = sampleRSS(ft.pid, 20*time.Millisecond)
	start = time.Now()
	if _, err := ft.l.Birdc("router", "enable bulk4"); err != nil {
		rss.stop()
		t.Fatal(err)
	}
	return rss, start, watchFrom(start, 30*time.Second, 20*time.Millisecond, birdImported(ft.l, "bulk4", bulkCount))
}

func (ft *fullTable) peer() (*pb.Peer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := ft.api.ListPeers(ctx, &pb.ListPeersRequest{Address: routerB4})
	if err != nil {
		return nil, fmt.Errorf("site-b's API: %w", err)
	}
	if len(resp.GetPeers()) != 1 {
		return nil, fmt.Errorf("site-b's API: %d peers for %s", len(resp.GetPeers()), routerB4)
	}
	return resp.GetPeers()[0], nil
}

// bulkProtocol returns a disabled BIRD static protocol "bulk4" with n IPv4
// /32 blackhole routes, all in the lab's range 198.18.0.0/15 and clear of
// its links (198.18.48.0/20): 198.18.64.0 up to 198.19.255.255 (114,688
// addresses), then on from 198.18.0.0.
func bulkProtocol(t *testing.T, n int) []byte {
	t.Helper()
	lab15 := netip.MustParsePrefix("198.18.0.0/15")
	links := netip.MustParsePrefix("198.18.48.0/20")
	var b bytes.Buffer
	b.WriteString("\n# A full table by mistake (fulltable_test.go): enabled by the test.\nprotocol static bulk4 {\n\tdisabled;\n\tipv4;\n")
	first := netip.MustParseAddr("198.18.64.0")
	a := first
	for i := 0; i < n; i++ {
		if !lab15.Contains(a) {
			a = lab15.Addr() // wrap around to 198.18.0.0
		}
		if links.Contains(a) || a == first && i > 0 {
			t.Fatalf("%d /32s do not fit in %s outside %s", n, lab15, links)
		}
		fmt.Fprintf(&b, "\troute %s/32 blackhole;\n", a)
		a = a.Next()
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func replaceOnce(t *testing.T, what string, data []byte, old, repl string) []byte {
	t.Helper()
	if n := bytes.Count(data, []byte(old)); n != 1 {
		t.Fatalf("%s: %q occurs %d times, want once", what, old, n)
	}
	return bytes.Replace(data, []byte(old), []byte(repl), 1)
}

// BIRD's protocol states.

var (
	birdImportedRE = regexp.MustCompile(`Routes:\s+(\d+) imported`)
	birdExportedRE = regexp.MustCompile(`Routes:\s+\d+ imported, (\d+) exported`)
)

func birdRouteCount(l *lab.Lab, proto string, re *regexp.Regexp) (int, error) {
	out, err := l.Birdc("router", "show protocols all "+proto)
	if err != nil {
		return 0, err
	}
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, nil // a channel that is down shows no route counts
	}
	return strconv.Atoi(m[1])
}

// birdRoutesAtLeast is a condition: BIRD's protocol proto counts at least
// want routes, imported or exported (re, with what naming it in errors).
func birdRoutesAtLeast(l *lab.Lab, proto string, re *regexp.Regexp, what string, want int) func() error {
	return func() error {
		n, err := birdRouteCount(l, proto, re)
		if err != nil {
			return err
		}
		if n < want {
			return fmt.Errorf("BIRD: %s has %d routes %s, want %d", proto, n, what, want)
		}
		return nil
	}
}

func birdImported(l *lab.Lab, proto string, want int) func() error {
	return birdRoutesAtLeast(l, proto, birdImportedRE, "imported", want)
}

func birdExported(l *lab.Lab, proto string, want int) func() error {
	return birdRoutesAtLeast(l, proto, birdExportedRE, "exported", want)
}

// birdProtoInfo returns the state and info columns of a protocol in
// `birdc show protocols`.
func birdProtoInfo(l *lab.Lab, proto string) string {
	out, err := l.Birdc("router", "show protocols "+proto)
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == proto {
			return strings.Join(f[3:], " ")
		}
	}
	return fmt.Sprintf("no protocol %s: %q", proto, out)
}

func birdEstablished(l *lab.Lab, proto string) func() error {
	return func() error {
		if info := birdProtoInfo(l, proto); !strings.Contains(info, "Established") {
			return fmt.Errorf("BIRD: %s is not Established: %s", proto, info)
		}
		return nil
	}
}

func birdNotEstablished(l *lab.Lab, proto string) func() error {
	return func() error {
		if info := birdProtoInfo(l, proto); strings.Contains(info, "Established") {
			return fmt.Errorf("BIRD: %s is still Established: %s", proto, info)
		}
		return nil
	}
}

// exportWatch polls how many routes BIRD counts exported on a protocol and
// keeps the highest.
type exportWatch struct {
	mu   sync.Mutex
	most int
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func watchBIRDExported(l *lab.Lab, proto string) *exportWatch {
	w := &exportWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if n, err := birdRouteCount(l, proto, birdExportedRE); err == nil {
				w.mu.Lock()
				w.most = max(w.most, n)
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *exportWatch) max() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most
}

func (w *exportWatch) String() string {
	if n := w.max(); n > 0 {
		return fmt.Sprintf("BIRD counted up to %d routes exported on site_b4 (queued for the session, not necessarily sent)", n)
	}
	return "BIRD's export count on site_b4 was never seen above 0 (the session went down between two polls)"
}

func (w *exportWatch) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

// logged is a condition: a line of node's anycastd log contains every one
// of words.
func logged(l *lab.Lab, node string, words ...string) func() error {
	return func() error {
		out, err := l.Log(node, "anycastd")
		if err != nil {
			return err
		}
	lines:
		for _, line := range strings.Split(out, "\n") {
			for _, w := range words {
				if !strings.Contains(line, w) {
					continue lines
				}
			}
			return nil
		}
		return fmt.Errorf("%s's anycastd logged no line with %q", node, words)
	}
}

// Memory of a process, from /proc/PID/status.

// procStatus returns a "<field>: N kB" value of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mustStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	v, err := procStatus(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// rssSampler reads a process's VmRSS periodically and keeps the highest.
type rssSampler struct {
	once sync.Once
	quit chan struct{}
	done chan struct{}
	max  int64
	n    int
	err  error
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			v, err := procStatus(pid, "VmRSS")
			if err != nil {
				s.err = err
				return
			}
			s.max = max(s.max, v)
			s.n++
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the highest VmRSS and the number of
// samples.
func (s *rssSampler) stop() (int64, int, error) {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	return s.max, s.n, s.err
}
