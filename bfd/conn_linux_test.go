//go:build linux

package bfd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The transport tests use loopback only (127.0.0.0/8 and ::1) on ports
// found free, so they run with or without root.

var (
	lo4  = netip.MustParseAddr("127.0.0.1")
	lo4b = netip.MustParseAddr("127.0.0.2") // also on lo: a destination other than the source
	lo6  = netip.MustParseAddr("::1")
)

// needIPv6 skips the test when the host has no ::1.
func needIPv6(t *testing.T) {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	c.Close()
}

// listenFree opens a Listener on a free port below the kernel's ephemeral
// range (and below the BFD source ports), trying random ports until one is
// free on every address asked for.
func listenFree(t *testing.T, addrs ...netip.Addr) (*Listener, int) {
	t.Helper()
	for range 50 {
		port := 20000 + rand.IntN(10000)
		l, err := Listen(port, addrs...)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			t.Fatalf("Listen(%d, %v): %v", port, addrs, err)
		}
		t.Cleanup(func() { l.Close() })
		return l, port
	}
	t.Fatal("no free port found")
	return nil, 0
}

func dial(t *testing.T, local, peer netip.Addr, port int, ttl uint8) *Sender {
	t.Helper()
	s, err := Dial(local, peer, port, ttl)
	if err != nil {
		t.Fatalf("Dial(%v, %v, %d, %d): %v", local, peer, port, ttl, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type rx struct {
	n        int
	src, dst netip.Addr
	ttl      uint8
	err      error
}

// readWithin reads one packet into b, failing the test if none comes
// within two seconds.
func readWithin(t *testing.T, l *Listener, b []byte) rx {
	t.Helper()
	ch := make(chan rx, 1)
	go func() {
		var r rx
		r.n, r.src, r.dst, r.ttl, r.err = l.Read(b)
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Read: %v", r.err)
		}
		return r
	case <-time.After(2 * time.Second):
		t.Fatal("no packet within 2s")
		return rx{}
	}
}

func testPacket(myDiscr uint32) []byte {
	b := make([]byte, HeaderLen)
	b[0] = Version << 5
	b[1] = byte(StateDown) << 6
	b[2] = 3
	b[3] = HeaderLen
	binary.BigEndian.PutUint32(b[4:], myDiscr)
	return b
}

// TestConnTTL sends from a Sender with a given TTL to a Listener bound to
// the wildcard addresses and checks what Read says: payload, source,
// destination (from IP_PKTINFO / IPV6_PKTINFO, not the bound address) and
// the TTL or hop limit the packet arrived with.
func TestConnTTL(t *testing.T) {
	for _, tc := range []struct {
		name        string
		local, peer netip.Addr
		ttl         uint8
	}{
		{"v4/single-hop", lo4, lo4b, SingleHopTTL},
		{"v4/254", lo4, lo4b, 254},
		{"v4/multihop-5", lo4, lo4, 5},
		{"v6/single-hop", lo6, lo6, SingleHopTTL},
		{"v6/254", lo6, lo6, 254},
		{"v6/multihop-5", lo6, lo6, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.peer.Is6() {
				needIPv6(t)
			}
			l, port := listenFree(t)
			s := dial(t, tc.local, tc.peer, port, tc.ttl)
			want := testPacket(uint32(tc.ttl))
			if err := s.Write(want); err != nil {
				t.Fatalf("Write: %v", err)
			}
			b := make([]byte, 256)
			r := readWithin(t, l, b)
			if !bytes.Equal(b[:r.n], want) {
				t.Errorf("payload % x, want % x", b[:r.n], want)
			}
			if r.src != tc.local || r.dst != tc.peer || r.ttl != tc.ttl {
				t.Errorf("Read: src %v dst %v ttl %d, want src %v dst %v ttl %d",
					r.src, r.dst, r.ttl, tc.local, tc.peer, tc.ttl)
			}
		})
	}
}

// TestConnListenAddrs binds a Listener to given addresses, one IPv4 and
// one IPv6, and reads a packet sent to each.
func TestConnListenAddrs(t *testing.T) {
	needIPv6(t)
	l, port := listenFree(t, lo4, lo6)
	got := l.Addrs()
	want := []netip.AddrPort{netip.AddrPortFrom(lo4, uint16(port)), netip.AddrPortFrom(lo6, uint16(port))}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Addrs() = %v, want %v", got, want)
	}
	for _, a := range []netip.Addr{lo4, lo6} {
		s := dial(t, netip.Addr{}, a, port, SingleHopTTL)
		if err := s.Write(testPacket(1)); err != nil {
			t.Fatalf("Write to %v: %v", a, err)
		}
		r := readWithin(t, l, make([]byte, 256))
		if r.n != HeaderLen || r.src != a || r.dst != a || r.ttl != SingleHopTTL {
			t.Errorf("to %v: n %d src %v dst %v ttl %d", a, r.n, r.src, r.dst, r.ttl)
		}
	}
}

