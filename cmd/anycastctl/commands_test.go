package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

const port = `127\.0\.0\.1:\d+`

// upAndRunning starts the daemon and waits until both VIPs are announced
// and their checks have a few results.
func upAndRunning(t *testing.T) *env {
	e := start(t)
	e.mustCtl(t, "report", "batch", "ok")
	bgptest.Eventually(t, wait, func() bool { return len(e.router.Received(t)) == 3 }, "3 prefixes at the router",
		func() string { return fmt.Sprint(bgptest.Prefixes(e.router.Received(t))) })
	e.until(t, "2 of 2 announced (3 prefixes)", "status")
	e.until(t, "1 of 1 established", "status")
	bgptest.Eventually(t, wait, func() bool {
		out, _, _ := e.ctl(t, "checks", "svc", "-o", "json")
		var resp pb.ListChecksResponse
		return protojson.Unmarshal([]byte(out), &resp) == nil && len(resp.Checks[0].Results) >= 3
	}, "3 probes of svc", nil)
	return e
}

// The tables, against golden files with the volatile fields normalised.
func TestTables(t *testing.T) {
	e := upAndRunning(t)
	golden(t, "status", normalize(e.mustCtl(t, "status"), []string{"version", "started"}))
	golden(t, "vips", normalize(e.mustCtl(t, "vips"), []string{"FOR"}))
	golden(t, "checks", normalize(e.mustCtl(t, "checks"), []string{"FOR", "PASSES", "FAILS", "LAST RESULT"}, port, "127.0.0.1:PORT"))
	golden(t, "check-svc", normalize(e.mustCtl(t, "checks", "svc", "-n", "3"),
		[]string{"status", "probes", "TIME", "LATENCY"}, port, "127.0.0.1:PORT"))
	golden(t, "peers", normalize(e.mustCtl(t, "peers"), []string{"FOR", "UPDATES SENT", "UPDATES RCVD"}))
	golden(t, "routes", normalize(e.mustCtl(t, "routes"), nil))
	if one, all := e.mustCtl(t, "routes", "127.0.0.2"), e.mustCtl(t, "routes"); one != all {
		t.Errorf("routes 127.0.0.2 (the only peer):\n%s\ndiffers from routes:\n%s", one, all)
	}
}

