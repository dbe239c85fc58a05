package bfd

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The packet loop: one goroutine (run) owns every Session, the deadline
// heap and the one timer; one goroutine per listener reads, checks and
// decodes packets into a buffer of its own and hands them over by value
// on a fixed-size channel; a third kind, the notifier, calls OnChange. No
// step of the loop allocates per packet, and nothing in it waits on the
// consumer of the changes.

// PacketReader is what the Manager reads Control packets from: the
// Listener of conn_linux.go, or an in-memory one in tests. Read copies
// the next UDP payload into b and gives its source and destination
// address and its TTL or hop limit; after Close it returns net.ErrClosed.
type PacketReader interface {
	Read(b []byte) (n int, src, dst netip.Addr, ttl uint8, err error)
	Close() error
}

// PacketWriter sends the Control packets of one session (the Sender of
// conn_linux.go): Write sends b to the peer, without blocking for long.
type PacketWriter interface {
	Write(b []byte) error
	Close() error
}

// Transport opens the sockets: Listen(port) receives on port
// (PortSingleHop or PortMultihop) over IPv4 and IPv6; Dial(local, peer,
// port, ttl) makes the sender of one session (local may be the zero Addr:
// the kernel chooses), sending with TTL or hop limit ttl.
type Transport interface {
	Listen(port int) (PacketReader, error)
	Dial(local, peer netip.Addr, port int, ttl uint8) (PacketWriter, error)
}

// OSTransport is the Transport of the kernel's UDP sockets (Listen and
// Dial of conn_linux.go). Addrs are the addresses to listen on; none: the
// wildcard addresses of IPv4 and IPv6.
type OSTransport struct {
	Addrs []netip.Addr
}

