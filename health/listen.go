package health

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/anycastd/anycastd/config"
)

// listenChecker passes while the kernel's socket table has a listening TCP
// socket (for udp: a bound, unconnected UDP socket) on the port that accepts
// connections to the address: one bound to the address itself or to its
// family's wildcard (for an IPv4 address also a dual-stack [::] socket);
// with no address, any socket on the port. It reads the table over netlink
// (sock_diag, filtered in the kernel by state and port) in the daemon's
// network namespace, opens no connection, and allocates nothing per probe.
// No such socket is a definite failure. Only the runner's goroutine calls
// Check; Close once the runner has stopped.
type listenChecker struct {
	addr     netip.Addr // zero: any
	port     uint16
	udp      bool
	families []uint8 // address families to ask about
	missing  error   // the failure when no socket matches
	diag     diagConn
	// lookupFam and lookupAddr: the exact lookup of the fast path.
	lookupFam  uint8
	lookupAddr []byte
}

func newListenChecker(c config.ListenCheck) *listenChecker {
	l := &listenChecker{addr: c.Addr, port: c.Port, udp: c.Protocol == "udp"}
	switch {
	case !l.addr.IsValid():
		l.families = []uint8{afInet, afInet6}
		l.lookupFam, l.lookupAddr = afInet, make([]byte, 4) // 0.0.0.0 or dual-stack [::]
	case l.addr.Is4():
		l.families = []uint8{afInet, afInet6} // [::] sockets also take IPv4
		a := l.addr.As4()
		l.lookupFam, l.lookupAddr = afInet, a[:]
	default:
		l.families = []uint8{afInet6}
		a := l.addr.As16()
		l.lookupFam, l.lookupAddr = afInet6, a[:]
	}
	what, where := "tcp listener", "port "+strconv.Itoa(int(l.port))
	if l.udp {
		what = "udp socket"
	}
	if l.addr.IsValid() {
		where = netip.AddrPortFrom(l.addr, l.port).String()
	}
	l.missing = Definite(fmt.Errorf("no %s on %s", what, where))
	return l
}

// Check implements Checker.
func (l *listenChecker) Check(ctx context.Context) error {
	// Fast path: the kernel's own lookup for the address (for no address,
	// a wildcard socket).
	if l.lookupFam != 0 && l.diag.lookup(l.lookupFam, l.udp, l.lookupAddr, l.port) {
		return nil
	}
	// Slow path: every socket on the port, filtered by the kernel, matched
	// here; it also says why the table cannot be read.
	for _, fam := range l.families {
		found, err := l.diag.find(fam, l.udp, l.port, l.matches)
		if err != nil {
			return fmt.Errorf("%w: reading the socket table: %w", ErrCannotRun, err)
		}
		if found {
			return nil
		}
	}
	return l.missing
}

// matches reports whether a socket of family fam bound to src (4 or 16
// bytes) takes connections to l's address.
func (l *listenChecker) matches(fam uint8, src []byte, v6only bool) bool {
	if !l.addr.IsValid() {
		return true
	}
	if fam == afInet {
		a := netip.AddrFrom4([4]byte(src[:4]))
		return l.addr.Is4() && (a == l.addr || a.IsUnspecified())
	}
	a := netip.AddrFrom16([16]byte(src[:16]))
	if l.addr.Is4() {
		return (a.IsUnspecified() && !v6only) || (a.Is4In6() && a.Unmap() == l.addr)
	}
	return a == l.addr || a.IsUnspecified()
}

// Close implements io.Closer.
func (l *listenChecker) Close() error { return l.diag.close() }
