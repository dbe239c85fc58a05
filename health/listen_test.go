package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
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
			l := testListenChecker(tt.addr, tt.port, tt.proto)
			defer l.Close()
			err := l.Check(context.Background())
			var d diagConn
			defer d.close()
			if tt.err == "" && !d.lookup(l.lookupFam, l.udp, l.lookupAddr[:l.lookupLen], l.port) && tt.addr != "" {
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
	listenDiag.mu.Lock()
	users := listenDiag.users
	listenDiag.mu.Unlock()
	if users != 0 {
		t.Fatalf("%d listen checkers are open: an earlier test did not close one", users)
	}
	// Probes of all checks share a few netlink sockets, closed when the
	// last check is.
	var ls []*listenChecker
	for i := range 3 {
		l := newListenChecker(config.ListenCheck{Port: uint16(1 + i), Protocol: "tcp"})
		ls = append(ls, l)
		for range 3 {
			_ = l.Check(context.Background())
		}
	}
	listenDiag.mu.Lock()
	var socks []string
	for _, d := range listenDiag.idle {
		if d.ok {
			socks = append(socks, fdTarget(t, d.fd))
		}
	}
	listenDiag.mu.Unlock()
	if len(socks) != 1 {
		t.Errorf("%d open netlink sockets after probes of 3 checks one after another, want 1", len(socks))
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if slices.Contains(socks, target) {
			t.Errorf("netlink socket %s still open after Close", target)
		}
	}
	if err := ls[0].Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	listenDiag.mu.Lock()
	users = listenDiag.users
	listenDiag.mu.Unlock()
	if users != 0 {
		t.Errorf("%d listen checkers open after a second Close, want 0", users)
	}
}

// fdTarget returns what /proc/self/fd/fd links to, "socket:[inode]" for a
// socket.
func fdTarget(t *testing.T, fd int) string {
	t.Helper()
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Skip(err)
	}
	return target
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

// privateTable gives l a table of its own that answers every slow-path
// probe (not only those of a burst), and turns off l's fast path when
// noFast, so that every probe reads the shared table.
func privateTable(t *testing.T, l *listenChecker, noFast bool) *listenTable {
	t.Helper()
	tbl := newListenTable(l.udp)
	tbl.sharedMin = 1
	l.table.release()
	l.table = tbl
	tbl.acquire()
	if noFast {
		l.lookupFam = 0
	}
	return tbl
}

