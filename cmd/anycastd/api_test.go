package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// apiDaemon runs anycastd with the API on a unix socket in a fresh
// directory, one VIP guarded by a tcp check on a local listener, and
// returns a client on the socket.
type apiDaemon struct {
	*daemon
	router *bgptest.Router
	ln     net.Listener // the checked service; close it to fail the check
	addr   string       // its address
	socket string
	client pb.AnycastdServiceClient
}

func startAPIDaemon(t *testing.T, extra string) *apiDaemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dir, err := os.MkdirTemp("", "acd-api") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &apiDaemon{router: startRouter(t), ln: ln, addr: ln.Addr().String(), socket: filepath.Join(dir, "run", "api.sock")}
	cfg := strings.Replace(baseConfig(d.router, fmt.Sprintf("type = \"tcp\"\naddress = %q", d.addr)),
		"[api]\nlisten = \"\"", fmt.Sprintf("[api]\nlisten = \"unix://%s\"\n%s", d.socket, extra), 1)
	d.daemon = startDaemon(t, cfg)
	bgptest.Eventually(t, wait, func() bool { _, err := os.Stat(d.socket); return err == nil }, "the API socket", nil)
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.client = pb.NewAnycastdServiceClient(conn)
	return d
}

func (d *apiDaemon) vip(t *testing.T, name string) *pb.VIP {
	t.Helper()
	resp, err := d.client.ListVIPs(context.Background(), &pb.ListVIPsRequest{Name: name})
	if err != nil {
		t.Fatalf("ListVIPs: %v", err)
	}
	return resp.Vips[0]
}

func wantCode(t *testing.T, err error, code codes.Code, what string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
	}
}