// Listen opens a Listener on port.
func (t OSTransport) Listen(port int) (PacketReader, error) {
	l, err := Listen(port, t.Addrs...)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Dial opens a Sender.
func (t OSTransport) Dial(local, peer netip.Addr, port int, ttl uint8) (PacketWriter, error) {
	s, err := Dial(local, peer, port, ttl)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// String gives the key as "PEER[ from LOCAL][ multihop]".
func (k PeerKey) String() string {
	s := k.Peer.String()
	if k.Local.IsValid() {
		s += " from " + k.Local.String()
	}
	if k.Multihop {
		s += " multihop"
	}
	return s
}

// match is k as packets are matched against: unmapped, without zones.
func (k PeerKey) match() PeerKey {
	return PeerKey{Peer: k.Peer.Unmap().WithZone(""), Local: k.Local.Unmap().WithZone(""), Multihop: k.Multihop}
}

// SessionStatus is a snapshot of one session, for `anycastctl peers` and
// metrics.
type SessionStatus struct {
	Key         PeerKey
	Config      Config // as in force, defaults applied
	TTL         uint8  // TTL or hop limit sent: 255, or the multihop TTL
	State       State
	Diag        Diag
	RemoteState State
	RemoteDiag  Diag
	LocalDiscr  uint32
	RemoteDiscr uint32 // 0 until the peer is heard
	// TxInterval is the negotiated transmit interval before jitter,
	// DetectTime the negotiated Detection Time (0 until the peer is heard).
	TxInterval, DetectTime time.Duration
	Polling                bool      // a Poll Sequence (timer change) is running
	Since                  time.Time // the last state change, or when the session was added
	Removing               bool      // Remove was called: AdminDown until it goes
	PacketsIn, PacketsOut  uint64
	// Err is the last error of the transport for this session (opening
	// its listener or sender, or sending), nil once that works again.
	Err error
}

// Stats counts what the packet loop dropped and why, over the Manager's
// life.
type Stats struct {
	Received       uint64 // packets handed to a session
	Malformed      uint64 // failed Unmarshal's checks (RFC 5880 §6.8.6)
	BadTTL         uint64 // single hop with TTL or hop limit not 255 (RFC 5881 §5)
	NoSession      uint64 // no session for the discriminator or addresses
	Overflow       uint64 // the loop was behind: dropped between reader and loop
	ReadErrors     uint64 // receive errors of the listeners
	SendErrors     uint64 // Write errors
	ChangesDropped uint64 // changes dropped for a consumer that does not keep up
}

// Tunables of the Manager.
const (
	// rxQueueLen is how many decoded packets may wait for the loop.
	rxQueueLen = 512
	// maxQueuedChanges bounds the changes waiting for OnChange; beyond it
	// the oldest is dropped (and counted), so a consumer that is stuck
	// cannot make the daemon grow without bound.
	maxQueuedChanges = 4096
	// retryInterval is how often a listener or sender that failed to
	// open is tried again.
	retryInterval = time.Second
	// readBufLen holds any Control packet (Length is one byte) and more.
	readBufLen = 512
)

// rxItem is one received packet on its way from a reader to the loop.
type rxItem struct {
	p        Packet
	src, dst netip.Addr
	multihop bool
}

// entry is a session with its sender and place in the deadline heap.
type entry struct {
	key, mkey PeerKey // as given; as matched
	s         *Session
	ttl       uint8
	w         PacketWriter // nil until Dial works
	dialAt    time.Time    // next Dial attempt while w is nil
	err       error
	added     time.Time
	removing  bool
	removeAt  time.Time
	in, out   uint64
	due       time.Time // earliest of the above deadlines; zero: none
	index     int       // in the heap
}

// earliest gives the earlier of two times, a zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (e *entry) nextDue() time.Time {
	d := earliest(e.s.NextTx(), e.s.DetectDeadline())
	if e.removing {
		d = earliest(d, e.removeAt)
	}
	if e.w == nil {
		d = earliest(d, e.dialAt)
	}
	return d
}

// deadlines is a min-heap of entries by due, zero (none) last.
type deadlines []*entry

func (h deadlines) Len() int { return len(h) }
func (h deadlines) Less(i, j int) bool {
	a, b := h[i].due, h[j].due
	return !a.IsZero() && (b.IsZero() || a.Before(b))
}
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *deadlines) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *deadlines) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// listener is one listening port (single hop or multihop).
type listener struct {
	r       PacketReader // nil until Listen works
	err     error
	retryAt time.Time
}

// Manager runs BFD sessions: one goroutine owns the sessions and their
// timers, one per listener reads packets. A received packet goes to the
// session of its Your Discriminator, or, when that is 0 (§6.8.6), to the
// session of its source and destination address (or of its source only,
// for a session without a local address). Single-hop packets with a TTL
// or hop limit other than 255 are dropped (RFC 5881 §5); multihop ones
// are not checked (RFC 5883 §2 leaves it open, and BIRD sends them with
// the default TTL). Packets are matched to a PeerKey without IPv6 zones.
// Every state change is given to OnChange on a goroutine
// of its own, in order, through a queue (at most maxQueuedChanges, 4096;
// beyond that the oldest are dropped and counted in Stats): a slow
// consumer never holds up the packets.
type Manager struct {
	t        Transport
	onChange func(Change)

	rx   chan rxItem
	cmds chan func(now time.Time)
	done chan struct{} // closed by Close
	once sync.Once
	wg   sync.WaitGroup // run and the readers

	// Owned by run.
	byDiscr   map[uint32]*entry
	byKey     map[PeerKey]*entry // by PeerKey.match()
	heap      deadlines
	listeners [2]listener // single hop, multihop
	rnd       *rand.Rand
	pkt       Packet
	buf       [HeaderLen]byte
	timer     *time.Timer
	armed     time.Time

	// The notifier's queue.
	nmu     sync.Mutex
	queue   []Change
	nsig    chan struct{} // capacity 1: something was queued
	ndone   chan struct{} // closed after run has stopped
	nexited chan struct{}

	stats struct {
		received, malformed, badTTL, noSession, overflow, readErrors, sendErrors, changesDropped atomic.Uint64
	}
}

