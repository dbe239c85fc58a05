package apiserver

import (
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/anycastd/anycastd/announcer"
	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/bfd"
	"github.com/anycastd/anycastd/health"
)

// Default sizes of the Hub.
const (
	// DefaultHistory is how many recent events a Hub keeps for replay.
	DefaultHistory = 256
	// subscriberBuffer is how many events a watcher may fall behind before
	// it is cut off (it can reconnect with after_seq).
	subscriberBuffer = 1024
)

// Hub collects the daemon's transitions into a numbered event stream: it is
// an announcer.Observer of check, session and VIP transitions, each of which
// carries the state it left. It keeps the most recent events for replay and
// fans new ones out to watchers. Its methods never block.
type Hub struct {
	now func() time.Time

	mu   sync.Mutex
	seq  uint64
	ring []*pb.Event // the last len(ring) events; ring[next] is the oldest once full
	next int
	full bool
	subs map[*subscriber]struct{}
}

type subscriber struct{ ch chan *pb.Event }

// NewHub returns a Hub that remembers the last history events
// (DefaultHistory if history <= 0).
func NewHub(history int) *Hub {
	if history <= 0 {
		history = DefaultHistory
	}
	return &Hub{
		now:  time.Now,
		ring: make([]*pb.Event, history),
		subs: make(map[*subscriber]struct{}),
	}
}

var _ announcer.Observer = (*Hub)(nil)

// VIPChanged records a VIP transition (announcer.Observer). From is "none"
// for a VIP's first state.
func (h *Hub) VIPChanged(ev announcer.VIPEvent) {
	h.add(&pb.Event{Kind: &pb.Event_Vip{Vip: &pb.VIPTransition{
		Vip: ev.VIP, From: vipState(ev.From), To: vipState(ev.To), Reason: ev.Reason,
	}}})
}

// CheckChanged records a check transition (announcer.Observer).
func (h *Hub) CheckChanged(ev health.Event) {
	h.add(&pb.Event{Kind: &pb.Event_Check{Check: &pb.CheckTransition{
		Check: ev.Check, From: checkStatus(ev.From), To: checkStatus(ev.Status), Last: probeResult(ev.Last),
	}}})
}

// PeerChanged records a BGP session state change (announcer.Observer).
func (h *Hub) PeerChanged(ev announcer.PeerEvent) {
	from, to := peerState(ev.From), peerState(ev.To)
	if from == to {
		return
	}
	h.add(&pb.Event{Kind: &pb.Event_Peer{Peer: &pb.PeerTransition{
		Peer: ev.Address.String(), Asn: ev.ASN, From: from, To: to,
	}}})
}

// BFDChanged records a BFD session state change.
func (h *Hub) BFDChanged(c bfd.Change) {
	h.add(&pb.Event{Kind: &pb.Event_Bfd{Bfd: &pb.BFDTransition{
		Peer: c.Key.Peer.String(), From: c.From.String(), To: c.To.String(), Diag: c.Diag.String(), Remote: c.Remote.String(),
	}}})
}

func (h *Hub) add(ev *pb.Event) {
	h.mu.Lock()
	h.addLocked(ev)
	h.mu.Unlock()
}

// addLocked numbers ev, keeps it and hands it to every watcher; a watcher
// whose buffer is full is cut off instead of blocking the caller.
func (h *Hub) addLocked(ev *pb.Event) {
	h.seq++
	ev.Seq = h.seq
	ev.Time = timestamppb.New(h.now())
	h.ring[h.next] = ev
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			close(s.ch) // the watcher fell behind: its stream ends
			delete(h.subs, s)
		}
	}
}

// historyLocked returns the kept events with a seq above after, oldest first.
// h.mu must be held.
func (h *Hub) historyLocked(after uint64) []*pb.Event {
	var out []*pb.Event
	n, start := h.next, 0
	if h.full {
		n, start = len(h.ring), h.next
	}
	for i := range n {
		ev := h.ring[(start+i)%len(h.ring)]
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out
}

// Events returns the kept events with a seq above after, oldest first.
func (h *Hub) Events(after uint64) []*pb.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.historyLocked(after)
}

// Subscribe returns the kept events with a seq above after and a channel of
// the events that follow them, with none missed or repeated in between.
// The channel is closed if the watcher falls too far behind. cancel ends
// the subscription.
func (h *Hub) Subscribe(after uint64) (history []*pb.Event, events <-chan *pb.Event, cancel func()) {
	s := &subscriber{ch: make(chan *pb.Event, subscriberBuffer)}
	h.mu.Lock()
	history = h.historyLocked(after)
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return history, s.ch, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}