// Every read call says what the router actually has.
func TestAPIReadsMatchRouter(t *testing.T) {
	d := startAPIDaemon(t, "")
	ctx := context.Background()
	r := d.router
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)

	fi, err := os.Stat(d.socket)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v, mode %v; want a socket with mode 0660", d.socket, err, fi.Mode())
	}

	st, err := d.client.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := st.Node
	if n.Asn != 65001 || n.RouterId != "198.18.1.2" || n.Version == "" || n.StartTime == nil ||
		n.Vips != 1 || n.VipsAnnounced != 1 || n.PrefixesAnnounced != 2 || n.Peers != 1 || n.PeersEstablished != 1 || n.Drain.Drained {
		t.Errorf("GetStatus = %v", n)
	}

	v := d.vip(t, "web")
	if v.State != pb.VIPState_VIP_STATE_UP || v.Since == nil || v.Passing != 1 || v.Require != 1 ||
		len(v.Checks) != 1 || v.Checks[0].Name != "svc" || v.Checks[0].Status != pb.CheckStatus_CHECK_STATUS_UP {
		t.Errorf("VIP web = %v", v)
	}
	received := r.Received(t)
	for _, p := range v.Prefixes {
		rt, ok := received[netipPrefix(t, p.Prefix)]
		if !p.Announced || !ok || !slices.Equal(p.Attributes.GetCommunities(), rt.Communities) {
			t.Errorf("prefix %v: router has %+v (present %v)", p, rt, ok)
		}
	}

	checks, err := d.client.ListChecks(ctx, &pb.ListChecksRequest{Results: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := checks.Checks[0]
	if c.Name != "svc" || c.Type != "tcp" || c.Target != d.addr || c.Status != pb.CheckStatus_CHECK_STATUS_UP ||
		c.Rise != 2 || c.Fall != 2 || len(c.Results) == 0 || len(c.Results) > 3 || !slices.Equal(c.Vips, []string{"web"}) ||
		c.Results[len(c.Results)-1].Outcome != pb.Outcome_OUTCOME_PASS || c.Results[0].Latency == nil {
		t.Errorf("check = %v", c)
	}

	// The session's counters agree with the router's (polled: a KEEPALIVE
	// or UPDATE may be on the wire).
	bgptest.Eventually(t, wait, func() bool {
		resp, err := d.client.ListPeers(ctx, &pb.ListPeersRequest{})
		if err != nil || len(resp.Peers) != 1 {
			return false
		}
		p := resp.Peers[0]
		_, updates, _ := r.PeerState(t, edgeAddr)
		return p.Address == "127.0.0.2" && p.Asn == 65000 && p.State == pb.PeerState_PEER_STATE_ESTABLISHED &&
			p.Uptime != nil && slices.Equal(p.Families, []string{"ipv4", "ipv6"}) && !p.Internal &&
			p.PrefixesSent == uint64(len(r.Received(t))) && p.Sent.Update == updates && p.RouterId == "198.18.0.1"
	}, "ListPeers matching the router", func() string {
		resp, err := d.client.ListPeers(ctx, &pb.ListPeersRequest{})
		_, updates, _ := r.PeerState(t, edgeAddr)
		return fmt.Sprintf("%v %v; router received %d updates", resp, err, updates)
	})

	routes, err := d.client.ListRoutes(ctx, &pb.ListRoutesRequest{Peer: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bgptest.Route{}
	for _, rt := range routes.Peers[0].Routes {
		if rt.Vip != "web" || rt.Origin != "igp" {
			t.Errorf("route %v: want VIP web, origin igp", rt)
		}
		got[rt.Prefix] = bgptest.Route{Prefix: netipPrefix(t, rt.Prefix), NextHop: rt.NextHop, ASPath: rt.AsPath,
			Communities: rt.Communities, LargeCommunities: rt.LargeCommunities, MED: rt.Med, LocalPref: rt.LocalPref, From: "127.0.0.1"}
	}
	received = r.Received(t)
	if len(got) != len(received) {
		t.Errorf("ListRoutes has %v, the router %v", routes, bgptest.Prefixes(received))
	}
	for p, rt := range received {
		if g := got[p.String()]; fmt.Sprint(g) != fmt.Sprint(rt) {
			t.Errorf("route %s: API says %+v, the router has %+v", p, g, rt)
		}
	}

	_, err = d.client.ListVIPs(ctx, &pb.ListVIPsRequest{Name: "nope"})
	wantCode(t, err, codes.NotFound, "ListVIPs of an unknown VIP")
	_, err = d.client.ListRoutes(ctx, &pb.ListRoutesRequest{Peer: "192.0.2.9"})
	wantCode(t, err, codes.NotFound, "ListRoutes of an unknown peer")
	_, err = d.client.ListPeers(ctx, &pb.ListPeersRequest{Address: "bogus"})
	wantCode(t, err, codes.InvalidArgument, "ListPeers of a bad address")
	if _, err := d.client.Reload(ctx, &pb.ReloadRequest{}); err != nil {
		t.Errorf("Reload of the unchanged file: %v", err)
	}
}

// Draining a VIP announces it with GRACEFUL_SHUTDOWN, then withdraws it;
// undrain brings it back. The same for the whole node.
func TestAPIDrainUndrain(t *testing.T) {
	d := startAPIDaemon(t, "")
	ctx := context.Background()
	r := d.router
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)

	_, err := d.client.Drain(ctx, &pb.DrainRequest{Vip: "nope"})
	wantCode(t, err, codes.NotFound, "draining an unknown VIP")
	_, err = d.client.Drain(ctx, &pb.DrainRequest{})
	wantCode(t, err, codes.InvalidArgument, "a drain naming nothing")
	_, err = d.client.Drain(ctx, &pb.DrainRequest{Vip: "web", All: true})
	wantCode(t, err, codes.InvalidArgument, "a drain naming a VIP and all")

	if _, err := d.client.Drain(ctx, &pb.DrainRequest{Vip: "web", Reason: "kernel upgrade"}); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	bgptest.Eventually(t, wait, func() bool {
		rt, ok := r.Received(t)[vip4]
		return ok && slices.Contains(rt.Communities, "65535:0")
	}, "GRACEFUL_SHUTDOWN at the router while draining", nil)
	bgptest.Eventually(t, wait, hasNone(t, r), "the drained VIP withdrawn after the drain time", nil)
	v := d.vip(t, "web")
	if v.State != pb.VIPState_VIP_STATE_DISABLED || !strings.Contains(v.Reason, "kernel upgrade") {
		t.Errorf("drained VIP = %v, want disabled with the reason", v)
	}

	if _, err := d.client.Undrain(ctx, &pb.UndrainRequest{Vip: "web"}); err != nil {
		t.Fatalf("Undrain: %v", err)
	}
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back after undrain", nil)
	if rt := r.Received(t)[vip4]; slices.Contains(rt.Communities, "65535:0") {
		t.Errorf("undrained route still carries GRACEFUL_SHUTDOWN: %+v", rt)
	}

	if _, err := d.client.Drain(ctx, &pb.DrainRequest{All: true, Reason: "site maintenance"}); err != nil {
		t.Fatalf("Drain all: %v", err)
	}
	bgptest.Eventually(t, wait, hasNone(t, r), "every VIP withdrawn after a node drain", nil)
	st, err := d.client.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil || !st.Node.Drain.Drained || !strings.Contains(st.Node.Drain.Reason, "site maintenance") {
		t.Errorf("GetStatus after a node drain = %v, %v", st, err)
	}
	if _, err := d.client.Undrain(ctx, &pb.UndrainRequest{All: true}); err != nil {
		t.Fatalf("Undrain all: %v", err)
	}
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back after undraining the node", nil)
}

// The event stream replays what happened since the start, then delivers
// new transitions in the order they happened.
func TestAPIEventsInOrder(t *testing.T) {
	d := startAPIDaemon(t, "")
	r := d.router
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := d.client.WatchEvents(ctx, &pb.WatchEventsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *pb.Event, 100)
	go func() {
		defer close(events)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			events <- resp.Event
		}
	}()
	var seen []string
	var lastSeq uint64
	next := func(what string) {
		t.Helper()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("event stream ended waiting for %s; seen %q", what, seen)
				}
				if ev.Seq != lastSeq+1 {
					t.Errorf("event seq %d after %d", ev.Seq, lastSeq)
				}
				lastSeq = ev.Seq
				seen = append(seen, eventString(ev))
				if seen[len(seen)-1] == what {
					return
				}
			case <-time.After(wait):
				t.Fatalf("timed out waiting for event %q; seen %q", what, seen)
			}
		}
	}
	// The replay: the VIP starts down and the check rises (these two come
	// from different owners, in either order), then the VIP comes up; the
	// session comes up meanwhile.
	next("vip web down->up")
	for _, before := range []string{"vip web none->down", "check svc unknown->up"} {
		if i := slices.Index(seen, before); i < 0 || i >= len(seen)-1 {
			t.Errorf("event %q not seen before \"vip web down->up\"; seen %q", before, seen)
		}
	}
	if !slices.Contains(seen, "peer 127.0.0.2 established") {
		next("peer 127.0.0.2 established")
	}

	d.ln.Close() // the service dies
	next("check svc up->down")
	next("vip web up->down")

	// A second watcher without follow gets the same history and ends.
	replay, err := d.client.WatchEvents(context.Background(), &pb.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var again []string
	for {
		resp, err := replay.Recv()
		if err != nil {
			break
		}
		again = append(again, eventString(resp.Event))
	}
	if !slices.Equal(again[:len(seen)], seen) {
		t.Errorf("replay = %q, want %q first", again, seen)
	}
}

