package health

// The listen check asks the kernel for listening sockets over
// NETLINK_SOCK_DIAG (linux/inet_diag.h) itself, and is the one netlink user
// outside hostaddr/, for three reasons: vishvananda/netlink's socket
// queries (SocketGet; SocketDiagTCP, SocketDiagUDP) find one socket by its
// full 4-tuple or dump every socket, while a listen check needs "any
// listener on this port", which only the kernel's bytecode filter
// (INET_DIAG_BC_S_GE/LE) answers without dumping every connection of a busy
// server; it polls every fast_interval on thousands of checks, so it reuses
// a few sockets (diagPool) and buffers instead of a handle per query, and
// answers a burst of misses from one dump (listenTable); and it must not
// pull netlink's route and link code into health/.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	afInet  = unix.AF_INET
	afInet6 = unix.AF_INET6
)

// sock_diag (linux/inet_diag.h) constants that x/sys/unix lacks.
const (
	inetDiagReqBytecode = 1  // INET_DIAG_REQ_BYTECODE
	inetDiagBCSGE       = 2  // INET_DIAG_BC_S_GE
	inetDiagBCSLE       = 3  // INET_DIAG_BC_S_LE
	inetDiagSKV6Only    = 11 // INET_DIAG_SKV6ONLY
	tcpListen           = 10 // TCP_LISTEN
	tcpClose            = 7  // TCP_CLOSE: a bound, unconnected UDP socket

	nlmsgHdrLen      = 16
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	bytecodeLen      = 16 // S_GE port, S_LE port
	diagRequestLen   = nlmsgHdrLen + inetDiagReqLen + 4 + bytecodeLen
	lookupRequestLen = nlmsgHdrLen + inetDiagReqLen
	diagRecvBufBytes = 32 << 10 // netlink dumps fill at most 32 KiB per read
)

// diagBufs holds receive buffers, shared by all listen checks.
var diagBufs = sync.Pool{New: func() any { return new([diagRecvBufBytes]byte) }}

// diagConn is a NETLINK_SOCK_DIAG socket, opened on first use. It is used by
// one goroutine at a time.
type diagConn struct {
	fd  int  // the socket, while ok
	ok  bool // open
	seq uint32
	req [diagRequestLen]byte
}

func (d *diagConn) open() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return os.NewSyscallError("socket(NETLINK_SOCK_DIAG)", err)
	}
	// The kernel answers at once; the timeout only bounds a misbehaving one.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("setsockopt(SO_RCVTIMEO)", err)
	}
	d.fd, d.ok = fd, true
	return nil
}

func (d *diagConn) close() error {
	if !d.ok {
		return nil
	}
	d.ok = false
	return unix.Close(d.fd)
}

// lookup asks the kernel for the socket that would take a connection (tcp)
// or a datagram (udp) to addr:port: the socket lookup of the receive path,
// in O(1). addr is 4 (family afInet) or 16 bytes. It reports false on any
// error: the slow path (dump) tells why.
func (d *diagConn) lookup(fam uint8, udp bool, addr []byte, port uint16) bool {
	if !d.ok {
		if err := d.open(); err != nil {
			return false
		}
	}
	d.seq++
	b := d.req[:lookupRequestLen]
	clear(d.req[:])
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], lookupRequestLen)
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], d.seq)
	r := b[nlmsgHdrLen:]
	r[0], r[1] = fam, unix.IPPROTO_TCP
	id := r[8:] // struct inet_diag_sockid: sport, dport, src[16], dst[16], if, cookie[2]
	if udp {
		// The local end goes into dport and dst: "src and dst are swapped
		// for historical reasons" (net/ipv4/udp_diag.c).
		r[1] = unix.IPPROTO_UDP
		binary.BigEndian.PutUint16(id[2:], port)
		copy(id[20:36], addr)
	} else {
		binary.BigEndian.PutUint16(id[0:], port)
		copy(id[4:20], addr)
	}
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], ^uint32(0))
	if _, err := unix.Write(d.fd, b); err != nil {
		d.close()
		return false
	}
	buf := diagBufs.Get().(*[diagRecvBufBytes]byte)
	defer diagBufs.Put(buf)
	for {
		n, err := d.recv(buf[:])
		if err != nil {
			d.close()
			return false
		}
		found := false
		// A lookup answers with one message, or with an error (ENOENT: no
		// such socket), and no NLMSG_DONE.
		done, err := d.walk(buf[:n], func([]byte) { found = true })
		if found || done || err != nil {
			return found
		}
	}
}

