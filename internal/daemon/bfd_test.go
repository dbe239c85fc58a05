package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anycastd/anycastd/bfd"
	"github.com/anycastd/anycastd/internal/testutil"
)

// recordingHolder records HoldForBFD calls with their time.
type recordingHolder struct {
	mu    sync.Mutex
	calls []string
}

func (h *recordingHolder) HoldForBFD(_ context.Context, addr netip.Addr, hold bool, _ string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf("%s hold=%v", addr, hold))
	return nil
}

func (h *recordingHolder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// The coupling of BFD to BGP: Up -> Down holds the BGP session at once;
// Up again releases it after the hold-down, which doubles with each flap;
// a peer's AdminDown is no failure; a Down before the release cancels it;
// our own AdminDown (BFD removed) releases a held session at once.
func TestBFDCoupling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		peer := netip.MustParseAddr("198.18.1.1")
		key := bfd.PeerKey{Peer: peer}
		h := &recordingHolder{}
		var logs testutil.SyncBuffer
		b := newBFDCoupler(slog.New(slog.NewTextHandler(&logs, nil)), h, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go b.run(ctx)
		defer func() { cancel(); <-b.done }()
		send := func(from, to, remote bfd.State, diag bfd.Diag) {
			b.changed(bfd.Change{Key: key, From: from, To: to, Remote: remote, Diag: diag, Time: time.Now()})
			synctest.Wait()
		}
		want := func(what string, calls ...string) {
			t.Helper()
			if got := h.got(); !slices.Equal(got, calls) {
				t.Fatalf("%s: HoldForBFD calls %q, want %q", what, got, calls)
			}
		}
		hold, release := peer.String()+" hold=true", peer.String()+" hold=false"

		send(bfd.StateDown, bfd.StateInit, bfd.StateDown, bfd.DiagNone)
		send(bfd.StateInit, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		want("first Up: the BGP session was never held")

		send(bfd.StateUp, bfd.StateDown, bfd.StateUp, bfd.DiagControlDetectExpired)
		want("Up -> Down", hold)
		send(bfd.StateDown, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		time.Sleep(bfdHoldDownBase - time.Millisecond)
		synctest.Wait()
		want("Up again, within the hold-down", hold)
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		want("Up for the hold-down", hold, release)

		// A second flap within the window: twice the hold-down.
		send(bfd.StateUp, bfd.StateDown, bfd.StateUp, bfd.DiagControlDetectExpired)
		send(bfd.StateDown, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		time.Sleep(2*bfdHoldDownBase - time.Millisecond)
		synctest.Wait()
		want("second flap, within its doubled hold-down", hold, release, hold)
		// Down again before the release: cancelled.
		send(bfd.StateUp, bfd.StateDown, bfd.StateUp, bfd.DiagControlDetectExpired)
		time.Sleep(time.Minute)
		synctest.Wait()
		want("Down before the release", hold, release, hold, hold)

		// BFD removed from the peer: released at once.
		send(bfd.StateDown, bfd.StateAdminDown, bfd.StateDown, bfd.DiagAdministrativelyDown)
		want("BFD removed", hold, release, hold, hold, release)

		// The peer replaces its session (a new discriminator): no hold.
		send(bfd.StateAdminDown, bfd.StateDown, bfd.StateDown, bfd.DiagNone)
		send(bfd.StateDown, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		b.changed(bfd.Change{Key: key, From: bfd.StateUp, To: bfd.StateDown, Remote: bfd.StateDown,
			Diag: bfd.DiagNeighborSignaledDown, PeerNewSession: true, Time: time.Now()})
		synctest.Wait()
		want("the peer's new session", hold, release, hold, hold, release)

		// The peer signals Down (Diag 3): BGP held only if BFD is not Up
		// again within the grace.
		send(bfd.StateUp, bfd.StateDown, bfd.StateDown, bfd.DiagNeighborSignaledDown)
		send(bfd.StateDown, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		time.Sleep(time.Minute)
		synctest.Wait()
		want("peer signalled Down, Up again within the grace", hold, release, hold, hold, release)
		send(bfd.StateUp, bfd.StateDown, bfd.StateDown, bfd.DiagNeighborSignaledDown)
		time.Sleep(bfdPeerDownGrace - time.Millisecond)
		synctest.Wait()
		want("peer signalled Down, within the grace", hold, release, hold, hold, release)
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		want("peer signalled Down, after the grace", hold, release, hold, hold, release, hold)
		send(bfd.StateDown, bfd.StateAdminDown, bfd.StateDown, bfd.DiagAdministrativelyDown)
		want("BFD removed again", hold, release, hold, hold, release, hold, release)

		// The peer takes BFD down on purpose: no hold.
		send(bfd.StateAdminDown, bfd.StateDown, bfd.StateDown, bfd.DiagNone)
		send(bfd.StateDown, bfd.StateUp, bfd.StateUp, bfd.DiagNone)
		send(bfd.StateUp, bfd.StateDown, bfd.StateAdminDown, bfd.DiagNeighborSignaledDown)
		want("the peer's AdminDown", hold, release, hold, hold, release, hold, release)
	})
}

func TestBFDHoldDownGrows(t *testing.T) {
	b := newBFDCoupler(slog.New(slog.DiscardHandler), &recordingHolder{}, nil)
	peer := netip.MustParseAddr("198.18.1.1")
	now := time.Now()
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 2 * time.Minute, 2 * time.Minute} {
		b.flaps[peer] = append(b.flaps[peer], now)
		if got := b.holdDown(peer, now); got != want {
			t.Errorf("after %d flaps: hold-down %v, want %v", i+1, got, want)
		}
	}
	if got := b.holdDown(peer, now.Add(bfdFlapWindow)); got != bfdHoldDownBase {
		t.Errorf("once the flaps are older than the window: %v, want %v", got, bfdHoldDownBase)
	}
}
