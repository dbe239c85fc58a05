//go:build linux

package bfd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The UDP transport of RFC 5881 (single hop) and RFC 5883 (multihop).
//
// Nothing here needs a capability: the ports are above 1024, IP_TOS and
// IPV6_TCLASS are free to set, and SO_PRIORITY is set to 6, the highest
// value Linux allows without CAP_NET_ADMIN.

const (
	// tosCS6 is the IPv4 TOS / IPv6 traffic class of every packet sent:
	// DSCP CS6 (network control), what routers queue BFD and BGP in.
	tosCS6 = 0xc0
	// sockPriority is the SO_PRIORITY of the senders: TC_PRIO_INTERACTIVE,
	// the first band of pfifo_fast; 7 would need CAP_NET_ADMIN.
	sockPriority = 6

	// rxBufLen is the payload buffer of each listening socket. A Control
	// packet is at most 255 bytes (its Length field); a longer datagram is
	// cut to rxBufLen, which is still more than its Length field says.
	rxBufLen = 2048
	// rxOOBLen holds the two control messages asked for (TTL or hop limit:
	// an int; IP_PKTINFO: 12 bytes; IPV6_PKTINFO: 20 bytes) with room to
	// spare.
	rxOOBLen = 128
)

// Listener receives Control packets on one UDP port: by default on
// 0.0.0.0 and on [::] (a separate IPv6-only socket; on a host without
// IPv6 only the first), or on the addresses given to Listen. For each
// packet it learns from the kernel the destination address (IP_PKTINFO,
// IPV6_RECVPKTINFO) and the TTL or hop limit it arrived with (IP_RECVTTL,
// IPV6_RECVHOPLIMIT), so the caller can drop single-hop packets below 255
// (RFC 5881 §5).
//
// Each socket has its own goroutine that reads into a buffer allocated
// once; Read takes the next packet from any of them. Nothing is allocated
// per packet.
type Listener struct {
	port    int
	readers []*reader
	pkts    chan rxPacket // unbuffered: a reader hands over one packet at a time
	done    chan struct{} // closed by Close
	once    sync.Once
	err     error // of Close
	wg      sync.WaitGroup
}

// reader is one listening socket and its buffers.
type reader struct {
	// oob comes first so that it is 8-byte aligned: the control messages
	// are parsed in place as unix.Cmsghdr.
	oob  [rxOOBLen]byte
	buf  [rxBufLen]byte
	conn *net.UDPConn
	free chan struct{} // Read gives buf back; capacity 1
}

// rxPacket is a packet handed from a reader to Read: buf[:n] of r.
type rxPacket struct {
	r        *reader
	n        int
	src, dst netip.Addr
	ttl      uint8
	err      error
}

// Listen opens the listening sockets on port (PortSingleHop or
// PortMultihop; any port from 1 to 65535, for tests). Without addrs it
// binds 0.0.0.0:port and [::]:port; with addrs, addr:port for each (an
// IPv6 link-local address needs its zone). SO_REUSEADDR is not set: a port
// already taken, by another BFD daemon say, is an error ("address already
// in use") rather than packets silently split between two processes.
func Listen(port int, addrs ...netip.Addr) (*Listener, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("bfd: listen: port %d out of range 1-65535", port)
	}
	type bind struct {
		ap       netip.AddrPort
		optional bool // skipped when the kernel has no IPv6
	}
	var binds []bind
	if len(addrs) == 0 {
		binds = []bind{
			{ap: netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))},
			{ap: netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), optional: true},
		}
	}
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, errors.New("bfd: listen: invalid address")
		}
		binds = append(binds, bind{ap: netip.AddrPortFrom(a.Unmap(), uint16(port))})
	}

	l := &Listener{
		port: port,
		pkts: make(chan rxPacket),
		done: make(chan struct{}),
	}
	for _, b := range binds {
		v4 := b.ap.Addr().Is4()
		network := "udp6"
		if v4 {
			network = "udp4"
		}
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			return control(rc, func(fd int) error { return setListenerOpts(fd, v4) })
		}}
		pc, err := lc.ListenPacket(context.Background(), network, b.ap.String())
		if err != nil {
			if b.optional && errors.Is(err, syscall.EAFNOSUPPORT) {
				continue
			}
			for _, r := range l.readers {
				r.conn.Close()
			}
			return nil, fmt.Errorf("bfd: listen: %w", err)
		}
		l.readers = append(l.readers, &reader{
			conn: pc.(*net.UDPConn),
			free: make(chan struct{}, 1),
		})
	}
	for _, r := range l.readers {
		l.wg.Add(1)
		go l.loop(r)
	}
	return l, nil
}

