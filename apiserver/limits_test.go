package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/anycastd/anycastd/announcer"
	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/testutil"
	"github.com/anycastd/anycastd/routes"
)

// eventually polls cond until it holds, failing the test after 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLimitsFitTheOpenFilesLimit(t *testing.T) {
	for _, tc := range []struct {
		nofile          uint64
		tcp, src, unixc int
	}{
		{0, DefaultTCPConns, DefaultTCPConnsPerSource, DefaultUnixConns}, // unknown
		{1 << 20, DefaultTCPConns, DefaultTCPConnsPerSource, DefaultUnixConns},
		{1024, DefaultTCPConns, DefaultTCPConnsPerSource, DefaultUnixConns},
		{200, 36, DefaultTCPConnsPerSource, 36}, // (200 - 128) / 2
		{136, 4, 4, 4},
		{100, 1, 1, 1}, // below the reserve: one connection each
	} {
		l := Limits{}.withDefaults(tc.nofile)
		if l.TCPConns != tc.tcp || l.TCPConnsPerSource != tc.src || l.UnixConns != tc.unixc || l.SendTimeout != DefaultSendTimeout {
			t.Errorf("RLIMIT_NOFILE %d: %+v, want %d TCP (%d per source), %d unix", tc.nofile, l, tc.tcp, tc.src, tc.unixc)
		}
	}
	if l := (Limits{TCPConns: 500, UnixConns: 7}).withDefaults(200); l.TCPConns != 500 || l.UnixConns != 7 {
		t.Errorf("set limits changed: %+v", l)
	}
}

// clientFrom is a connection to the TCP listener at addr from the
// loopback address src; it is closed when the test ends.
func clientFrom(t *testing.T, src, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return d.DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// call makes one read call over conn.
func call(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pb.NewAnycastdServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
	return err
}

// callOnce makes one read call on a new connection and closes it (so that
// it does not keep trying in the background).
func callOnce(conn *grpc.ClientConn) error {
	defer conn.Close()
	return call(conn)
}

// Connections over the caps are refused (total and per source over TCP, a
// separate cap on the unix socket), logged once per listener, and served
// again when a slot frees.
func TestConnectionCaps(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	_, l := testServer(t, config.API{TCPListen: "127.0.0.1:0"}, Options{
		Limits: Limits{TCPConns: 3, TCPConnsPerSource: 2, UnixConns: 1},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	addr := l.Addrs()[1].String()
	a1, a2 := clientFrom(t, "127.0.0.1", addr), clientFrom(t, "127.0.0.1", addr)
	for _, c := range []*grpc.ClientConn{a1, a2} {
		if err := call(c); err != nil {
			t.Fatalf("within the caps: %v", err)
		}
	}
	if err := callOnce(clientFrom(t, "127.0.0.1", addr)); status.Code(err) != codes.Unavailable {
		t.Errorf("a third connection from one address: %v, want UNAVAILABLE", err)
	}
	if err := call(clientFrom(t, "127.0.0.3", addr)); err != nil {
		t.Errorf("another address within the total: %v", err)
	}
	if err := callOnce(clientFrom(t, "127.0.0.4", addr)); status.Code(err) != codes.Unavailable {
		t.Errorf("a fourth connection in all: %v, want UNAVAILABLE", err)
	}
	// The unix socket has its own cap, untouched by TCP clients.
	if err := call(client(t, unixTarget(l), nil)); err != nil {
		t.Errorf("the unix socket while TCP is full: %v", err)
	}
	if err := callOnce(client(t, unixTarget(l), nil)); status.Code(err) != codes.Unavailable {
		t.Errorf("a second unix connection: %v, want UNAVAILABLE", err)
	}
	// The refusal is logged after the client is turned away: wait for it.
	eventually(t, "the refusals logged", func() bool {
		return strings.Count(logs.String(), "refusing connections over the limit") >= 2
	})
	if n := strings.Count(logs.String(), "refusing connections over the limit"); n != 2 {
		t.Errorf("%d log lines about refused connections, want 2 (one per listener):\n%s", n, logs)
	}
	// A slot frees: a new client gets in.
	a1.Close()
	eventually(t, "a connection after one closed", func() bool {
		return callOnce(clientFrom(t, "127.0.0.4", addr)) == nil
	})
}

// A socket whose listener is alive but too busy to accept (its accept
// queue full: connecting fails with EAGAIN) is not stale: it stays, and
// the start fails saying another anycastd may be serving there.
func TestBusySocketIsNotStale(t *testing.T) {
	path := shortSocket(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepts
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("unix", path, time.Second)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatalf("filling the accept queue: %v", err)
		}
		defer c.Close()
		if i == 100 {
			t.Fatal("the accept queue never filled")
		}
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{}).Listen(config.API{Listen: "unix://" + path})
	if err == nil {
		l.Stop()
		t.Fatal("started over the socket of a busy listener")
	}
	if !strings.Contains(err.Error(), "another process is listening") || !strings.Contains(err.Error(), "already running") {
		t.Errorf("error %q, want it to say another anycastd is serving there", err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("the busy listener's socket was replaced or removed: %v", err)
	}
}

// A watcher that does not read is cut off when one event cannot be sent
// within the send timeout, long before the hub's buffer fills; when it
// reads at last it learns why.
func TestWatcherThatDoesNotReadIsCutOff(t *testing.T) {
	h := NewHub(0)
	_, l := testServer(t, config.API{}, Options{Hub: h, Limits: Limits{SendTimeout: 100 * time.Millisecond}})
	// A fixed 64 KiB window: no growing it as data flows.
	conn, err := grpc.NewClient(unixTarget(l), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := pb.NewAnycastdServiceClient(conn).WatchEvents(ctx, &pb.WatchEventsRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	watchers := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.subs)
	}
	eventually(t, "the watcher subscribed", func() bool { return watchers() == 1 })
	const sent = 100 // 400 KiB: more than the windows and write buffers, far fewer than subscriberBuffer
	for range sent {
		h.VIPChanged(announcer.VIPEvent{VIP: "web", From: routes.StateUp, To: routes.StateDown, Reason: strings.Repeat("x", 4096)})
	}
	eventually(t, "the stream of the watcher that does not read to end", func() bool { return watchers() == 0 })
	got := 0
	for {
		_, err := stream.Recv()
		if err == nil {
			got++
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "took no event") {
			t.Errorf("the stream ended with %v, want RESOURCE_EXHAUSTED: took no event", err)
		}
		break
	}
	if got >= sent {
		t.Errorf("the watcher got all %d events, want it cut off before", got)
	}
}
