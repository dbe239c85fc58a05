//go:build linux

package health

import (
	"container/heap"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// plainTCP probes one address of a tcp check that only connects (no TLS,
// send nor expect) with a nonblocking socket of its own instead of
// net.Dialer: socket, connect, and — when the connection is not complete
// when connect returns, as it is towards a local service — a wait in the
// shared epoll instance of tcpBatch; then close with a reset (SO_LINGER 0)
// so that no TIME_WAIT is left. A probe to an IP address allocates nothing
// when it passes.
//
// Its errors read as net.Dialer's: "dial tcp 127.0.0.1:80: connect:
// connection refused", "dial tcp 192.0.2.1:80: i/o timeout" and, for a host
// name, "dial tcp: lookup …".
type plainTCP struct {
	host   string // a host name to resolve at each probe; "" for an address
	port   uint16
	ip     netip.Addr // the address, unless host is set
	sa     tcpSockaddr
	addr   *net.TCPAddr // ip and port, for errors
	src    netip.Addr   // the source address; invalid: chosen by the kernel
	srcSa  tcpSockaddr
	source net.Addr // src for errors; nil when invalid
}

// newPlainTCP returns the prober of address ("host:port", as config.Load
// validated it) from source address src (invalid: any). It returns nil
// when the address is one it leaves to net.Dialer (a port name).
func newPlainTCP(address string, src netip.Addr) *plainTCP {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil // net.Dialer reports it as today
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil // net.Dialer reports it as today
	}
	p := &plainTCP{port: uint16(port), src: src.Unmap(), source: localTCPAddr(src)}
	if p.src.IsValid() {
		p.srcSa = sockaddrOf(p.src, 0, 0)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		p.host = host // a zone's interface is looked up at each probe
		return p
	}
	p.ip = ip.Unmap()
	p.sa = sockaddrOf(p.ip, p.port, 0)
	p.addr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, p.port))
	return p
}

// probe connects to the address (each address of the host name in turn,
// until one connects) and closes the connection again. It must end by
// deadline (zero: none); ctx's end stops it, and it then returns an error
// that wraps ctx.Err().
func (p *plainTCP) probe(ctx context.Context, deadline time.Time) error {
	if p.host == "" {
		if err := tcpProber.connect(ctx, &p.sa, p.srcSa.ptr(), deadline); err != nil {
			return p.opErrorTo(p.addr, err)
		}
		return nil
	}
	return p.probeHost(ctx, deadline)
}

// probeHost resolves p.host as net.Dialer does, then connects to its
// addresses in turn (those of the source address's family, if set) until
// one connects. It returns the first error.
func (p *plainTCP) probeHost(ctx context.Context, deadline time.Time) error {
	lctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	host, zone := p.host, ""
	if ip, err := netip.ParseAddr(host); err == nil {
		host, zone = ip.WithZone("").String(), ip.Zone()
	}
	ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
	if err != nil {
		if ctx.Err() != nil {
			return p.opErrorTo(nil, ctx.Err())
		}
		if lctx.Err() != nil {
			return p.opErrorTo(nil, os.ErrDeadlineExceeded)
		}
		return p.opErrorTo(nil, err)
	}
	var first error
	for _, ip := range ips {
		ip = ip.Unmap()
		if p.src.IsValid() && p.src.Is4() != ip.Is4() {
			continue
		}
		var scope uint32
		if zone != "" {
			if scope, err = zoneIndex(zone); err != nil {
				return p.opErrorTo(nil, err)
			}
			ip = ip.WithZone(zone)
		}
		sa := sockaddrOf(ip, p.port, scope)
		err := tcpProber.connect(ctx, &sa, p.srcSa.ptr(), deadline)
		if err == nil {
			return nil
		}
		if first == nil {
			first = p.opErrorTo(net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, p.port)), err)
		}
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	if first == nil {
		return p.opErrorTo(nil, &net.AddrError{Err: "no suitable address found", Addr: p.host})
	}
	return first
}

// opError returns err as net.Dialer reports a failed dial of p.
func (p *plainTCP) opError(err error) error {
	if p.addr == nil {
		return p.opErrorTo(nil, err)
	}
	return p.opErrorTo(p.addr, err)
}

func (p *plainTCP) opErrorTo(addr *net.TCPAddr, err error) error {
	op := &net.OpError{Op: "dial", Net: "tcp", Source: p.source, Err: err}
	if addr != nil {
		op.Addr = addr
	}
	return op
}

// zoneIndex returns the interface index of an IPv6 zone: a number or an
// interface name.
func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}