// setListenerOpts asks for the TTL or hop limit and the destination
// address of every packet, and makes an IPv6 socket IPv6-only.
func setListenerOpts(fd int, v4 bool) error {
	if v4 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1); err != nil {
			return fmt.Errorf("IP_RECVTTL: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return fmt.Errorf("IP_PKTINFO: %w", err)
		}
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		return fmt.Errorf("IPV6_V6ONLY: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1); err != nil {
		return fmt.Errorf("IPV6_RECVHOPLIMIT: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
		return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
	}
	return nil
}

// loop reads r's socket until the listener is closed, handing each packet
// to Read and waiting for Read to give the buffer back.
func (l *Listener) loop(r *reader) {
	defer l.wg.Done()
	for {
		n, oobn, _, from, err := r.conn.ReadMsgUDPAddrPort(r.buf[:], r.oob[:])
		p := rxPacket{r: r, err: err}
		if err == nil {
			p.n = n
			p.src = from.Addr()
			p.dst, p.ttl = parseControl(r.oob[:oobn])
		} else if errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case l.pkts <- p:
		case <-l.done:
			return
		}
		if err != nil {
			continue // nothing to give back
		}
		select {
		case <-r.free:
		case <-l.done:
			return
		}
	}
}

// parseControl finds the destination address and the TTL or hop limit in
// the control messages of one packet, in place. A value the kernel did not
// give is left zero: ttl 0, dst invalid.
func parseControl(oob []byte) (dst netip.Addr, ttl uint8) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4,
			h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			if v := binary.NativeEndian.Uint32(data); v <= 255 {
				ttl = uint8(v)
			}
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ipi_ifindex; struct in_addr
			// ipi_spec_dst; struct in_addr ipi_addr; }: ipi_addr is the
			// destination in the IP header.
			dst = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { struct in6_addr ipi6_addr; int
			// ipi6_ifindex; }
			dst = netip.AddrFrom16([16]byte(data[:16]))
		}
	}
	return dst, ttl
}

// Read waits for the next packet on any of the listener's sockets and
// copies its UDP payload into b (cut to len(b); 255 bytes hold any Control
// packet). src is the sender's address (an IPv6 link-local one with its
// zone), dst the address the packet was sent to (without a zone), ttl the
// TTL or IPv6 hop limit it arrived with (0 if the kernel did not say).
// Read allocates nothing. It may be called from several goroutines.
//
// After Close, Read returns net.ErrClosed. Any other error is of one
// receive call on one socket; the listener goes on.
func (l *Listener) Read(b []byte) (n int, src, dst netip.Addr, ttl uint8, err error) {
	select {
	case p := <-l.pkts:
		if p.err != nil {
			return 0, netip.Addr{}, netip.Addr{}, 0, p.err
		}
		n = copy(b, p.r.buf[:p.n])
		p.r.free <- struct{}{}
		return n, p.src, p.dst, p.ttl, nil
	case <-l.done:
		return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
	}
}

// Addrs gives the local address and port of each listening socket.
func (l *Listener) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(l.readers))
	for _, r := range l.readers {
		out = append(out, r.conn.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// Close closes the sockets and waits for their goroutines; a Read blocked
// or called afterwards returns net.ErrClosed. Calling Close again returns
// the first call's result.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		var errs []error
		for _, r := range l.readers {
			errs = append(errs, r.conn.Close())
		}
		l.wg.Wait()
		l.err = errors.Join(errs...)
	})
	return l.err
}

// Sender sends the Control packets of one session: a UDP socket bound to
// local and a source port of its own, connected to peer:port.
type Sender struct {
	conn  *net.UDPConn
	local netip.AddrPort
	peer  netip.AddrPort
	once  sync.Once
	err   error // of Close
}

// srcPorts hands out the source ports of RFC 5881 §4 (49152–65535), one
// per Sender in the process, so that each session has its own ("SHOULD be
// unique among all BFD sessions on the system"). The next port is taken
// round the range from a random start, so a port just given back is not
// reused at once, and a port bound by anyone else is skipped.
var srcPorts = struct {
	sync.Mutex
	inUse map[uint16]struct{}
	next  int // next port to try; 0 until the first Dial
}{inUse: map[uint16]struct{}{}}