// TestConnSourcePorts checks RFC 5881 §4: source ports in 49152–65535, one
// per session, a port taken by another socket skipped.
func TestConnSourcePorts(t *testing.T) {
	const port = PortSingleHop // nothing needs to listen
	a := dial(t, lo4, lo4, port, SingleHopTTL)
	b := dial(t, lo4, lo4, port, SingleHopTTL)
	for _, s := range []*Sender{a, b} {
		if p := s.LocalAddr().Port(); p < SourcePortMin || p > SourcePortMax {
			t.Errorf("source port %d outside %d-%d", p, SourcePortMin, SourcePortMax)
		}
		if s.LocalAddr().Addr() != lo4 {
			t.Errorf("source address %v, want %v", s.LocalAddr().Addr(), lo4)
		}
	}
	if a.LocalAddr().Port() == b.LocalAddr().Port() {
		t.Errorf("two senders share source port %d", a.LocalAddr().Port())
	}

	// Once the ports have come round, a port held by a Sender on another
	// address, which the kernel would give again, is skipped too.
	srcPorts.Lock()
	srcPorts.next = int(a.LocalAddr().Port())
	srcPorts.Unlock()
	if p := dial(t, lo4b, lo4, port, SingleHopTTL).LocalAddr().Port(); p == a.LocalAddr().Port() {
		t.Errorf("senders from %v and %v share source port %d", lo4, lo4b, p)
	}

	// Another program holds a port on all addresses: make it the next one
	// tried.
	var taken *net.UDPConn
	for range 50 {
		p := SourcePortMin + rand.IntN(SourcePortMax-SourcePortMin) // not the last: p+1 stays in range
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: p})
		if err == nil {
			taken = c
			break
		}
	}
	if taken == nil {
		t.Fatal("found no free port to occupy")
	}
	defer taken.Close()
	tp := taken.LocalAddr().(*net.UDPAddr).Port
	srcPorts.Lock()
	srcPorts.next = tp
	srcPorts.Unlock()
	c := dial(t, lo4, lo4, port, SingleHopTTL)
	if p := int(c.LocalAddr().Port()); p == tp || p < SourcePortMin || p > SourcePortMax {
		t.Errorf("source port %d with port %d taken", p, tp)
	}

	// A port given back is free again for a later Dial.
	cp := c.LocalAddr().Port()
	c.Close()
	srcPorts.Lock()
	_, held := srcPorts.inUse[cp]
	srcPorts.Unlock()
	if held {
		t.Errorf("port %d still held after Close", cp)
	}
}

// TestConnZeroAllocs checks that a Write and the Read of its packet
// allocate nothing, counting every goroutine's allocations (the listener's
// reading goroutine included).
func TestConnZeroAllocs(t *testing.T) {
	for _, addr := range []netip.Addr{lo4, lo6} {
		t.Run(addr.String(), func(t *testing.T) {
			if addr.Is6() {
				needIPv6(t)
			}
			l, port := listenFree(t)
			s := dial(t, addr, addr, port, SingleHopTTL)
			pkt := testPacket(7)
			buf := make([]byte, 256)
			var failed error
			roundTrip := func() {
				if err := s.Write(pkt); err != nil && failed == nil {
					failed = err
				}
				n, src, _, ttl, err := l.Read(buf)
				if (err != nil || n != HeaderLen || src != addr || ttl != SingleHopTTL) && failed == nil {
					failed = errors.New("bad read")
				}
			}
			roundTrip() // warm up
			allocs := testing.AllocsPerRun(500, roundTrip)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("Write+Read allocate %v times a packet, want 0", allocs)
			}
		})
	}
}