// NewManager starts a Manager on t. onChange (may be nil) is called for
// every state change of every session, one call at a time, in order, from
// a goroutine of the Manager's (not the packet loop): it may take its
// time, and may call Set, Remove and Sessions, but not Close.
func NewManager(t Transport, onChange func(Change)) *Manager {
	m := &Manager{
		t:        t,
		onChange: onChange,
		rx:       make(chan rxItem, rxQueueLen),
		cmds:     make(chan func(time.Time)),
		done:     make(chan struct{}),
		byDiscr:  map[uint32]*entry{},
		byKey:    map[PeerKey]*entry{},
		rnd:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		timer:    time.NewTimer(time.Hour),
		nsig:     make(chan struct{}, 1),
		ndone:    make(chan struct{}),
		nexited:  make(chan struct{}),
	}
	m.timer.Stop()
	m.wg.Add(1)
	go m.run()
	go m.notifier()
	return m
}

// do runs f on the loop and waits for it; false if the Manager is closed.
func (m *Manager) do(f func(now time.Time)) bool {
	finished := make(chan struct{})
	select {
	case m.cmds <- func(now time.Time) { f(now); close(finished) }:
		<-finished
		return true
	case <-m.done:
		return false
	}
}

// Set adds the session key with cfg, or changes the timers of an existing
// one (a Poll Sequence when Up, RFC 5880 §6.8.3: a reload never takes a
// healthy session down). multihopTTL is the TTL or hop limit a multihop
// session sends with (0: 255); single hop always sends 255. A new session
// sends its first packet at once. A session being removed is taken back.
// Errors of the transport (a port taken, a local address not there yet)
// do not fail Set: they show in SessionStatus.Err and the Manager tries
// again every second.
func (m *Manager) Set(key PeerKey, cfg Config, multihopTTL uint8) {
	m.do(func(now time.Time) { m.set(key, cfg, multihopTTL, now) })
}

// Remove takes the session key to AdminDown (Diag 7), so the peer learns
// it is not a failure (RFC 5880 §6.8.16): the first AdminDown packet is
// sent before Remove returns (so Remove of every session, then Close, is
// a stop the peers hear of), and it goes on sending that for the peer's
// Detection Time of us (DetectMult × 1 s, since a session not Up sends at
// most every second), then drops the session; at once if the peer was
// never heard (or not since its last expiry). No Change is given for it.
func (m *Manager) Remove(key PeerKey) {
	m.do(func(now time.Time) { m.remove(key, now) })
}