// TestListenCheckSharedTable runs the cases of TestListenCheckMatches
// through the shared table: IPv4, IPv6, dual-stack and UDP sockets, the
// same outcomes and errors.
func TestListenCheckSharedTable(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no IPv6 loopback")
	}
	p4 := listenOn(t, "tcp4", "127.0.0.1:0")
	p6 := listenOn(t, "tcp6", "[::1]:0")
	pDual := listenOn(t, "tcp", ":0")
	pu4 := listenPacketOn(t, "udp4", "127.0.0.1:0")
	pu6 := listenPacketOn(t, "udp6", "[::1]:0")
	closed := listenClosedPort(t)
	tests := []struct {
		addr  string // "" for any
		port  uint16
		proto string
		err   string
	}{
		{"127.0.0.1", p4, "tcp", ""},
		{"", p4, "tcp", ""},
		{"127.0.0.2", p4, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.2:%d", p4)},
		{"::1", p6, "tcp", ""},
		{"", p6, "tcp", ""},
		{"127.0.0.1", p6, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.1:%d", p6)},
		{"127.0.0.1", pDual, "tcp", ""},
		{"::1", pDual, "tcp", ""},
		{"127.0.0.1", pu4, "udp", ""},
		{"", pu4, "udp", ""},
		{"::1", pu4, "udp", fmt.Sprintf("no udp socket on [::1]:%d", pu4)},
		{"::1", pu6, "udp", ""},
		{"", pu6, "udp", ""},
		{"127.0.0.1", pu4, "tcp", fmt.Sprintf("no tcp listener on 127.0.0.1:%d", pu4)},
		{"", closed, "tcp", fmt.Sprintf("no tcp listener on port %d", closed)},
		{"", closed, "udp", fmt.Sprintf("no udp socket on port %d", closed)},
	}
	for _, tt := range tests {
		name := net.JoinHostPort(tt.addr, strconv.Itoa(int(tt.port))) + "/" + tt.proto
		t.Run(name, func(t *testing.T) {
			l := testListenChecker(tt.addr, tt.port, tt.proto)
			defer l.Close()
			tbl := privateTable(t, l, true)
			err := l.Check(context.Background())
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("Check = %v, want a pass", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Errorf("Check = %v, want %q", err, tt.err)
			case tt.err != "" && !errors.Is(err, ErrDefinite):
				t.Errorf("Check = %v, not a definite failure", err)
			}
			if tbl.done != 1 {
				t.Errorf("%d dumps of the shared table, want 1", tbl.done)
			}
		})
	}
}

func listenPacketOn(t *testing.T, network, address string) uint16 {
	t.Helper()
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return portOf(t, pc.LocalAddr())
}

// listenClosedPort returns a port nothing was bound to (TCP or UDP) a moment ago.
func listenClosedPort(t *testing.T) uint16 {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		p := portOf(t, ln.Addr())
		ln.Close()
		pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(int(p)))
		if err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// TestListenTableSeesClose: a socket closed between two probes of the
// shared table is gone at the second, for TCP and UDP, IPv4 and IPv6.
func TestListenTableSeesClose(t *testing.T) {
	for _, tt := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1"}, {"tcp6", "::1"}, {"udp4", "127.0.0.1"}, {"udp6", "::1"},
	} {
		t.Run(tt.network, func(t *testing.T) {
			if tt.addr == "::1" && !hasIPv6() {
				t.Skip("no IPv6 loopback")
			}
			udp := tt.network[:3] == "udp"
			var c interface{ Close() error }
			var port uint16
			if udp {
				pc, err := net.ListenPacket(tt.network, net.JoinHostPort(tt.addr, "0"))
				if err != nil {
					t.Fatal(err)
				}
				c, port = pc, portOf(t, pc.LocalAddr())
			} else {
				ln, err := net.Listen(tt.network, net.JoinHostPort(tt.addr, "0"))
				if err != nil {
					t.Fatal(err)
				}
				c, port = ln, portOf(t, ln.Addr())
			}
			defer c.Close()
			proto := tt.network[:3]
			for _, addr := range []netip.Addr{netip.MustParseAddr(tt.addr), {}} {
				l := newListenChecker(config.ListenCheck{Addr: addr, Port: port, Protocol: proto})
				defer l.Close()
				privateTable(t, l, true)
				if err := l.Check(context.Background()); err != nil {
					t.Fatalf("%v: Check before the close = %v", addr, err)
				}
			}
			c.Close()
			for _, addr := range []netip.Addr{netip.MustParseAddr(tt.addr), {}} {
				l := newListenChecker(config.ListenCheck{Addr: addr, Port: port, Protocol: proto})
				defer l.Close()
				privateTable(t, l, true)
				if err := l.Check(context.Background()); !errors.Is(err, ErrDefinite) {
					t.Errorf("%v: Check after the close = %v, want a definite failure", addr, err)
				}
			}
		})
	}
}

// TestListenTableWaitsForNextDump: a probe that asks while a dump runs is
// answered by the next dump, not by the running one, which read the
// kernel's table before the probe asked.
func TestListenTableWaitsForNextDump(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := portOf(t, ln.Addr())
	l := newListenChecker(config.ListenCheck{Addr: netip.MustParseAddr("127.0.0.1"), Port: port, Protocol: "tcp"})
	defer l.Close()
	tbl := privateTable(t, l, true)

	read, release := make(chan struct{}), make(chan struct{})
	first := true
	tbl.dumped = func() {
		if first { // only the dumping probe runs this
			first = false
			close(read)
			<-release
		}
	}
	var hit listenSock
	early := make(chan bool)
	go func() {
		found, err := tbl.find(port, l.matches, &hit)
		if err != nil {
			t.Error(err)
		}
		early <- found
	}()
	<-read // the first dump has read the table, the listener in it
	ln.Close()
	late := make(chan bool)
	go func() {
		var hit listenSock
		found, err := tbl.find(port, l.matches, &hit)
		if err != nil {
			t.Error(err)
		}
		late <- found
	}()
	// Wait (no sleep) until the second probe waits for a dump.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tbl.mu.Lock()
		w := tbl.waiting
		tbl.mu.Unlock()
		if w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second probe never waited for the running dump")
		}
		runtime.Gosched()
	}
	close(release)
	if !<-early {
		t.Error("the probe that started the first dump did not find the listener")
	}
	if <-late {
		t.Error("the probe that asked after the close found the listener: answered by a dump that started before it")
	}
	if tbl.done != 2 {
		t.Errorf("%d dumps, want 2", tbl.done)
	}
}

