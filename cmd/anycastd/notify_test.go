package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/anycastd/anycastd/internal/bgptest"
)

// notifySocket is a service manager's end of sd_notify(3): a unixgram
// socket that records every message (its lines) in order.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs [][]string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, strings.Split(string(buf[:k]), "\n"))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// messages returns the messages so far.
func (n *notifySocket) messages() [][]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.msgs)
}

// find returns the index of the first message from index from on that has
// a line for which match is true, or -1.
func (n *notifySocket) find(from int, match func(line string) bool) int {
	msgs := n.messages()
	for i := from; i < len(msgs); i++ {
		if slices.ContainsFunc(msgs[i], match) {
			return i
		}
	}
	return -1
}

func is(want string) func(string) bool { return func(l string) bool { return l == want } }

func prefixed(p string) func(string) bool {
	return func(l string) bool { return strings.HasPrefix(l, p) }
}

// value returns the value of key in message msg ("" if absent).
func value(msg []string, key string) string {
	for _, l := range msg {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestServiceManagerNotifications runs anycastd as systemd runs a
// Type=notify service with WatchdogSec=: NOTIFY_SOCKET and WATCHDOG_USEC
// set. It must say READY=1 first, then the VIPs and sessions up in STATUS=,
// feed the watchdog, frame a SIGHUP reload with RELOADING=1 and READY=1,
// and at SIGTERM say STOPPING=1 with an EXTEND_TIMEOUT_USEC= covering the
// drain, while the drain is under way, then extend again for the stop.
func TestServiceManagerNotifications(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	ns := listenNotify(t)
	d := startDaemonEnv(t, baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())),
		[]string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=2000000"})

	const up = "1 of 1 VIPs announced, 1 of 1 BGP sessions established"
	bgptest.Eventually(t, wait, func() bool { return ns.find(0, is("STATUS="+up)) >= 0 },
		"STATUS= saying the VIP and the session are up", func() string { return fmt.Sprint(ns.messages()) })
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	bgptest.Eventually(t, wait, func() bool { return ns.find(0, is("WATCHDOG=1")) >= 0 },
		"WATCHDOG=1 while the loop runs", func() string { return fmt.Sprint(ns.messages()) })
	msgs := ns.messages()
	if len(msgs) == 0 || msgs[0][0] != "READY=1" {
		t.Fatalf("first message %q, want READY=1 first (all: %q)", msgs[0], msgs)
	}
	// Already with the configured VIP and session counted.
	if st := value(msgs[0], "STATUS"); !strings.Contains(st, " of 1 VIPs announced") || !strings.Contains(st, " of 1 BGP sessions") {
		t.Errorf("READY=1 with STATUS=%q, want the configuration's 1 VIP and 1 session counted", st)
	}

	// A reload is framed by RELOADING=1 (with the monotonic time) and
	// READY=1.
	mark := len(ns.messages())
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		i := ns.find(mark, is("RELOADING=1"))
		return i >= 0 && ns.find(i+1, is("READY=1")) > i
	}, "RELOADING=1, then READY=1 around the SIGHUP reload", func() string { return fmt.Sprint(ns.messages()[mark:]) })
	if i := ns.find(mark, is("RELOADING=1")); value(ns.messages()[i], "MONOTONIC_USEC") == "" {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC=: %q", ns.messages()[i])
	}

	mark = len(ns.messages())
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return ns.find(mark, is("STOPPING=1")) >= 0 },
		"STOPPING=1 after SIGTERM", func() string { return fmt.Sprint(ns.messages()[mark:]) })
	// The drain is under way: the router has the VIP with GRACEFUL_SHUTDOWN.
	bgptest.Eventually(t, wait, func() bool {
		return slices.Contains(r.Received(t)[vip4].Communities, "65535:0")
	}, "VIP with graceful-shutdown 65535:0 during the drain", nil)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("anycastd exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(wait):
		t.Fatal("anycastd did not exit after SIGTERM")
	}

	msgs = ns.messages()
	stopping := ns.find(mark, is("STOPPING=1"))
	ext, err := strconv.ParseInt(value(msgs[stopping], "EXTEND_TIMEOUT_USEC"), 10, 64)
	if err != nil || time.Duration(ext)*time.Microsecond <= time.Second {
		t.Errorf("STOPPING=1 message %q: want EXTEND_TIMEOUT_USEC= above the 1s drain time", msgs[stopping])
	}
	if !strings.Contains(value(msgs[stopping], "STATUS"), "draining") {
		t.Errorf("STOPPING=1 message %q: want a STATUS= saying it drains", msgs[stopping])
	}
	if ns.find(stopping+1, prefixed("EXTEND_TIMEOUT_USEC=")) < 0 {
		t.Errorf("no EXTEND_TIMEOUT_USEC= for the stop after the drain: %q", msgs[stopping:])
	}
	// In order: READY, the STATUS with everything up, WATCHDOG, then
	// STOPPING.
	if st, wd := ns.find(0, is("STATUS="+up)), ns.find(0, is("WATCHDOG=1")); st > stopping || wd > stopping {
		t.Errorf("STATUS (#%d) and WATCHDOG (#%d) must come before STOPPING (#%d): %q", st, wd, stopping, msgs)
	}
	for _, m := range ns.messages() {
		if slices.Contains(m, "") {
			t.Errorf("message with an empty line: %q", m)
		}
	}
}

// TestHealthServices: the API's grpc.health.v1 answers "" (liveness) as
// SERVING while the daemon runs and "ready" (readiness, for a Kubernetes
// probe) as SERVING once a BGP session is established; from SIGTERM on,
// while the drain still runs, "ready" is NOT_SERVING.
func TestHealthServices(t *testing.T) {
	d := startAPIDaemon(t, "")
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	serving := healthpb.HealthCheckResponse_SERVING
	bgptest.Eventually(t, wait, func() bool { return status("ready") == serving },
		`"ready" SERVING once the session is established`, nil)
	if s := status(""); s != serving {
		t.Errorf(`"" is %v while running, want SERVING`, s)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		return status("ready") == healthpb.HealthCheckResponse_NOT_SERVING
	}, `"ready" NOT_SERVING during the drain`, nil)
	select {
	case err := <-d.done:
		d.done <- err
		t.Fatalf("anycastd exited (%v) before the probe saw it not ready", err)
	default:
	}
}