// Sessions gives a snapshot of every session, ordered by peer, local
// address, single hop first.
func (m *Manager) Sessions() []SessionStatus {
	var out []SessionStatus
	m.do(func(time.Time) {
		out = make([]SessionStatus, 0, len(m.byKey))
		for _, e := range m.byKey {
			out = append(out, m.status(e))
		}
	})
	slices.SortFunc(out, func(a, b SessionStatus) int {
		return cmp.Or(a.Key.Peer.Compare(b.Key.Peer), a.Key.Local.Compare(b.Key.Local), boolCmp(a.Key.Multihop, b.Key.Multihop))
	})
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Stats gives the Manager's counters.
func (m *Manager) Stats() Stats {
	s := &m.stats
	return Stats{
		Received: s.received.Load(), Malformed: s.malformed.Load(), BadTTL: s.badTTL.Load(),
		NoSession: s.noSession.Load(), Overflow: s.overflow.Load(), ReadErrors: s.readErrors.Load(),
		SendErrors: s.sendErrors.Load(), ChangesDropped: s.changesDropped.Load(),
	}
}

// Close stops the Manager without a word to the peers (they see the
// sessions expire, as for a dead node; Remove first to tell them),
// closes its sockets, and returns once the changes queued before have
// been given to OnChange (so it waits for an OnChange that is running,
// and must not be called from one). Calling it again does nothing.
func (m *Manager) Close() {
	m.once.Do(func() {
		close(m.done)
		m.wg.Wait()
		close(m.ndone)
		<-m.nexited
	})
}

// run is the loop: packets, commands and the timer.
func (m *Manager) run() {
	defer m.wg.Done()
	for {
		select {
		case it := <-m.rx:
			m.receive(&it, time.Now())
		case f := <-m.cmds:
			f(time.Now())
		case <-m.timer.C:
			m.armed = time.Time{}
			m.onTimer(time.Now())
		case <-m.done:
			m.shutdown()
			return
		}
		m.rearm()
	}
}

// onTimer runs what is due at now. The packets that came in before the
// timer fired count first: a stall (a GC pause, a busy machine) that
// delays both must not expire a session whose packet is waiting.
func (m *Manager) onTimer(now time.Time) {
	for waiting := true; waiting; {
		select {
		case it := <-m.rx:
			m.receive(&it, now)
		default:
			waiting = false
		}
	}
	m.tick(now)
}

// rearm sets the timer to the earliest deadline.
func (m *Manager) rearm() {
	var next time.Time
	if len(m.heap) > 0 {
		next = m.heap[0].due
	}
	for i := range m.listeners {
		next = earliest(next, m.listeners[i].retryAt)
	}
	if next.Equal(m.armed) {
		return
	}
	m.armed = next
	if next.IsZero() {
		m.timer.Stop()
		return
	}
	m.timer.Reset(time.Until(next))
}

// tick runs everything due by now.
func (m *Manager) tick(now time.Time) {
	for i := range m.listeners {
		if at := m.listeners[i].retryAt; !at.IsZero() && !now.Before(at) {
			m.listen(i == 1, now)
		}
	}
	for len(m.heap) > 0 {
		e := m.heap[0]
		if e.due.IsZero() || now.Before(e.due) {
			return
		}
		if e.removing && !now.Before(e.removeAt) {
			m.drop(e)
			continue
		}
		from := e.s.State()
		if e.s.Expire(now) {
			m.notify(e, from, now, false)
		}
		if e.w == nil && !e.dialAt.IsZero() && !now.Before(e.dialAt) {
			m.dial(e, now)
		}
		if at := e.s.NextTx(); !at.IsZero() && !now.Before(at) {
			m.transmit(e, now, false)
		}
		m.fix(e)
	}
}

// fix puts e back in its place in the heap after its deadlines moved.
func (m *Manager) fix(e *entry) {
	e.due = e.nextDue()
	heap.Fix(&m.heap, e.index)
}

// receive hands a packet to its session (RFC 5880 §6.8.6 demux).
func (m *Manager) receive(it *rxItem, now time.Time) {
	var e *entry
	if d := it.p.YourDiscriminator; d != 0 {
		e = m.byDiscr[d]
		if e != nil && (e.key.Multihop != it.multihop || e.mkey.Peer != it.src) {
			e = nil
		}
	} else {
		k := PeerKey{Peer: it.src, Local: it.dst, Multihop: it.multihop}
		if e = m.byKey[k]; e == nil {
			k.Local = netip.Addr{}
			e = m.byKey[k]
		}
	}
	if e == nil {
		m.stats.noSession.Add(1)
		return
	}
	m.stats.received.Add(1)
	e.in++
	from, peerDiscr := e.s.State(), e.s.RemoteDiscr()
	changed, final := e.s.Receive(&it.p, now)
	if final {
		m.transmit(e, now, true)
	}
	if changed {
		m.notify(e, from, now, from == StateUp && peerDiscr != 0 && it.p.MyDiscriminator != peerDiscr)
	}
	m.fix(e)
}

// transmit sends e's next packet (a Final one if final).
func (m *Manager) transmit(e *entry, now time.Time, final bool) {
	e.s.Transmit(&m.pkt, now, final)
	n, err := m.pkt.Marshal(m.buf[:])
	if err != nil {
		// A Session only makes packets that marshal; this is a bug.
		e.err = fmt.Errorf("bfd: marshal: %w", err)
		return
	}
	if e.w == nil {
		return
	}
	if err := e.w.Write(m.buf[:n]); err != nil {
		m.stats.sendErrors.Add(1)
		e.err = err
		return
	}
	e.out++
	if e.err != nil {
		e.err = nil
	}
}

// set adds or updates a session.
func (m *Manager) set(key PeerKey, cfg Config, multihopTTL uint8, now time.Time) {
	ttl := uint8(SingleHopTTL)
	if key.Multihop && multihopTTL != 0 {
		ttl = multihopTTL
	}
	mkey := key.match()
	e := m.byKey[mkey]
	if e == nil {
		var discr uint32
		for discr == 0 || m.byDiscr[discr] != nil {
			discr = m.rnd.Uint32()
		}
		e = &entry{key: key, mkey: mkey, s: NewSession(cfg, discr, m.rnd.Float64), ttl: ttl, added: now}
		m.byKey[mkey] = e
		m.byDiscr[discr] = e
		heap.Push(&m.heap, e)
		m.listen(key.Multihop, now)
		m.dial(e, now)
		m.transmit(e, now, false)
		m.fix(e)
		return
	}
	if e.removing {
		e.removing, e.removeAt = false, time.Time{}
		e.s.SetAdminDown(false, now)
	}
	e.s.SetConfig(cfg, now)
	if ttl != e.ttl || e.key != key {
		// A new TTL, or a new zone for the same address: a new sender.
		e.ttl, e.key = ttl, key
		if e.w != nil {
			e.w.Close()
			e.w = nil
		}
		m.dial(e, now)
	}
	m.fix(e)
}

// remove starts taking a session away.
func (m *Manager) remove(key PeerKey, now time.Time) {
	e := m.byKey[key.match()]
	if e == nil || e.removing {
		return
	}
	if e.s.RemoteDiscr() == 0 {
		// Nobody heard from: nobody to tell.
		m.drop(e)
		return
	}
	e.s.SetAdminDown(true, now)
	m.transmit(e, now, false) // the first AdminDown before Remove returns
	tx, _ := e.s.Negotiated()
	if tx == 0 {
		tx = SlowTxInterval
	}
	// The peer's Detection Time of us: our multiplier × our interval.
	e.removing, e.removeAt = true, now.Add(time.Duration(e.s.Config().DetectMult)*tx)
	m.fix(e)
}

// drop takes a removed session away for good.
func (m *Manager) drop(e *entry) {
	heap.Remove(&m.heap, e.index)
	delete(m.byKey, e.mkey)
	delete(m.byDiscr, e.s.LocalDiscr())
	if e.w != nil {
		e.w.Close()
	}
	m.closeUnusedListeners()
}

// closeUnusedListeners closes a listener no session needs any more.
func (m *Manager) closeUnusedListeners() {
	var used [2]bool
	for _, e := range m.byKey {
		used[boolIndex(e.key.Multihop)] = true
	}
	for i := range m.listeners {
		if l := &m.listeners[i]; !used[i] {
			if l.r != nil {
				l.r.Close() // its reader sees net.ErrClosed and returns
			}
			*l = listener{}
		}
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listen opens the listener of single hop or multihop if it is not open.
func (m *Manager) listen(multihop bool, now time.Time) {
	l := &m.listeners[boolIndex(multihop)]
	if l.r != nil {
		return
	}
	port := PortSingleHop
	if multihop {
		port = PortMultihop
	}
	r, err := m.t.Listen(port)
	if err != nil {
		l.err, l.retryAt = err, now.Add(retryInterval)
		return
	}
	*l = listener{r: r}
	m.wg.Add(1)
	go m.read(r, multihop)
}

// dial opens e's sender, or schedules another try.
func (m *Manager) dial(e *entry, now time.Time) {
	port := PortSingleHop
	if e.key.Multihop {
		port = PortMultihop
	}
	w, err := m.t.Dial(e.key.Local, e.key.Peer, port, e.ttl)
	if err != nil {
		e.err, e.dialAt = err, now.Add(retryInterval)
		return
	}
	e.w, e.err, e.dialAt = w, nil, time.Time{}
}

// read is the goroutine of one listener: read, check the TTL, decode,
// hand over by value. Nothing is allocated per packet.
func (m *Manager) read(r PacketReader, multihop bool) {
	defer m.wg.Done()
	var buf [readBufLen]byte
	var it rxItem
	it.multihop = multihop
	for {
		n, src, dst, ttl, err := r.Read(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-m.done:
				return
			default:
			}
			m.stats.readErrors.Add(1)
			continue
		}
		if !multihop && ttl != SingleHopTTL {
			m.stats.badTTL.Add(1)
			continue
		}
		if err := Unmarshal(buf[:n], &it.p); err != nil {
			m.stats.malformed.Add(1)
			continue
		}
		it.src, it.dst = src.Unmap().WithZone(""), dst.Unmap().WithZone("")
		select {
		case m.rx <- it:
		default:
			m.stats.overflow.Add(1)
		}
	}
}

// shutdown closes every socket when the Manager stops.
func (m *Manager) shutdown() {
	m.timer.Stop()
	for i := range m.listeners {
		if r := m.listeners[i].r; r != nil {
			r.Close()
		}
	}
	for _, e := range m.byKey {
		if e.w != nil {
			e.w.Close()
		}
	}
}

// status is the snapshot of e.
func (m *Manager) status(e *entry) SessionStatus {
	s := e.s
	tx, detect := s.Negotiated()
	since := s.LastChange()
	if since.IsZero() {
		since = e.added
	}
	err := e.err
	if l := m.listeners[boolIndex(e.key.Multihop)]; l.err != nil && l.r == nil {
		err = fmt.Errorf("listen: %w", l.err)
	}
	return SessionStatus{
		Key: e.key, Config: s.Config(), TTL: e.ttl,
		State: s.State(), Diag: s.Diag(), RemoteState: s.RemoteState(), RemoteDiag: s.RemoteDiag(),
		LocalDiscr: s.LocalDiscr(), RemoteDiscr: s.RemoteDiscr(),
		TxInterval: tx, DetectTime: detect, Polling: s.Polling(),
		Since: since, Removing: e.removing, PacketsIn: e.in, PacketsOut: e.out, Err: err,
	}
}

// notify queues the change of e from from (unless e is being removed);
// peerNew: it came with a new session of the peer (Change.PeerNewSession).
func (m *Manager) notify(e *entry, from State, now time.Time, peerNew bool) {
	if m.onChange == nil || e.removing {
		return
	}
	c := Change{Key: e.key, From: from, To: e.s.State(), Diag: e.s.Diag(), Remote: e.s.RemoteState(),
		PeerNewSession: peerNew, Time: now}
	m.nmu.Lock()
	if len(m.queue) >= maxQueuedChanges {
		copy(m.queue, m.queue[1:])
		m.queue = m.queue[:len(m.queue)-1]
		m.stats.changesDropped.Add(1)
	}
	m.queue = append(m.queue, c)
	m.nmu.Unlock()
	select {
	case m.nsig <- struct{}{}:
	default:
	}
}

// notifier calls OnChange for the queued changes, in order.
func (m *Manager) notifier() {
	defer close(m.nexited)
	var batch []Change
	for {
		stop := false
		select {
		case <-m.nsig:
		case <-m.ndone:
			stop = true
		}
		m.nmu.Lock()
		batch = append(batch[:0], m.queue...)
		m.queue = m.queue[:0]
		m.nmu.Unlock()
		for _, c := range batch {
			m.onChange(c)
		}
		if stop {
			return
		}
	}
}
