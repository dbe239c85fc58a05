package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
)

// hasIPv6 reports whether ::1 can be listened on.
func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func portOf(t testing.TB, a net.Addr) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

func listenOn(t *testing.T, network, address string) uint16 {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return portOf(t, ln.Addr())
}

func TestListenCheckMatches(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no IPv6 loopback")
	}
	p4 := listenOn(t, "tcp4", "127.0.0.1:0")
	p6 := listenOn(t, "tcp6", "[::1]:0") // IPV6_V6ONLY
	pDual := listenOn(t, "tcp", ":0")    // [::], dual-stack
	pAny4 := listenOn(t, "tcp4", "0.0.0.0:0")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pu := portOf(t, pc.LocalAddr())

	tests := []struct {
		addr  string // "" for any
		port  uint16
		proto string
		err   string // "" for a pass
	}{
		{"127.0.0.1", p4, "tcp", ""},
		{"", p4, "tcp", ""},
		{"127.0.0.2", p4, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.2:%d", p4)},
		{"::1", p4, "tcp", fmt.Sprintf("no tcp listener on [::1]:%d", p4)},
		{"", p4, "udp", fmt.Sprintf("no udp socket on port %d", p4)},
		{"::1", p6, "tcp", ""},
		{"", p6, "tcp", ""},
		{"127.0.0.1", p6, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.1:%d", p6)},
		{"::2", p6, "tcp", fmt.Sprintf("no tcp listener on [::2]:%d", p6)},
		{"127.0.0.1", pDual, "tcp", ""},
		{"203.0.113.9", pDual, "tcp", ""},
		{"::1", pDual, "tcp", ""},
		{"", pDual, "tcp", ""},
		{"198.18.0.1", pAny4, "tcp", ""},
		{"0.0.0.0", pAny4, "tcp", ""},
		{"::1", pAny4, "tcp", fmt.Sprintf("no tcp listener on [::1]:%d", pAny4)},
		{"127.0.0.1", pu, "udp", ""},
		{"", pu, "udp", ""},
		{"127.0.0.1", pu, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.1:%d", pu)},
	}
	for _, tt := range tests {
		name := net.JoinHostPort(tt.addr, strconv.Itoa(int(tt.port))) + "/" + tt.proto
		t.Run(name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			l := newListenChecker(config.ListenCheck{Addr: a, Port: tt.port, Protocol: tt.proto})
			defer l.Close()
			err := l.Check(context.Background())
			if tt.err == "" && !l.diag.lookup(l.lookupFam, l.udp, l.lookupAddr, l.port) && tt.addr != "" {
				t.Errorf("the fast path (exact lookup) missed the socket")
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("Check = %v, want a pass", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("Check = %v, want %q", err, tt.err)
			case tt.err != "" && !errors.Is(err, ErrDefinite):
				t.Errorf("Check = %v, not a definite failure", err)
			}
		})
	}
}

func TestListenCheckSocketAfterClose(t *testing.T) {
	l := newListenChecker(config.ListenCheck{Port: 1, Protocol: "tcp"})
	// Probes reuse one netlink socket; Close releases it.
	for range 3 {
		_ = l.Check(context.Background())
	}
	fds := openFDs(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openFDs(t); got != fds-1 {
		t.Errorf("open fds %d -> %d after Close, want one less", fds, got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(ents)
}

func BenchmarkListenCheck(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	for _, bc := range []struct {
		name string
		addr netip.Addr
	}{{"ipv4", netip.MustParseAddr("127.0.0.1")}, {"any", netip.Addr{}}} {
		b.Run(bc.name, func(b *testing.B) {
			l := newListenChecker(config.ListenCheck{Addr: bc.addr, Port: portOf(b, ln.Addr()), Protocol: "tcp"})
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Check(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestListenCheckCloseAndReopen(t *testing.T) {
	for _, tt := range []struct{ network, host string }{{"tcp4", "127.0.0.1"}, {"tcp6", "::1"}} {
		t.Run(tt.network, func(t *testing.T) {
			if tt.network == "tcp6" && !hasIPv6() {
				t.Skip("no IPv6 loopback")
			}
			ln, err := net.Listen(tt.network, net.JoinHostPort(tt.host, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { ln.Close() }()
			port := portOf(t, ln.Addr())
			addr := netip.AddrPortFrom(netip.MustParseAddr(tt.host), port)
			_, tl := startManager(t, config.Check{Name: "port", Type: config.CheckListen,
				Interval: 20 * time.Millisecond, FastInterval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
				Rise: 3, Fall: 3, Listen: &config.ListenCheck{Addr: addr.Addr(), Port: port, Protocol: "tcp"}})
			tl.next(t, StatusUp, 5*time.Second)

			// Down at the first probe that misses the listener: fall (3)
			// does not apply.
			mark := tl.mark()
			ln.Close()
			ev := tl.next(t, StatusDown, time.Second)
			if want := "no tcp listener on " + addr.String(); ev.Last.Err != want || !ev.Last.Definite {
				t.Errorf("down event result %+v, want a definite %q", ev.Last, want)
			}
			if diff := cmp.Diff([]string{"fail!", "down"}, tl.since(mark)); diff != "" {
				t.Errorf("timeline after close (-want +got):\n%s", diff)
			}

			mark = tl.mark()
			ln, err = net.Listen(tt.network, addr.String())
			if err != nil {
				t.Fatal(err)
			}
			tl.next(t, StatusUp, 5*time.Second)
			got := tl.since(mark)
			// Probes that ran before the listener was back failed; then rise.
			for len(got) > 0 && got[0] == "fail!" {
				got = got[1:]
			}
			if diff := cmp.Diff([]string{"pass", "pass", "pass", "up"}, got); diff != "" {
				t.Errorf("timeline after reopening (-want +got):\n%s", diff)
			}
		})
	}
}