// TestConnCS6 checks the packets leave with DSCP CS6 (TOS / traffic class
// 0xc0), as the receiver's kernel reports it, and the socket priority.
func TestConnCS6(t *testing.T) {
	for _, addr := range []netip.Addr{lo4, lo6} {
		t.Run(addr.String(), func(t *testing.T) {
			network, level, recvOpt, typ := "udp4", unix.IPPROTO_IP, unix.IP_RECVTOS, unix.IP_TOS
			if addr.Is6() {
				needIPv6(t)
				network, level, recvOpt, typ = "udp6", unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, unix.IPV6_TCLASS
			}
			rc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			raw, _ := rc.SyscallConn()
			if err := control(raw, func(fd int) error { return unix.SetsockoptInt(fd, level, recvOpt, 1) }); err != nil {
				t.Fatal(err)
			}
			s := dial(t, addr, addr, rc.LocalAddr().(*net.UDPAddr).Port, SingleHopTTL)
			if err := s.Write(testPacket(1)); err != nil {
				t.Fatal(err)
			}
			rc.SetReadDeadline(time.Now().Add(2 * time.Second))
			oob := make([]byte, 128)
			_, oobn, _, _, err := rc.ReadMsgUDPAddrPort(make([]byte, 256), oob)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				t.Fatal(err)
			}
			tos := -1
			for _, m := range msgs {
				switch {
				case int(m.Header.Level) != level || int(m.Header.Type) != typ:
				case addr.Is4() && len(m.Data) >= 1: // IP_TOS: one byte
					tos = int(m.Data[0])
				case len(m.Data) >= 4: // IPV6_TCLASS: an int
					tos = int(binary.NativeEndian.Uint32(m.Data))
				}
			}
			if tos != tosCS6 {
				t.Errorf("traffic class %#x, want %#x", tos, tosCS6)
			}
			sc, _ := s.conn.SyscallConn()
			var prio int
			control(sc, func(fd int) (err error) {
				prio, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY)
				return err
			})
			if prio != sockPriority {
				t.Errorf("SO_PRIORITY %d, want %d", prio, sockPriority)
			}
		})
	}
}

// TestConnRefusedRetry: while the peer does not listen, its ICMP port
// unreachable leaves an error on the connected socket that would cost the
// next packet; Write must still deliver it once the peer listens.
func TestConnRefusedRetry(t *testing.T) {
	l, port := listenFree(t, lo4)
	l.Close() // the port is now closed: packets to it draw port unreachable
	s := dial(t, lo4, lo4, port, SingleHopTTL)
	if err := s.Write(testPacket(1)); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	l2, err := Listen(port, lo4)
	if err != nil {
		t.Fatalf("Listen again on %d: %v", port, err)
	}
	defer l2.Close()
	if err := s.Write(testPacket(2)); err != nil {
		t.Fatalf("Write after port unreachable: %v", err)
	}
	b := make([]byte, 256)
	if r := readWithin(t, l2, b); r.n != HeaderLen || b[7] != 2 {
		t.Errorf("read % x, want the second packet", b[:r.n])
	}
}

func TestConnErrors(t *testing.T) {
	_, port := listenFree(t, lo4)
	if l2, err := Listen(port, lo4); !errors.Is(err, syscall.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Errorf("second Listen on %d: %v, want address already in use", port, err)
	}
	for _, port := range []int{0, -1, 65536} {
		if _, err := Listen(port); err == nil {
			t.Errorf("Listen(%d) succeeded", port)
		}
	}
	if _, err := Listen(port+1, netip.Addr{}); err == nil {
		t.Error("Listen with an invalid address succeeded")
	}
	for _, tc := range []struct {
		local, peer netip.Addr
		port        int
		ttl         uint8
	}{
		{lo4, lo4, PortSingleHop, 0},
		{lo4, lo6, PortSingleHop, 255},
		{lo4, netip.Addr{}, PortSingleHop, 255},
		{lo4, netip.IPv4Unspecified(), PortSingleHop, 255},
		{lo4, lo4, 0, 255},
		{netip.MustParseAddr("198.18.255.254"), lo4, PortSingleHop, 255}, // not ours: EADDRNOTAVAIL
	} {
		if s, err := Dial(tc.local, tc.peer, tc.port, tc.ttl); err == nil {
			s.Close()
			t.Errorf("Dial(%v, %v, %d, %d) succeeded", tc.local, tc.peer, tc.port, tc.ttl)
		}
	}
}

// TestConnClose: Close wakes a blocked Read with net.ErrClosed, stops the
// listener's goroutines, and may be called twice.
func TestConnClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l, port := listenFree(t)
	s := dial(t, lo4, lo4, port, SingleHopTTL)
	// A packet sent and not read: its reader goroutine waits to hand it over.
	if err := s.Write(testPacket(1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	errc := make(chan error, 1)
	go func() {
		b := make([]byte, 256)
		var err error
		for err == nil {
			_, _, _, _, err = l.Read(b)
		}
		errc <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read still blocked 2s after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// BenchmarkConnRoundTrip is one Write and the Read of its packet over
// IPv4 loopback: the transport's cost per packet.
func BenchmarkConnRoundTrip(b *testing.B) {
	var l *Listener
	var port int
	for l == nil {
		port = 20000 + rand.IntN(10000)
		var err error
		if l, err = Listen(port, lo4); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			b.Fatal(err)
		}
	}
	defer l.Close()
	s, err := Dial(lo4, lo4, port, SingleHopTTL)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pkt, buf := testPacket(1), make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, _, _, _, err := l.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
