package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// dialFrom dials addr over TCP from the loopback address src (all of
// 127.0.0.0/8 is local on Linux), so that one test can be many clients.
func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// Issue #17: with the open-files limit at 200, a flood of connections to
// the read-only TCP API (held ones from many addresses, a reconnect storm,
// watchers that never read) takes no descriptor the probes need: the
// check stays up, the VIP stays announced, the refusals are logged without
// a log storm, and once the flood ends an honest client gets answers.
func TestAPIConnectionFloodSparesTheChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dir, err := os.MkdirTemp("", "acd-flood") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "api.sock")
	port := bgptest.FreePort(t, edgeAddr)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", port)
	r := startRouter(t)
	cfg := baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr()))
	cfg = strings.Replace(cfg, "[api]\nlisten = \"\"", fmt.Sprintf("[api]\nlisten = \"unix://%s\"\ntcp_listen = %q", socket, apiAddr), 1)
	// Probes every 200 ms, so a busy machine does not fail them by itself.
	cfg = strings.Replace(cfg, "interval = \"100ms\"\ntimeout = \"50ms\"", "interval = \"200ms\"\ntimeout = \"150ms\"", 1)
	d := startDaemon(t, cfg, "sh", "-c", `ulimit -n 200 && exec "$0" "$@"`)
	bgptest.Eventually(t, wait, func() bool { _, err := os.Stat(socket); return err == nil }, "the API socket", nil)
	uconn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer uconn.Close()
	local := pb.NewAnycastdServiceClient(uconn)
	ctx := context.Background()
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	bgptest.Eventually(t, wait, func() bool {
		resp, err := local.ListVIPs(ctx, &pb.ListVIPsRequest{Name: "web"})
		return err == nil && resp.Vips[0].State == pb.VIPState_VIP_STATE_UP
	}, "VIP web up", nil)
	before := apiLastSeq(t, local)
	start := time.Now()

	// Watchers that never read, from their own addresses.
	for i := range 4 {
		src := fmt.Sprintf("127.0.0.%d", 200+i)
		c, err := grpc.NewClient(apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialFrom(ctx, src, addr) }))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := pb.NewAnycastdServiceClient(c).WatchEvents(ctx, &pb.WatchEventsRequest{Follow: true}); err != nil {
			t.Logf("watcher %s: %v", src, err)
		}
	}
	// 400 held connections from 20 addresses: twice the limit.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 400 {
		c, err := dialFrom(ctx, fmt.Sprintf("127.0.0.%d", 10+i%20), apiAddr)
		if err != nil {
			t.Logf("flood connection %d: %v", i, err)
			continue
		}
		held = append(held, c)
	}
	// And a reconnect storm on top, until the check has been probed
	// throughout.
	stop := make(chan struct{})
	var storm sync.WaitGroup
	storm.Add(1)
	go func() {
		defer storm.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := dialFrom(ctx, fmt.Sprintf("127.0.0.%d", 50+n%50), apiAddr); err == nil {
				c.Close()
			}
		}
	}()
	bgptest.Eventually(t, wait, func() bool {
		resp, err := local.ListChecks(ctx, &pb.ListChecksRequest{Name: "svc", Results: 16})
		if err != nil || len(resp.Checks) != 1 {
			return false
		}
		n := 0
		for _, res := range resp.Checks[0].Results {
			if res.Time.AsTime().After(start) {
				n++
			}
		}
		return n >= 12
	}, "12 probes during the flood", nil)
	close(stop)
	storm.Wait()
	elapsed := time.Since(start)

	// What an operator checks: the events, the router, the logs.
	var changes []string
	for _, ev := range apiEvents(t, local, before) {
		if s := eventString(ev); strings.HasPrefix(s, "check ") || strings.HasPrefix(s, "vip ") {
			changes = append(changes, s)
		}
	}
	if len(changes) > 0 {
		t.Errorf("transitions during the flood: %q, want none", changes)
	}
	if !hasVIPs(t, r)() {
		t.Errorf("VIPs withdrawn at the router during the flood: %v", bgptest.Prefixes(r.Received(t)))
	}
	logs := d.logs.String()
	if strings.Contains(logs, "too many open files") {
		t.Errorf("the daemon ran out of file descriptors")
	}
	refusals := strings.Count(logs, "refusing connections over the limit")
	if most := 1 + int(elapsed/(10*time.Second)); refusals < 1 || refusals > most {
		t.Errorf("%d log lines about refused connections in %s, want 1 to %d", refusals, elapsed.Round(time.Millisecond), most)
	}

	// The flood ends: an honest client from the same address as most of it
	// gets answers again.
	for _, c := range held {
		c.Close()
	}
	held = nil
	var last error
	bgptest.Eventually(t, wait, func() bool {
		c, err := grpc.NewClient(apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := pb.NewAnycastdServiceClient(c).ListVIPs(cctx, &pb.ListVIPsRequest{Name: "web"})
		last = err
		return err == nil && resp.Vips[0].State == pb.VIPState_VIP_STATE_UP
	}, "an answer over TCP after the flood", func() string { return fmt.Sprint(last) })
}

// apiLastSeq is the number of the newest event.
func apiLastSeq(t *testing.T, c pb.AnycastdServiceClient) uint64 {
	t.Helper()
	evs := apiEvents(t, c, 0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// apiEvents are the kept events after seq.
func apiEvents(t *testing.T, c pb.AnycastdServiceClient, after uint64) []*pb.Event {
	t.Helper()
	stream, err := c.WatchEvents(context.Background(), &pb.WatchEventsRequest{AfterSeq: after})
	if err != nil {
		t.Fatal(err)
	}
	var out []*pb.Event
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("WatchEvents: %v", err)
		}
		out = append(out, resp.Event)
	}
}