// TestListenCheckSharedConcurrent probes many checks at once through one
// shared table (go test -race), closes two sockets, and probes again: every
// probe after the close sees them gone, the others still there.
func TestListenCheckSharedConcurrent(t *testing.T) {
	v6 := hasIPv6()
	type target struct {
		network, addr string
		close         func() error
		port          uint16
	}
	targets := []*target{{network: "tcp4", addr: "127.0.0.1"}, {network: "udp4", addr: "127.0.0.1"}}
	if v6 {
		targets = append(targets, &target{network: "tcp6", addr: "::1"}, &target{network: "udp6", addr: "::1"})
	}
	// Each socket on a port of its own: a check of a port alone must not
	// find another target's socket (IPv4 and IPv6 may share a port).
	taken := map[string]bool{}
	for _, tg := range targets {
		proto := tg.network[:3]
		for {
			if proto == "udp" {
				pc, err := net.ListenPacket(tg.network, net.JoinHostPort(tg.addr, "0"))
				if err != nil {
					t.Fatal(err)
				}
				tg.close, tg.port = pc.Close, portOf(t, pc.LocalAddr())
			} else {
				ln, err := net.Listen(tg.network, net.JoinHostPort(tg.addr, "0"))
				if err != nil {
					t.Fatal(err)
				}
				tg.close, tg.port = ln.Close, portOf(t, ln.Addr())
			}
			if key := proto + strconv.Itoa(int(tg.port)); !taken[key] {
				taken[key] = true
				break
			}
			tg.close()
		}
		defer tg.close()
	}
	tables := [2]*listenTable{newListenTable(false), newListenTable(true)}
	const perTarget, probes = 8, 20
	type probe struct {
		l  *listenChecker
		tg *target
	}
	var all []probe
	for _, tg := range targets {
		for i := range perTarget {
			a := netip.MustParseAddr(tg.addr)
			if i%2 == 1 {
				a = netip.Addr{}
			}
			l := newListenChecker(config.ListenCheck{Addr: a, Port: tg.port, Protocol: tg.network[:3]})
			defer l.Close()
			tbl := tables[0]
			if l.udp {
				tbl = tables[1]
			}
			l.table.release()
			l.table, l.lookupFam = tbl, 0
			tbl.acquire()
			tbl.sharedMin = 1
			all = append(all, probe{l, tg})
		}
	}
	run := func(wantGone map[*target]bool) {
		var wg sync.WaitGroup
		for _, p := range all {
			wg.Go(func() {
				for range probes {
					p.l.lookupFam = 0 // a check of a port alone found its socket: stay in the slow path
					err := p.l.Check(context.Background())
					if gone := wantGone[p.tg]; gone != (err != nil) || (gone && !errors.Is(err, ErrDefinite)) {
						t.Errorf("%s %v port %d: Check = %v, want gone=%v", p.tg.network, p.l.addr, p.tg.port, err, gone)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	run(nil)
	gone := map[*target]bool{targets[0]: true, targets[1]: true}
	for tg := range gone {
		if err := tg.close(); err != nil {
			t.Fatal(err)
		}
	}
	run(gone)
	total := uint64(2 * len(all) * probes)
	t.Logf("%d probes, %d dumps", total, tables[0].done+tables[1].done)
}

// TestListenCheckNoAllocs: a probe allocates nothing, on the fast path
// (an address, a port alone) and on the slow path (dumps of its own port,
// the shared table).
func TestListenCheckNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	open, closed := portOf(t, ln.Addr()), listenClosedPort(t)
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		name   string
		c      config.ListenCheck
		shared bool
	}{
		{"addr", config.ListenCheck{Addr: lo, Port: open, Protocol: "tcp"}, false},
		{"port", config.ListenCheck{Port: open, Protocol: "tcp"}, false},
		{"closed", config.ListenCheck{Addr: lo, Port: closed, Protocol: "tcp"}, false},
		{"closed-shared", config.ListenCheck{Addr: lo, Port: closed, Protocol: "tcp"}, true},
		{"udp-closed-shared", config.ListenCheck{Port: closed, Protocol: "udp"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newListenChecker(tt.c)
			defer l.Close()
			if tt.shared {
				privateTable(t, l, false)
			}
			for range 3 { // the shared table's two buffers grow
				_ = l.Check(context.Background())
			}
			if n := testing.AllocsPerRun(100, func() { _ = l.Check(context.Background()) }); n != 0 {
				t.Errorf("%v allocations a probe, want 0", n)
			}
		})
	}
}

// testListenChecker is a listen check of addr ("" for any), port and proto.
func testListenChecker(addr string, port uint16, proto string) *listenChecker {
	var a netip.Addr
	if addr != "" {
		a = netip.MustParseAddr(addr)
	}
	return newListenChecker(config.ListenCheck{Addr: a, Port: port, Protocol: proto})
}
