package bfd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// memNet is an in-memory network of hosts for the Manager's tests: a
// datagram written by a host's sender reaches the listener of the host
// that owns the destination address on that port, with the TTL it was
// sent with, unless the network is told to lose it. Like UDP it never
// blocks a writer: a full listener queue loses the packet.
type memNet struct {
	mu      sync.Mutex
	hosts   []*memHost
	cut     map[netip.Addr]bool // addresses whose packets are lost both ways
	writers int                 // senders open
	sent    map[netip.AddrPort]int
	last    map[netip.AddrPort][HeaderLen]byte // the last packet written to each
}

func newMemNet() *memNet {
	return &memNet{cut: map[netip.Addr]bool{}, sent: map[netip.AddrPort]int{}, last: map[netip.AddrPort][HeaderLen]byte{}}
}

// host gives the Transport of a host with addrs. Its listeners are on all
// its addresses, as a wildcard socket is, including those added later.
func (n *memNet) host(addrs ...string) *memHost {
	h := &memHost{n: n, listeners: map[int]*memListener{}}
	for _, a := range addrs {
		h.addrs = append(h.addrs, netip.MustParseAddr(a))
	}
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	return h
}

// addAddr gives h another address.
func (h *memHost) addAddr(a netip.Addr) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.addrs = append(h.addrs, a)
}

// setCut loses (or stops losing) every packet from or to addr.
func (n *memNet) setCut(addr netip.Addr, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[addr] = cut
}

// openWriters is how many senders are open.
func (n *memNet) openWriters() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.writers
}

// sentTo is how many packets were written to dst.
func (n *memNet) sentTo(dst netip.AddrPort) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent[dst]
}

// lastTo decodes the last packet written to dst.
func (n *memNet) lastTo(dst netip.AddrPort) (Packet, error) {
	n.mu.Lock()
	b := n.last[dst]
	n.mu.Unlock()
	var p Packet
	return p, Unmarshal(b[:], &p)
}

// deliver puts a datagram from src to dst:port with ttl in the queue of
// the listener there, if any.
func (n *memNet) deliver(src, dst netip.Addr, port int, ttl uint8, b []byte) {
	n.mu.Lock()
	to := netip.AddrPortFrom(dst, uint16(port))
	n.sent[to]++
	var last [HeaderLen]byte
	copy(last[:], b)
	n.last[to] = last
	var l *memListener
	for _, h := range n.hosts {
		if h.owns(dst) {
			l = h.listeners[port]
		}
	}
	lost := n.cut[src] || n.cut[dst]
	n.mu.Unlock()
	if l == nil || lost {
		return
	}
	var d memDatagram
	d.n = copy(d.b[:], b)
	d.src, d.dst, d.ttl = src, dst, ttl
	select {
	case l.q <- d:
	default:
	}
}

type memDatagram struct {
	b        [64]byte
	n        int
	src, dst netip.Addr
	ttl      uint8
}

// memHost is the Transport of one host of a memNet.
type memHost struct {
	n         *memNet
	addrs     []netip.Addr         // under n.mu
	listeners map[int]*memListener // by port, under n.mu
}

// owns reports whether a is h's; n.mu held.
func (h *memHost) owns(a netip.Addr) bool {
	for _, x := range h.addrs {
		if x == a {
			return true
		}
	}
	return false
}

// Listen listens on port on every address of the host.
func (h *memHost) Listen(port int) (PacketReader, error) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	if h.listeners[port] != nil {
		return nil, fmt.Errorf("listen :%d: address already in use", port)
	}
	l := &memListener{h: h, port: port, q: make(chan memDatagram, 256), done: make(chan struct{})}
	h.listeners[port] = l
	return l, nil
}

// Dial makes a sender from local (or the host's first address of the
// peer's family) to peer:port.
func (h *memHost) Dial(local, peer netip.Addr, port int, ttl uint8) (PacketWriter, error) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	if !local.IsValid() {
		for _, a := range h.addrs {
			if a.Is4() == peer.Is4() {
				local = a
				break
			}
		}
	}
	if !h.owns(local) {
		return nil, fmt.Errorf("dial from %v: cannot assign requested address", local)
	}
	h.n.writers++
	return &memWriter{n: h.n, src: local, dst: peer, port: port, ttl: ttl}, nil
}

type memListener struct {
	h    *memHost
	port int
	q    chan memDatagram
	done chan struct{}
	once sync.Once
}

func (l *memListener) Read(b []byte) (int, netip.Addr, netip.Addr, uint8, error) {
	select {
	case d := <-l.q:
		return copy(b, d.b[:d.n]), d.src, d.dst, d.ttl, nil
	case <-l.done:
		return 0, netip.Addr{}, netip.Addr{}, 0, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		l.h.n.mu.Lock()
		delete(l.h.listeners, l.port)
		l.h.n.mu.Unlock()
		close(l.done)
	})
	return nil
}

type memWriter struct {
	n        *memNet
	src, dst netip.Addr
	port     int
	ttl      uint8
	mu       sync.Mutex
	closed   bool
}

var errMemClosed = errors.New("mem: sender closed")

func (w *memWriter) Write(b []byte) error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return errMemClosed
	}
	w.n.deliver(w.src, w.dst, w.port, w.ttl, b)
	return nil
}

func (w *memWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		w.n.mu.Lock()
		w.n.writers--
		w.n.mu.Unlock()
	}
	return nil
}