// dump dumps the sockets of family fam and protocol tcp (listening) or udp
// (bound, unconnected), on port alone if port is 0..65535 (a bytecode
// filter in the kernel), else every one, calling visit with each socket's
// family, local port, bound address (4 or 16 bytes) and, for IPv6, whether
// it is IPV6_V6ONLY, until visit returns true. The rest of the dump is then
// read and skipped.
func (d *diagConn) dump(fam uint8, udp bool, port int, visit func(fam uint8, port uint16, src []byte, v6only bool) bool) error {
	if !d.ok {
		if err := d.open(); err != nil {
			return err
		}
	}
	d.seq++
	if _, err := unix.Write(d.fd, d.buildRequest(fam, udp, port)); err != nil {
		d.close() // a fresh socket next time
		return os.NewSyscallError("sendmsg(sock_diag)", err)
	}
	buf := diagBufs.Get().(*[diagRecvBufBytes]byte)
	defer diagBufs.Put(buf)
	stopped := false
	for {
		n, err := d.recv(buf[:])
		if err != nil {
			d.close()
			return err
		}
		done, err := d.walk(buf[:n], func(msg []byte) {
			if !stopped {
				stopped = visitSock(msg, visit)
			}
		})
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				proto := "tcp"
				if udp {
					proto = "udp"
				}
				return fmt.Errorf("sock_diag for %s is not available (kernel module %s_diag?): %w", proto, proto, err)
			}
			return err
		}
		if done {
			return nil
		}
	}
}

// buildRequest fills d.req and returns the request: a dump of
// inet_diag_req_v2 for fam/protocol in the state wanted, with bytecode that
// keeps only sockets whose local port is port if port is 0..65535.
func (d *diagConn) buildRequest(fam uint8, udp bool, port int) []byte {
	filter := port >= 0 && port <= 0xffff
	b := d.req[:]
	if !filter {
		b = d.req[:lookupRequestLen]
	}
	clear(d.req[:])
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], d.seq)
	r := b[nlmsgHdrLen:]
	r[0], r[1] = fam, unix.IPPROTO_TCP
	states := uint32(1) << tcpListen
	if udp {
		r[1], states = unix.IPPROTO_UDP, uint32(1)<<tcpClose
	}
	ne.PutUint32(r[4:], states)
	if !filter {
		return b
	}
	a := r[inetDiagReqLen:]
	ne.PutUint16(a[0:], 4+bytecodeLen)
	ne.PutUint16(a[2:], inetDiagReqBytecode)
	// struct inet_diag_bc_op {u8 code; u8 yes; u16 no}; a port comparison
	// is followed by an op holding the port in no. "yes" steps to the next
	// comparison; "no" jumps 4 bytes past the end, which rejects.
	bc := a[4:]
	bc[0], bc[1] = inetDiagBCSGE, 8
	ne.PutUint16(bc[2:], bytecodeLen+4)
	ne.PutUint16(bc[6:], uint16(port))
	bc[8], bc[9] = inetDiagBCSLE, 8
	ne.PutUint16(bc[10:], 8+4)
	ne.PutUint16(bc[14:], uint16(port))
	return b
}

// recv reads one datagram into buf, failing if it did not fit.
func (d *diagConn) recv(buf []byte) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(d.fd), uintptr(unsafe.Pointer(&buf[0])),
			uintptr(len(buf)), unix.MSG_TRUNC, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return 0, errors.New("sock_diag: no answer from the kernel")
		case errno != 0:
			return 0, os.NewSyscallError("recvfrom(sock_diag)", errno)
		case int(n) > len(buf):
			return 0, fmt.Errorf("sock_diag: message of %d bytes truncated", n)
		}
		return int(n), nil
	}
}

// walk walks the netlink messages in b of the current request, calling
// sock with each socket's inet_diag_msg and its attributes. done is true
// once the dump has ended (or a lookup failed).
func (d *diagConn) walk(b []byte, sock func(msg []byte)) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return false, errors.New("sock_diag: malformed message")
		}
		typ, seq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
		msg := b[nlmsgHdrLen:l]
		b = b[min((l+3)&^3, len(b)):]
		if seq != d.seq {
			continue // left over from an earlier, aborted dump
		}
		switch typ {
		case unix.NLMSG_DONE:
			if len(msg) >= 4 {
				if e := int32(ne.Uint32(msg)); e < 0 {
					return true, unix.Errno(-e)
				}
			}
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if e := int32(ne.Uint32(msg)); e < 0 {
					return true, unix.Errno(-e)
				}
			}
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(msg) >= inetDiagMsgLen {
				sock(msg)
			}
		}
	}
	return false, nil
}

// visitSock calls visit with the family, local port, bound address (4 or
// 16 bytes) and IPV6_V6ONLY of the socket in msg, an inet_diag_msg and its
// attributes, and returns what visit returns.
func visitSock(msg []byte, visit func(fam uint8, port uint16, src []byte, v6only bool) bool) bool {
	fam := msg[0]
	port := binary.BigEndian.Uint16(msg[4:]) // id.idiag_sport
	src := msg[8:24]                         // id.idiag_src, after sport and dport
	if fam == afInet {
		src = src[:4]
	}
	return visit(fam, port, src, v6only(msg[inetDiagMsgLen:]))
}

// v6only reads INET_DIAG_SKV6ONLY from the attributes of an inet_diag_msg.
func v6only(attrs []byte) bool {
	ne := binary.NativeEndian
	for len(attrs) >= 4 {
		l := int(ne.Uint16(attrs[0:]))
		if l < 4 || l > len(attrs) {
			return false
		}
		if ne.Uint16(attrs[2:]) == inetDiagSKV6Only && l >= 5 {
			return attrs[4] != 0
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return false
}
