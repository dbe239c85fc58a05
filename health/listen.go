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
// (sock_diag, over a few netlink sockets all listen checks share: diagPool)
// in the daemon's network namespace, opens no connection, and allocates
// nothing per probe. No such socket is a definite failure. Only
// the runner's goroutine calls Check; Close once the runner has stopped.
//
// Every probe reads the kernel's table as it is when the probe runs, never
// an earlier reading: a listener closed before a probe starts fails that
// probe. See Check for how.
type listenChecker struct {
	addr     netip.Addr // zero: any
	port     uint16
	udp      bool
	families []uint8      // address families to ask about
	missing  error        // the failure when no socket matches
	table    *listenTable // shared with the other checks of the protocol
	closed   bool
	// lookupFam and lookupAddr[:lookupLen]: the exact lookup of the fast
	// path. With no address, the wildcard, then the address of the socket
	// the slow path last found.
	lookupFam  uint8
	lookupLen  int
	lookupAddr [16]byte
}

func newListenChecker(c config.ListenCheck) *listenChecker {
	l := &listenChecker{addr: c.Addr, port: c.Port, udp: c.Protocol == "udp"}
	switch {
	case !l.addr.IsValid():
		l.families = []uint8{afInet, afInet6}
		l.lookupFam, l.lookupLen = afInet, 4 // 0.0.0.0 or dual-stack [::]
	case l.addr.Is4():
		l.families = []uint8{afInet, afInet6} // [::] sockets also take IPv4
		a := l.addr.As4()
		l.lookupFam, l.lookupLen = afInet, copy(l.lookupAddr[:], a[:])
	default:
		l.families = []uint8{afInet6}
		a := l.addr.As16()
		l.lookupFam, l.lookupLen = afInet6, copy(l.lookupAddr[:], a[:])
	}
	what, where := "tcp listener", "port "+strconv.Itoa(int(l.port))
	if l.udp {
		what = "udp socket"
	}
	if l.addr.IsValid() {
		where = netip.AddrPortFrom(l.addr, l.port).String()
	}
	l.missing = Definite(fmt.Errorf("no %s on %s", what, where))
	l.table = tableFor(l.udp)
	l.table.acquire()
	listenDiag.acquire()
	return l
}

// Check implements Checker.
//
// The fast path asks the kernel for the one socket that would take a
// connection to the address and port (for no address, the wildcard, or the
// address of the socket found last time): a lookup in the kernel's hash
// tables, about as cheap as a system call gets, whatever the size of the
// socket table. Only when it finds nothing (the listener is gone, is bound
// to another address or to a device, or a check of a port alone has not
// yet found it) does the slow path read every socket on the port: with
// dumps filtered to the port when this probe is the only one in the slow
// path, from the shared table (listenTable) when others are there too.
func (l *listenChecker) Check(ctx context.Context) error {
	if l.lookupFam != 0 {
		d := listenDiag.get()
		ok := d.lookup(l.lookupFam, l.udp, l.lookupAddr[:l.lookupLen], l.port)
		listenDiag.put(d)
		if ok {
			return nil
		}
	}
	found, err := l.slow()
	if err != nil {
		return fmt.Errorf("%w: reading the socket table: %w", ErrCannotRun, err)
	}
	if !found {
		return l.missing
	}
	return nil
}

// slow reads every socket on the port; see Check. For a check of a port
// alone it remembers the socket found, for the fast path of the next probe.
func (l *listenChecker) slow() (bool, error) {
	var hit listenSock
	found := false
	var err error
	if l.table.enterSlow() {
		found, err = l.table.find(l.port, l.matches, &hit)
	} else {
		d := listenDiag.get()
		for _, fam := range l.families {
			err = d.dump(fam, l.udp, int(l.port), func(fam uint8, _ uint16, src []byte, v6only bool) bool {
				if l.matches(fam, src, v6only) {
					found, hit.fam = true, fam
					copy(hit.addr[:], src)
				}
				return found
			})
			if err != nil || found {
				break
			}
		}
		listenDiag.put(d)
	}
	l.table.leaveSlow()
	if found && !l.addr.IsValid() {
		l.lookupFam, l.lookupLen = hit.fam, copy(l.lookupAddr[:], hit.src())
	}
	return found, err
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
func (l *listenChecker) Close() error {
	if !l.closed {
		l.closed = true
		l.table.release()
		listenDiag.release()
	}
	return nil
}
