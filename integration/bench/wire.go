package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// WireEvent is a BGP UPDATE seen arriving at the router.
type WireEvent struct {
	Time      time.Time // the kernel's receive timestamp of the segment
	From      netip.Addr
	Withdrawn []netip.Prefix // IPv4 withdrawn routes
	Announced []netip.Prefix // IPv4 NLRI
}

// Wire captures the BGP UPDATEs the router receives on one interface, with
// an AF_PACKET socket and the kernel's receive timestamps (SO_TIMESTAMPNS):
// the moment anycastd's withdrawal is on the link, to split "anycastd" from
// "the router" in the withdrawal time. It only decodes what the withdrawal
// runs send: IPv4 UPDATEs that start in a segment and fit in it.
type Wire struct {
	fd int

	mu     sync.Mutex
	events []WireEvent
	err    error // why the capture stopped early
	closed bool
	done   chan struct{}
}

// WatchWire starts capturing on interface ifname of namespace ns.
func WatchWire(ns, ifname string) (*Wire, error) {
	var fd int
	err := inNamespace(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s in %s: %w", ifname, ns, err)
	}
	w := &Wire{fd: fd, done: make(chan struct{})}
	tv := unix.Timeval{Usec: 100_000}
	if err := errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20),
	); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go w.read()
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *Wire) read() {
	defer close(w.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := unix.Recvmsg(w.fd, buf, oob, 0)
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		ts := time.Now()
		if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range cmsgs {
				if c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS && len(c.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(c.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(c.Data[8:16]))
					ts = time.Unix(sec, nsec)
				}
			}
		}
		evs := parseFrame(buf[:n], ts)
		if len(evs) == 0 {
			continue
		}
		w.mu.Lock()
		w.events = append(w.events, evs...)
		w.mu.Unlock()
	}
}

// parseFrame decodes the BGP UPDATEs in an Ethernet frame carrying a TCP
// segment to port 179.
func parseFrame(b []byte, ts time.Time) []WireEvent {
	if len(b) < 14 {
		return nil
	}
	etype := binary.BigEndian.Uint16(b[12:14])
	b = b[14:]
	var src netip.Addr
	var tcp []byte
	switch etype {
	case 0x0800:
		if len(b) < 20 || b[9] != 6 {
			return nil
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total > len(b) || total < ihl {
			return nil
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		tcp = b[ihl:total]
	case 0x86dd:
		if len(b) < 40 || b[6] != 6 {
			return nil
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		if 40+plen > len(b) {
			return nil
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		tcp = b[40 : 40+plen]
	default:
		return nil
	}
	if len(tcp) < 20 || binary.BigEndian.Uint16(tcp[2:4]) != 179 {
		return nil
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return nil
	}
	var out []WireEvent
	for p := tcp[off:]; len(p) >= 19; {
		l := int(binary.BigEndian.Uint16(p[16:18]))
		if l < 19 || l > len(p) {
			break
		}
		if p[18] == 2 { // UPDATE
			if ev, ok := parseUpdate(p[19:l]); ok {
				ev.Time, ev.From = ts, src
				out = append(out, ev)
			}
		}
		p = p[l:]
	}
	return out
}

// parseUpdate decodes the IPv4 withdrawn routes and NLRI of an UPDATE body.
func parseUpdate(b []byte) (WireEvent, bool) {
	var ev WireEvent
	if len(b) < 4 {
		return ev, false
	}
	wl := int(binary.BigEndian.Uint16(b[0:2]))
	if 2+wl+2 > len(b) {
		return ev, false
	}
	var ok bool
	if ev.Withdrawn, ok = parsePrefixes(b[2 : 2+wl]); !ok {
		return ev, false
	}
	al := int(binary.BigEndian.Uint16(b[2+wl : 4+wl]))
	if 4+wl+al > len(b) {
		return ev, false
	}
	if ev.Announced, ok = parsePrefixes(b[4+wl+al:]); !ok {
		return ev, false
	}
	return ev, true
}

func parsePrefixes(b []byte) ([]netip.Prefix, bool) {
	var out []netip.Prefix
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > 32 || 1+n > len(b) {
			return nil, false
		}
		var a [4]byte
		copy(a[:], b[1:1+n])
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(a), bits))
		b = b[1+n:]
	}
	return out, true
}

// Mark returns the position after the last event so far.
func (w *Wire) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// Since returns the events from mark on, and the error that stopped the
// capture, if it stopped.
func (w *Wire) Since(mark int) ([]WireEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark > len(w.events) {
		return nil, w.err
	}
	return append([]WireEvent(nil), w.events[mark:]...), w.err
}

// Close stops the capture.
func (w *Wire) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	<-w.done
	unix.Close(w.fd)
}