// tcpSockaddr is a socket address in the kernel's layout, built once so
// that connect and bind need no allocation (unix.Sockaddr values write
// into themselves on every call).
type tcpSockaddr struct {
	family int // unix.AF_INET or unix.AF_INET6; 0: none
	v4     unix.RawSockaddrInet4
	v6     unix.RawSockaddrInet6
}

// sockaddrOf returns the socket address of ip (unmapped), port and the
// IPv6 scope (interface index).
func sockaddrOf(ip netip.Addr, port uint16, scope uint32) tcpSockaddr {
	var sa tcpSockaddr
	if ip.Is4() {
		sa.family = unix.AF_INET
		sa.v4.Family = unix.AF_INET
		sa.v4.Addr = ip.As4()
		putPort(&sa.v4.Port, port)
		return sa
	}
	sa.family = unix.AF_INET6
	sa.v6.Family = unix.AF_INET6
	sa.v6.Addr = ip.As16()
	sa.v6.Scope_id = scope
	putPort(&sa.v6.Port, port)
	return sa
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// ptr returns sa, or nil when it holds no address.
func (sa *tcpSockaddr) ptr() *tcpSockaddr {
	if sa.family == 0 {
		return nil
	}
	return sa
}

// raw returns the kernel's sockaddr and its length.
func (sa *tcpSockaddr) raw() (unsafe.Pointer, uintptr) {
	if sa.family == unix.AF_INET {
		return unsafe.Pointer(&sa.v4), unix.SizeofSockaddrInet4
	}
	return unsafe.Pointer(&sa.v6), unix.SizeofSockaddrInet6
}

// tcpProber is the process's one batched prober.
var tcpProber = tcpBatch{epfd: -1, evfd: -1}

// tcpBatch waits for the pending connections of all plain tcp probes in
// one epoll instance, with one waiter goroutine that runs only while a
// connection is pending. The waiter ends a connection once the kernel says
// it is complete (or failed), or when its deadline passes, whichever is
// first, and hands the probe its error through a channel that is reused,
// like the rest of a probe's state (tcpWait).
//
// A probe whose connect completes at once (towards the local host, the
// kernel completes the handshake within connect) never reaches the waiter:
// a second connect says so, and the probing goroutine closes it.
type tcpBatch struct {
	mu      sync.Mutex
	epfd    int        // the epoll instance; -1 until first needed
	evfd    int        // an eventfd that wakes the waiter; -1 until first needed
	running bool       // the waiter goroutine runs
	wakeAt  time.Time  // the waiter wakes by then at the latest; zero: only on an event
	slots   []*tcpWait // by tcpWait.idx
	free    []*tcpWait
	pending waitHeap // the pending waits that have a deadline, earliest first
	npend   int      // pending waits
}

// tcpWait is the state of one pending connection, reused.
type tcpWait struct {
	idx      int32 // in tcpBatch.slots
	gen      int32 // counts uses, so that stale epoll events are ignored
	fd       int   // the socket
	deadline time.Time
	hidx     int        // in tcpBatch.pending; -1 when not there
	pending  bool       // registered in the epoll instance
	done     chan error // the result; buffered 1
}

// evfdSlot is the epoll data of the eventfd.
const evfdSlot = -1

// wakeBytes is what is written to the eventfd.
var wakeBytes = [8]byte{1}

// connect opens a TCP connection to sa from src (nil: any), by deadline
// (zero: none), and closes it with a reset. The error is a syscall error
// ("connect: connection refused"), os.ErrDeadlineExceeded, or wraps
// ctx.Err() when ctx ended first.
func (b *tcpBatch) connect(ctx context.Context, sa, src *tcpSockaddr, deadline time.Time) error {
	fd, err := unix.Socket(sa.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	if src != nil {
		ptr, n := src.raw()
		if _, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(ptr), n); e != 0 {
			unix.Close(fd)
			return os.NewSyscallError("bind", e)
		}
	}
	ptr, n := sa.raw()
	// Towards the local host the kernel has completed the handshake (or
	// been refused) by the time the first connect returns: connecting
	// again says so, with one system call and no waiting.
	for range 2 {
		_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
		switch e {
		case 0, unix.EISCONN:
			return closeConnected(fd)
		case unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
		default:
			unix.Close(fd)
			return os.NewSyscallError("connect", e)
		}
	}
	w, err := b.register(fd, deadline)
	if err != nil {
		unix.Close(fd)
		return err
	}
	select {
	case err = <-w.done:
	case <-ctx.Done():
		if b.cancel(w) {
			err = ctx.Err()
		} else {
			err = <-w.done
		}
	}
	b.release(w)
	return err
}

// finishConnect reads the outcome of the connection on fd and closes fd:
// with a reset if it connected.
func finishConnect(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		err = os.NewSyscallError("getsockopt", err)
	case v != 0:
		err = os.NewSyscallError("connect", unix.Errno(v))
	default:
		return closeConnected(fd)
	}
	unix.Close(fd)
	return err
}