// eventString is "vip web up->down", "check svc unknown->up", or "peer ADDR STATE".
func eventString(ev *pb.Event) string {
	name := func(s fmt.Stringer, prefix string) string {
		return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s.String(), prefix), "UNSPECIFIED"))
	}
	switch k := ev.Kind.(type) {
	case *pb.Event_Vip:
		from := name(k.Vip.From, "VIP_STATE_")
		if from == "" {
			from = "none"
		}
		return fmt.Sprintf("vip %s %s->%s", k.Vip.Vip, from, name(k.Vip.To, "VIP_STATE_"))
	case *pb.Event_Check:
		return fmt.Sprintf("check %s %s->%s", k.Check.Check, name(k.Check.From, "CHECK_STATUS_"), name(k.Check.To, "CHECK_STATUS_"))
	case *pb.Event_Peer:
		return fmt.Sprintf("peer %s %s", k.Peer.Peer, name(k.Peer.To, "PEER_STATE_"))
	}
	return "?"
}

func netipPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatalf("bad prefix %q: %v", s, err)
	}
	return p
}

// A plain TCP listener ([api] tcp_listen without TLS) serves reads and
// refuses control calls.
func TestAPIReadOnlyTCP(t *testing.T) {
	port := bgptest.FreePort(t, edgeAddr)
	d := startAPIDaemon(t, fmt.Sprintf("tcp_listen = \"127.0.0.1:%d\"", port))
	bgptest.Eventually(t, wait, hasVIPs(t, d.router), "VIPs announced", nil)
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewAnycastdServiceClient(conn)
	ctx := context.Background()
	if resp, err := c.ListVIPs(ctx, &pb.ListVIPsRequest{}); err != nil || resp.Vips[0].State != pb.VIPState_VIP_STATE_UP {
		t.Errorf("ListVIPs over TCP: %v %v", resp, err)
	}
	for name, call := range map[string]func() error{
		"Drain":   func() error { _, err := c.Drain(ctx, &pb.DrainRequest{Vip: "web"}); return err },
		"Undrain": func() error { _, err := c.Undrain(ctx, &pb.UndrainRequest{All: true}); return err },
		"Reload":  func() error { _, err := c.Reload(ctx, &pb.ReloadRequest{}); return err },
	} {
		err := call()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "control calls need the unix socket or a client certificate") {
			t.Errorf("%s over plain TCP: %v, want PermissionDenied", name, err)
		}
	}
	if v := d.vip(t, "web"); v.State != pb.VIPState_VIP_STATE_UP {
		t.Errorf("VIP after refused control calls: %v", v)
	}
}

// SIGTERM with the API up: the daemon exits 0 and removes its socket.
func TestAPISocketRemovedAtExit(t *testing.T) {
	d := startAPIDaemon(t, "")
	if _, err := d.client.GetStatus(context.Background(), &pb.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err // for cleanup
		if err != nil {
			t.Fatalf("anycastd exited with %v after SIGTERM, want exit status 0", err)
		}
	case <-time.After(wait):
		t.Fatal("anycastd did not exit after SIGTERM")
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Errorf("API socket still there after exit: %v", err)
	}
}
