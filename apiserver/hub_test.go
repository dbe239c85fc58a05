package apiserver

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/anycastd/anycastd/announcer"
	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/bfd"
	"github.com/anycastd/anycastd/health"
)

func seqs(evs []*pb.Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestHubKeepsTheLastEvents(t *testing.T) {
	h := NewHub(4)
	if got := h.Events(0); len(got) != 0 {
		t.Fatalf("empty hub has %v", got)
	}
	for range 3 {
		h.VIPChanged(announcer.VIPEvent{VIP: "web", From: "up", To: "down"})
	}
	if got := seqs(h.Events(0)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("before wrapping: %v", got)
	}
	for range 3 {
		h.VIPChanged(announcer.VIPEvent{VIP: "web", From: "down", To: "up"})
	}
	if got := seqs(h.Events(0)); !slices.Equal(got, []uint64{3, 4, 5, 6}) {
		t.Errorf("after wrapping: %v, want the last 4", got)
	}
	if got := seqs(h.Events(4)); !slices.Equal(got, []uint64{5, 6}) {
		t.Errorf("after seq 4: %v", got)
	}
}

func TestHubSubscribeMissesNothing(t *testing.T) {
	h := NewHub(0)
	h.VIPChanged(announcer.VIPEvent{VIP: "web", From: "none", To: "up"})
	hist, ch, cancel := h.Subscribe(0)
	defer cancel()
	h.VIPChanged(announcer.VIPEvent{VIP: "web", From: "up", To: "down"})
	h.CheckChanged(health.Event{Check: "svc", Status: health.StatusUp})
	h.CheckChanged(health.Event{Check: "svc", From: health.StatusUp, Status: health.StatusDown, Last: health.Result{Err: "refused", Kind: health.KindFail}})
	got := seqs(hist)
	for range 3 {
		got = append(got, (<-ch).Seq)
	}
	if !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("history + live = %v", got)
	}
	last := h.Events(3)[0].GetCheck()
	if last.From != pb.CheckStatus_CHECK_STATUS_UP || last.To != pb.CheckStatus_CHECK_STATUS_DOWN ||
		last.Last.Error != "refused" || last.Last.Outcome != pb.Outcome_OUTCOME_FAIL {
		t.Errorf("check transition = %v", last)
	}
	first := h.Events(0)[0].GetVip()
	if first.From != pb.VIPState_VIP_STATE_UNSPECIFIED || first.To != pb.VIPState_VIP_STATE_UP {
		t.Errorf("first VIP transition = %v", first)
	}
}

func TestHubCutsOffASlowWatcher(t *testing.T) {
	h := NewHub(0)
	_, ch, cancel := h.Subscribe(0)
	defer cancel()
	for range subscriberBuffer + 1 {
		h.VIPChanged(announcer.VIPEvent{VIP: "web", From: "up", To: "down"}) // must not block
	}
	n := 0
	for range ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow watcher got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
}

func TestHubPeerStatesOnlyOnChange(t *testing.T) {
	h := NewHub(0)
	a := netip.MustParseAddr("198.18.1.1")
	from := ""
	for _, s := range []string{"active", "active", "established", "idle"} {
		h.PeerChanged(announcer.PeerEvent{Address: a, ASN: 65000, From: from, To: s})
		from = s
	}
	var got []string
	for _, e := range h.Events(0) {
		p := e.GetPeer()
		got = append(got, p.From.String()+">"+p.To.String())
	}
	want := []string{"PEER_STATE_UNSPECIFIED>PEER_STATE_ACTIVE", "PEER_STATE_ACTIVE>PEER_STATE_ESTABLISHED",
		"PEER_STATE_ESTABLISHED>PEER_STATE_IDLE"}
	if !slices.Equal(got, want) {
		t.Errorf("peer events = %v, want %v", got, want)
	}
}

// A BFD change is an event of its own kind, for anycastctl events.
func TestHubBFDEvent(t *testing.T) {
	h := NewHub(10)
	h.BFDChanged(bfd.Change{Key: bfd.PeerKey{Peer: netip.MustParseAddr("198.18.1.1")}, From: bfd.StateUp, To: bfd.StateDown,
		Diag: bfd.DiagControlDetectExpired, Remote: bfd.StateUp})
	evs := h.Events(0)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	got := evs[0].GetBfd()
	if got.GetPeer() != "198.18.1.1" || got.GetFrom() != "up" || got.GetTo() != "down" || got.GetDiag() != "control_detection_time_expired" || got.GetRemote() != "up" {
		t.Errorf("event %v, want 198.18.1.1 up -> down, diag control_detection_time_expired, remote up", got)
	}
}
