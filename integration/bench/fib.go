package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FIBEvent is one change of a watched route in a namespace's main routing
// table, as the kernel announced it over rtnetlink.
type FIBEvent struct {
	Time   time.Time // when the watcher read the notification (see FIB)
	Delete bool      // RTM_DELROUTE; else RTM_NEWROUTE (added or replaced)
	Prefix netip.Prefix
	Count  int // watched routes present after this event
}

// FIB watches the kernel routing table (main table) of a network namespace
// through an rtnetlink socket subscribed to the IPv4 and IPv6 route groups,
// keeping every change to routes inside the watched ranges.
//
// Timing: a reader thread, locked to its OS thread and blocked in recvfrom
// on the socket, stamps each notification with the wall clock as soon as it
// returns. The kernel sends the notification while it applies zebra's
// change, so the stamp is late by the wake-up latency of that thread (tens
// of microseconds on an idle machine; up to a scheduler tick when both cores
// are busy). Netlink does not timestamp its messages. Several notifications
// read in one recvfrom share a stamp.
type FIB struct {
	fd     int
	ranges []netip.Prefix

	mu      sync.Mutex
	cond    *sync.Cond
	events  []FIBEvent
	present map[netip.Prefix]bool
	err     error // the reader failed (e.g. ENOBUFS: events were lost)
	closed  bool
	done    chan struct{}
}

// WatchFIB starts watching routes inside ranges in namespace ns (a name
// under /run/netns). It seeds the set of present routes from a dump.
func WatchFIB(ns string, ranges ...netip.Prefix) (*FIB, error) {
	var fd int
	err := inNamespace(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket in %s: %w", ns, err)
	}
	f := &FIB{fd: fd, ranges: ranges, present: map[netip.Prefix]bool{}, done: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	if err := f.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go f.read()
	return f, nil
}

func (f *FIB) setup() error {
	// Room for a burst of 10,000+ routes; root may exceed rmem_max.
	if err := unix.SetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		_ = unix.SetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<20)
	}
	// The reader wakes up now and then to notice Close.
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(f.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK,
		Groups: 1<<(unix.RTNLGRP_IPV4_ROUTE-1) | 1<<(unix.RTNLGRP_IPV6_ROUTE-1)}
	if err := unix.Bind(f.fd, sa); err != nil {
		return fmt.Errorf("binding rtnetlink socket: %w", err)
	}
	// Dump the current routes; the answers arrive as RTM_NEWROUTE on the
	// same socket, interleaved with notifications, which is harmless since
	// the set is keyed by prefix.
	req := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtMsg)
	hdr := (*unix.NlMsghdr)(unsafe.Pointer(&req[0]))
	hdr.Len = uint32(len(req))
	hdr.Type = unix.RTM_GETROUTE
	hdr.Flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	hdr.Seq = 1
	req[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	return unix.Sendto(f.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func (f *FIB) read() {
	defer close(f.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 1<<20)
	for {
		n, _, err := unix.Recvfrom(f.fd, buf, 0)
		now := time.Now()
		f.mu.Lock()
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			f.fail(fmt.Errorf("reading rtnetlink: %w", err))
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			f.fail(fmt.Errorf("parsing rtnetlink: %w", err))
			return
		}
		f.mu.Lock()
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWROUTE && m.Header.Type != unix.RTM_DELROUTE {
				continue
			}
			p, ok := routePrefix(m)
			if !ok || !f.watched(p) {
				continue
			}
			del := m.Header.Type == unix.RTM_DELROUTE
			if del {
				delete(f.present, p)
			} else {
				f.present[p] = true
			}
			f.events = append(f.events, FIBEvent{Time: now, Delete: del, Prefix: p, Count: len(f.present)})
		}
		f.cond.Broadcast()
		f.mu.Unlock()
	}
}

func (f *FIB) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *FIB) watched(p netip.Prefix) bool {
	for _, r := range f.ranges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// routePrefix returns the destination of a route message in the main table.
func routePrefix(m syscall.NetlinkMessage) (netip.Prefix, bool) {
	if len(m.Data) < unix.SizeofRtMsg {
		return netip.Prefix{}, false
	}
	rt := (*unix.RtMsg)(unsafe.Pointer(&m.Data[0]))
	table := uint32(rt.Table)
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return netip.Prefix{}, false
	}
	var dst []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			dst = a.Value
		case unix.RTA_TABLE:
			if len(a.Value) == 4 {
				table = binary.NativeEndian.Uint32(a.Value)
			}
		}
	}
	if table != unix.RT_TABLE_MAIN {
		return netip.Prefix{}, false
	}
	var addr netip.Addr
	switch {
	case rt.Family == unix.AF_INET && len(dst) == 4:
		addr = netip.AddrFrom4([4]byte(dst))
	case rt.Family == unix.AF_INET6 && len(dst) == 16:
		addr = netip.AddrFrom16([16]byte(dst))
	case dst == nil && rt.Dst_len == 0:
		return netip.Prefix{}, false // default route
	default:
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, int(rt.Dst_len)), true
}

// Mark returns the position after the last event so far; Wait* calls look
// at events from a mark on.
func (f *FIB) Mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// Count returns how many watched routes are present.
func (f *FIB) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.present)
}

// Wait returns the first event from mark on that satisfies match, waiting
// for it until ctx is done.
func (f *FIB) Wait(ctx context.Context, mark int, match func(FIBEvent) bool) (FIBEvent, error) {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := mark; ; {
		for ; i < len(f.events); i++ {
			if match(f.events[i]) {
				return f.events[i], nil
			}
		}
		if f.err != nil {
			return FIBEvent{}, f.err
		}
		if err := ctx.Err(); err != nil {
			return FIBEvent{}, err
		}
		f.cond.Wait()
	}
}

// WaitRoute waits for p to be deleted (del) or added from mark on.
func (f *FIB) WaitRoute(ctx context.Context, mark int, p netip.Prefix, del bool) (FIBEvent, error) {
	return f.Wait(ctx, mark, func(e FIBEvent) bool { return e.Prefix == p && e.Delete == del })
}

// WaitCount waits for the number of present watched routes to reach n.
func (f *FIB) WaitCount(ctx context.Context, mark, n int) (FIBEvent, error) {
	return f.Wait(ctx, mark, func(e FIBEvent) bool { return e.Count == n })
}

// Close stops the watcher.
func (f *FIB) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	<-f.done
	unix.Close(f.fd)
}

// inNamespace runs fn on an OS thread switched into network namespace ns;
// sockets fn creates stay in ns whatever thread uses them later.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Unlocked only once the thread is back in its own namespace;
		// otherwise it dies with this goroutine.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