// Dial opens the Sender of one session: a UDP socket bound to
// local:srcport, srcport being a free port in 49152–65535 that no other
// Sender of this process holds, and connected to peer:port (PortSingleHop
// or PortMultihop). Every packet leaves with TTL or hop limit ttl
// (SingleHopTTL for single hop, RFC 5881 §5; the configured one for
// multihop, RFC 5883 §2), with DSCP CS6 and SO_PRIORITY 6. An invalid local
// lets the kernel choose the source address (by route, at each packet);
// local and peer must otherwise be of the same family (an IPv4-mapped IPv6
// address counts as IPv4). An IPv6 link-local peer needs its zone.
func Dial(local, peer netip.Addr, port int, ttl uint8) (*Sender, error) {
	peer = peer.Unmap()
	local = local.Unmap()
	switch {
	case !peer.IsValid() || peer.IsUnspecified():
		return nil, fmt.Errorf("bfd: dial: invalid peer address %v", peer)
	case port < 1 || port > 65535:
		return nil, fmt.Errorf("bfd: dial %v: port %d out of range 1-65535", peer, port)
	case ttl == 0:
		return nil, fmt.Errorf("bfd: dial %v: TTL 0", peer)
	case local.IsValid() && local.Is4() != peer.Is4():
		return nil, fmt.Errorf("bfd: dial %v from %v: address families differ", peer, local)
	}
	v4 := peer.Is4()
	network := "udp6"
	if v4 {
		network = "udp4"
	}
	if !local.IsValid() {
		local = netip.IPv6Unspecified()
		if v4 {
			local = netip.IPv4Unspecified()
		}
	}
	raddr := netip.AddrPortFrom(peer, uint16(port))
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, func(fd int) error { return setSenderOpts(fd, v4, ttl) })
	}}

	srcPorts.Lock()
	defer srcPorts.Unlock()
	const nPorts = SourcePortMax - SourcePortMin + 1
	if srcPorts.next == 0 {
		srcPorts.next = SourcePortMin + rand.IntN(nPorts)
	}
	for range nPorts {
		p := uint16(srcPorts.next)
		srcPorts.next++
		if srcPorts.next > SourcePortMax {
			srcPorts.next = SourcePortMin
		}
		if _, ok := srcPorts.inUse[p]; ok {
			continue
		}
		laddr := netip.AddrPortFrom(local, p)
		c, err := d.DialUDP(context.Background(), network, laddr, raddr)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bfd: dial %v from %v: %w", raddr, laddr, err)
		}
		srcPorts.inUse[p] = struct{}{}
		return &Sender{
			conn:  c,
			local: c.LocalAddr().(*net.UDPAddr).AddrPort(),
			peer:  raddr,
		}, nil
	}
	return nil, fmt.Errorf("bfd: dial %v from %v: no free source port in %d-%d",
		raddr, local, SourcePortMin, SourcePortMax)
}

// setSenderOpts sets the TTL or hop limit, the traffic class and the
// socket priority of a sender.
func setSenderOpts(fd int, v4 bool, ttl uint8) error {
	if v4 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, int(ttl)); err != nil {
			return fmt.Errorf("IP_TTL: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, tosCS6); err != nil {
			return fmt.Errorf("IP_TOS: %w", err)
		}
	} else {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, int(ttl)); err != nil {
			return fmt.Errorf("IPV6_UNICAST_HOPS: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosCS6); err != nil {
			return fmt.Errorf("IPV6_TCLASS: %w", err)
		}
	}
	// After IP_TOS, which sets the priority from the TOS bits (0 for 0xc0).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, sockPriority); err != nil {
		return fmt.Errorf("SO_PRIORITY: %w", err)
	}
	return nil
}

// control runs set on the socket of rc.
func control(rc syscall.RawConn, set func(fd int) error) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = set(int(fd)) }); err != nil {
		return err
	}
	return serr
}

// Write sends b (a marshalled Control packet) to the peer. It allocates
// nothing. When an ICMP port unreachable from the peer (its BFD not
// running yet) has left an error on the socket, that error would make the
// kernel drop this packet: Write then sends it again at once and reports
// only the second result.
func (s *Sender) Write(b []byte) error {
	_, err := s.conn.Write(b)
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		_, err = s.conn.Write(b)
	}
	return err
}

// LocalAddr gives the source address and port (the port in 49152–65535;
// the address unspecified if Dial was given none).
func (s *Sender) LocalAddr() netip.AddrPort { return s.local }

// RemoteAddr gives the peer's address and port.
func (s *Sender) RemoteAddr() netip.AddrPort { return s.peer }

// Close closes the socket and gives its source port back. Calling Close
// again returns the first call's result.
func (s *Sender) Close() error {
	s.once.Do(func() {
		s.err = s.conn.Close()
		srcPorts.Lock()
		delete(srcPorts.inUse, s.local.Port())
		srcPorts.Unlock()
	})
	return s.err
}
