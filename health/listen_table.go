package health

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// listenSock is one socket of a listenTable.
type listenSock struct {
	addr   [16]byte // bound address: 4 bytes for afInet, 16 for afInet6
	port   uint16
	fam    uint8
	v6only bool
}

// src returns s's bound address: 4 or 16 bytes.
func (s *listenSock) src() []byte {
	if s.fam == afInet {
		return s.addr[:4]
	}
	return s.addr[:]
}

// listenTable is the shared table of one protocol's listening TCP sockets
// (for udp: bound, unconnected UDP sockets), IPv4 and IPv6, read with one
// sock_diag dump per family and shared by the listen checks whose exact
// lookup missed (listenChecker.Check's slow path) while several of them are
// in that path at once: a burst of failing checks, or many checks of a port
// alone starting together, cost one dump, not one or two filtered dumps
// each.
//
// A probe is never answered from a dump that started before the probe asked
// (single flight, "started after I arrived"): the first probe to ask while
// no dump runs starts one at once; probes that ask while a dump runs wait
// for the next one, which the first of them starts as soon as the running
// one ends, and all of them share its result. So a listener closed before a
// probe starts is gone from the table that answers it.
//
// Waiting does not follow the probe's context: a dump takes well under a
// millisecond with a few hundred sockets and a few with 10,000
// (SO_RCVTIMEO bounds a kernel that does not answer at 1 s); a probe that
// returns after its timeout is recorded as a timeout by the Runner.
type listenTable struct {
	udp bool
	// sharedMin, set by tests, replaces sharedMinFor.
	sharedMin int32

	// slow counts the probes in the slow path now (see listenChecker.Check),
	// to tell a lone one from a burst; burst is how many make one
	// (sharedMinFor the last table's size).
	slow, burst atomic.Int32

	mu      sync.Mutex
	cond    sync.Cond // on mu: a dump has finished
	started uint64    // dumps started
	done    uint64    // the dump socks and err are from; dumps end in order
	running bool      // a dump is running (started > done)
	socks   []listenSock
	err     error
	spare   []listenSock // the buffer the next dump fills; reused
	diag    diagConn     // only used by the probe running a dump
	users   int          // open checkers of this protocol; the socket is closed at 0
	waiting int          // probes waiting for a dump, for tests
	// dumped, when set (tests), is called by a dump once it has read the
	// kernel's table and before it publishes it, without t.mu held.
	dumped func()
}

// listenTables are the shared tables: TCP and UDP.
var listenTables = [2]*listenTable{newListenTable(false), newListenTable(true)}

func newListenTable(udp bool) *listenTable {
	t := &listenTable{udp: udp}
	t.cond.L = &t.mu
	t.burst.Store(sharedMinFor(0))
	return t
}

// tableFor returns the shared table of tcp or udp.
func tableFor(udp bool) *listenTable {
	if udp {
		return listenTables[1]
	}
	return listenTables[0]
}

// sharedMinFor returns how many probes must be in the slow path at once
// (the asking one included) for a probe to be answered from the shared
// table rather than by dumps of its own port, with socks sockets in the
// last table: about how many probes one full dump must serve to cost no
// more than a filtered dump each. Both make the kernel walk its whole hash
// of listening (for udp: all) sockets, about 35 µs here whatever it holds;
// a full dump also formats and passes every socket, about 0.65 µs each,
// against 0.045 µs to filter one out (2-core VM, Linux 6.18: 100 listeners
// cost 107 µs a full dump and 32 µs a filtered one; 10,000 cost 6.5 ms and
// 0.47 ms). So 2 or 3 probes with a few hundred sockets, 14 with 10,000.
func sharedMinFor(socks int) int32 {
	full, filtered := 35_000+650*socks, 35_000+45*socks // ns
	return int32(max(2, (full+filtered-1)/filtered))
}

// acquire and release count the open checkers of the table's protocol.
func (t *listenTable) acquire() {
	t.mu.Lock()
	t.users++
	t.mu.Unlock()
}

func (t *listenTable) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users--
	if t.users <= 0 && !t.running {
		t.users = 0
		_ = t.diag.close()
		t.socks, t.spare = nil, nil // don't keep a large table for nothing
	}
}

// enterSlow counts a probe into the slow path until leaveSlow, and reports
// whether it should ask the shared table (find) rather than dump its port.
func (t *listenTable) enterSlow() bool {
	n := t.slow.Add(1)
	if t.sharedMin > 0 {
		return n >= t.sharedMin
	}
	return n >= t.burst.Load()
}

// leaveSlow counts a probe out of the slow path.
func (t *listenTable) leaveSlow() { t.slow.Add(-1) }

// find reports whether a socket on port in a dump that started after find
// was called makes match true; its family and address are then in *hit.
// err is why the table could not be read.
func (t *listenTable) find(port uint16, match func(fam uint8, src []byte, v6only bool) bool, hit *listenSock) (found bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := t.started + 1 // the first dump to start from now on
	for t.done < want {
		if t.running {
			t.waiting++
			t.cond.Wait()
			t.waiting--
			continue
		}
		t.dumpLocked()
	}
	if t.err != nil {
		return false, t.err
	}
	i, _ := slices.BinarySearchFunc(t.socks, port, func(s listenSock, p uint16) int { return cmp.Compare(s.port, p) })
	for ; i < len(t.socks) && t.socks[i].port == port; i++ {
		s := &t.socks[i]
		if match(s.fam, s.src(), s.v6only) {
			*hit = *s
			return true, nil
		}
	}
	return false, nil
}

// dumpLocked runs one dump, with t.mu held on entry and on return but not
// during the dump, publishes it and wakes the probes waiting for it.
func (t *listenTable) dumpLocked() {
	t.running = true
	t.started++
	n := t.started
	buf := t.spare[:0]
	t.mu.Unlock()

	var err error
	for _, fam := range [2]uint8{afInet, afInet6} {
		err = t.diag.dump(fam, t.udp, -1, func(fam uint8, port uint16, src []byte, v6only bool) bool {
			s := listenSock{port: port, fam: fam, v6only: v6only}
			copy(s.addr[:], src)
			buf = append(buf, s)
			return false
		})
		if err != nil {
			break
		}
	}
	slices.SortFunc(buf, func(a, b listenSock) int { return cmp.Compare(a.port, b.port) })
	if t.dumped != nil {
		t.dumped()
	}

	t.mu.Lock()
	t.spare, t.socks, t.err = t.socks, buf, err
	t.done, t.running = n, false
	t.burst.Store(sharedMinFor(len(buf)))
	if t.users <= 0 {
		_ = t.diag.close()
	}
	t.cond.Broadcast()
}