// -o json is the API's answer: it parses back, and says what the router has.
func TestJSON(t *testing.T) {
	e := upAndRunning(t)
	parse := func(m proto.Message, args ...string) {
		t.Helper()
		out := e.mustCtl(t, append(args, "-o", "json")...)
		if err := protojson.Unmarshal([]byte(out), m); err != nil {
			t.Fatalf("anycastctl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var st pb.GetStatusResponse
	parse(&st, "status")
	if n := st.Node; n.Asn != 65001 || n.RouterId != "198.18.1.2" || n.VipsAnnounced != 2 || n.PeersEstablished != 1 {
		t.Errorf("status = %v", n)
	}
	var vips pb.ListVIPsResponse
	parse(&vips, "vips")
	if len(vips.Vips) != 2 || vips.Vips[0].Name != "web" || vips.Vips[0].State != pb.VIPState_VIP_STATE_UP ||
		vips.Vips[0].Prefixes[0].Attributes.GetMed() != 10 || vips.Vips[1].Checks[0].Name != "batch" {
		t.Errorf("vips = %v", &vips)
	}
	var peers pb.ListPeersResponse
	parse(&peers, "peers")
	if p := peers.Peers[0]; p.Description != "test router" || p.PrefixesSent != 3 {
		t.Errorf("peers = %v", &peers)
	}
	var routes pb.ListRoutesResponse
	parse(&routes, "routes")
	received := e.router.Received(t)
	var got []string
	for _, r := range routes.Peers[0].Routes {
		got = append(got, r.Prefix)
		rt := received[netipPrefix(r.Prefix)]
		if r.NextHop != rt.NextHop || !slices.Equal(r.AsPath, rt.ASPath) || !slices.Equal(r.Communities, rt.Communities) ||
			!slices.Equal(r.LargeCommunities, rt.LargeCommunities) {
			t.Errorf("route %v; the router has %+v", r, rt)
		}
	}
	slices.Sort(got)
	if want := bgptest.Prefixes(received); !slices.Equal(got, want) {
		t.Errorf("routes = %v, the router has %v", got, want)
	}
	out := e.mustCtl(t, "events", "-o", "json")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev pb.Event
		if err := protojson.Unmarshal([]byte(line), &ev); err != nil || ev.Seq == 0 {
			t.Errorf("events -o json line %q: %v", line, err)
		}
	}
}

// eventFields splits an event line: seq, time, kind, name, from, "->", to.
func eventFields(line string) (kind, name, from, to string) {
	f := strings.Fields(line)
	if len(f) < 7 {
		return "", "", "", ""
	}
	return f[2], f[3], f[4], f[6]
}

func indexOfEvent(lines []string, kind, name, from, to string) int {
	return slices.IndexFunc(lines, func(l string) bool {
		k, n, f, tt := eventFields(l)
		return k == kind && n == name && f == from && tt == to
	})
}

// drain and undrain, of a VIP and of the node; events -f sees them happen.
func TestDrainUndrainAndEvents(t *testing.T) {
	e := upAndRunning(t)
	lines := strings.Split(strings.TrimSpace(e.mustCtl(t, "events")), "\n")
	up, rose := indexOfEvent(lines, "vip", "web", "down", "up"), indexOfEvent(lines, "check", "svc", "unknown", "up")
	if up < 0 || rose < 0 || rose > up {
		t.Errorf("events: want svc rising, then web up:\n%s", strings.Join(lines, "\n"))
	}

	ctx, cancel := context.WithCancel(context.Background())
	follow := &testutil.SyncBuffer{}
	followed := make(chan int)
	go func() {
		var errb strings.Builder
		code := run(ctx, []string{"--socket", e.socket, "events", "-f"}, follow, &errb)
		if errb.Len() > 0 {
			t.Errorf("events -f: %s", errb.String())
		}
		followed <- code
	}()

	out := e.mustCtl(t, "drain", "web", "--reason", "kernel upgrade", "--for", "1h")
	if want := "draining VIP web: announced with GRACEFUL_SHUTDOWN, withdrawn after the drain time; back in service after 1h0m0s\n"; out != want {
		t.Errorf("drain says %q, want %q", out, want)
	}
	bgptest.Eventually(t, wait, func() bool { _, ok := e.router.Received(t)[netipPrefix("203.0.113.42/32")]; return !ok },
		"web withdrawn after the drain time", nil)
	vips := e.until(t, "disabled", "vips", "web")
	if !strings.Contains(vips, "kernel upgrade") {
		t.Errorf("vips web does not give the reason:\n%s", vips)
	}
	e.mustCtl(t, "undrain", "web")
	bgptest.Eventually(t, wait, func() bool { return len(e.router.Received(t)) == 3 }, "web back after undrain", nil)

	bgptest.Eventually(t, wait, func() bool {
		l := strings.Split(follow.String(), "\n")
		return indexOfEvent(l, "vip", "web", "up", "draining") >= 0 && indexOfEvent(l, "vip", "web", "draining", "disabled") >= 0 &&
			indexOfEvent(l, "vip", "web", "disabled", "up") >= 0
	}, "events -f to show the drain and the undrain", func() string { return follow.String() })
	cancel()
	if code := <-followed; code != 0 {
		t.Errorf("events -f exited %d when interrupted, want 0", code)
	}
	l := strings.Split(follow.String(), "\n")
	if a, b := indexOfEvent(l, "vip", "web", "up", "draining"), indexOfEvent(l, "vip", "web", "draining", "disabled"); a > b {
		t.Errorf("events out of order:\n%s", follow.String())
	}

	out = e.mustCtl(t, "drain", "--reason", "site maintenance")
	if !strings.HasPrefix(out, "draining the node") {
		t.Errorf("drain of the node says %q", out)
	}
	e.until(t, "yes: site maintenance", "status")
	bgptest.Eventually(t, wait, func() bool { return len(e.router.Received(t)) == 0 }, "every VIP withdrawn", nil)
	e.mustCtl(t, "undrain")
	e.until(t, "node drained  no", "status")
	bgptest.Eventually(t, wait, func() bool { return len(e.router.Received(t)) == 3 }, "VIPs back after undraining the node", nil)
}

// Exit codes and error messages.
func TestErrors(t *testing.T) {
	e := start(t)
	tests := []struct {
		args   []string
		code   int
		stderr string // prefix of what it says
	}{
		{[]string{"vips", "nope"}, 1, `anycastctl vips: no VIP named "nope" (NotFound)`},
		{[]string{"drain", "nope"}, 1, `anycastctl drain: no VIP named "nope" (NotFound)`},
		{[]string{"routes", "192.0.2.1"}, 1, `anycastctl routes: no peer 192.0.2.1 is configured (NotFound)`},
		{[]string{"report", "svc", "ok"}, 1, `anycastctl report: check "svc" is of type tcp`},
		{[]string{"report", "batch", "maybe"}, 2, `anycastctl report: "maybe": want ok or failing`},
		{[]string{"vips", "a", "b"}, 2, `anycastctl vips: vips takes at most one argument: [VIP]`},
		{[]string{"bogus"}, 2, `anycastctl: unknown command "bogus"`},
		{[]string{"-o", "yaml", "vips"}, 2, `anycastctl vips: -o "yaml": want text or json`},
		{[]string{"drain", "web", "--for", "-1m"}, 2, `anycastctl drain: --for must not be negative`},
		{[]string{"--addr", e.tcp, "drain", "web"}, 1, `anycastctl drain: control calls need the unix socket or a client certificate: this TCP listener is read-only (PermissionDenied)`},
	}
	for _, tt := range tests {
		args := tt.args
		if !slices.Contains(args, "--addr") {
			args = append([]string{"--socket", e.socket}, args...)
		}
		out, errOut, code := ctl(t, context.Background(), args...)
		if code != tt.code || !strings.HasPrefix(errOut, tt.stderr) {
			t.Errorf("anycastctl %s: exit %d, stderr %q; want exit %d, stderr %q…\nstdout: %s",
				strings.Join(tt.args, " "), code, errOut, tt.code, tt.stderr, out)
		}
	}

	// Reads work over the read-only TCP listener.
	if out, errOut, code := ctl(t, context.Background(), "--addr", e.tcp, "vips"); code != 0 || !strings.Contains(out, "web") {
		t.Errorf("vips over TCP: exit %d\n%s%s", code, out, errOut)
	}
	if out := e.mustCtl(t, "reload"); out != "configuration reloaded\n" {
		t.Errorf("reload says %q", out)
	}

	// The daemon is not running.
	_, errOut, code := ctl(t, context.Background(), "--socket", "/nonexistent/api.sock", "status")
	want := "anycastctl: cannot reach anycastd at unix:///nonexistent/api.sock: is it running? (connect: no such file or directory)\n"
	if code != 3 || errOut != want {
		t.Errorf("without a daemon: exit %d, %q; want exit 3, %q", code, errOut, want)
	}
	_, errOut, code = ctl(t, context.Background(), "--addr", "127.0.0.1:1", "status")
	if code != 3 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("without a daemon over TCP: exit %d, %q", code, errOut)
	}
}