// closeConnected closes fd, connected, with a reset.
func closeConnected(fd int) error {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &noLinger)
	unix.Close(fd)
	return nil
}

// noLinger makes close send a reset: SO_LINGER on, 0 seconds.
var noLinger = unix.Linger{Onoff: 1, Linger: 0}

// init opens the epoll instance and the eventfd; b.mu must be held.
func (b *tcpBatch) init() error {
	if b.epfd >= 0 {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: evfdSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	b.epfd, b.evfd = epfd, evfd
	return nil
}

// register adds fd, whose connection is in progress, to the epoll
// instance, and starts the waiter if it does not run.
func (b *tcpBatch) register(fd int, deadline time.Time) (*tcpWait, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.init(); err != nil {
		return nil, err
	}
	var w *tcpWait
	if n := len(b.free); n > 0 {
		w = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		w = &tcpWait{idx: int32(len(b.slots)), hidx: -1, done: make(chan error, 1)}
		b.slots = append(b.slots, w)
	}
	w.gen++
	w.fd, w.deadline = fd, deadline
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: w.idx, Pad: w.gen}
	if err := unix.EpollCtl(b.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		b.free = append(b.free, w)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	w.pending = true
	b.npend++
	if !deadline.IsZero() {
		heap.Push(&b.pending, w)
	}
	switch {
	case !b.running:
		b.running = true
		go b.wait()
	case !deadline.IsZero() && (b.wakeAt.IsZero() || deadline.Before(b.wakeAt)):
		b.kick()
	}
	return w, nil
}

// kick wakes the waiter; b.mu must be held.
func (b *tcpBatch) kick() {
	_, _ = unix.Write(b.evfd, wakeBytes[:])
}

// cancel gives up w if it is still pending, closing its socket, and
// reports whether it did; if not, its result is on its way.
func (b *tcpBatch) cancel(w *tcpWait) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !w.pending {
		return false
	}
	b.unpend(w)
	unix.Close(w.fd)
	b.kick() // it may have nothing left to wait for
	return true
}

// release makes w available again once its result has been taken.
func (b *tcpBatch) release(w *tcpWait) {
	b.mu.Lock()
	b.free = append(b.free, w)
	b.mu.Unlock()
}

// unpend takes w out of the pending set; b.mu must be held.
func (b *tcpBatch) unpend(w *tcpWait) {
	w.pending = false
	b.npend--
	if w.hidx >= 0 {
		heap.Remove(&b.pending, w.hidx)
	}
}

// complete hands w its result; b.mu must be held.
func (b *tcpBatch) complete(w *tcpWait, err error) {
	b.unpend(w)
	w.done <- err // buffered, and empty while w is pending
}

// wait is the waiter goroutine: it ends the pending connections as their
// sockets become writable or their deadlines pass, and returns once none is
// pending.
func (b *tcpBatch) wait() {
	var events [128]unix.EpollEvent
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.npend == 0 {
			b.running = false
			return
		}
		msec := -1
		b.wakeAt = time.Time{}
		if len(b.pending) > 0 {
			b.wakeAt = b.pending[0].deadline
			// Round up: waking early would only mean waiting again.
			msec = int((time.Until(b.wakeAt) + time.Millisecond - 1) / time.Millisecond)
			msec = max(msec, 0)
		}
		b.mu.Unlock()
		n, err := unix.EpollWait(b.epfd, events[:], msec)
		b.mu.Lock()
		if err != nil {
			n = 0 // EINTR; nothing else is expected of a valid epoll fd
		}
		for _, ev := range events[:n] {
			if ev.Fd == evfdSlot {
				var buf [8]byte
				_, _ = unix.Read(b.evfd, buf[:])
				continue
			}
			w := b.slots[ev.Fd]
			if !w.pending || w.gen != ev.Pad {
				continue // cancelled meanwhile
			}
			b.complete(w, finishConnect(w.fd))
		}
		now := time.Now()
		for len(b.pending) > 0 && !b.pending[0].deadline.After(now) {
			w := b.pending[0]
			unix.Close(w.fd)
			b.complete(w, os.ErrDeadlineExceeded)
		}
	}
}

// waitHeap is a min-heap of tcpWaits by deadline.
type waitHeap = deadlineHeap[*tcpWait]

func (w *tcpWait) heapDeadline() time.Time { return w.deadline }
func (w *tcpWait) setHeapIndex(i int)      { w.hidx = i }
