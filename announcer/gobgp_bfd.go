package announcer

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
)

// BFD's hold on BGP sessions: when a peer's BFD session goes down, its BGP
// session is closed (Cease, Administrative Shutdown, with the reason) and
// kept down until BFD is up again (RFC 5882 §4.3: a BFD failure takes the
// client session down). The hold is kept in sessionState.bfdHeld, beside
// the other reasons a session is down: a session held for BFD is neither
// enabled by the graceful-restart release nor by the restart after
// max_received_prefixes, and a reload that adds it again adds it down.

// HoldForBFD closes the BGP session with addr and keeps it down (hold), or
// lets it come up again (!hold). reason goes into the NOTIFICATION's
// shutdown communication (RFC 8203) and the log. Unknown peers are an
// error; holding a held session again does nothing.
func (g *GoBGP) HoldForBFD(ctx context.Context, addr netip.Addr, hold bool, reason string) error {
	if _, ok := (*g.peerCfg.Load())[addr]; !ok {
		return fmt.Errorf("no BGP peer %s", addr)
	}
	s := &g.sessions
	s.mu.Lock()
	s.init()
	was := s.bfdHeld[addr]
	if hold {
		s.bfdHeld[addr] = true
	} else {
		delete(s.bfdHeld, addr)
	}
	_, restartPending := s.restarts[addr]
	s.mu.Unlock()
	switch {
	case hold && !was:
		g.logger.Warn("BFD down: closing the BGP session and keeping it down until BFD is up again", "peer", addr.String(), "reason", reason)
		return g.s.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr.String(), Communication: "BFD down: " + reason})
	case !hold && was && !restartPending && !g.holding.Load():
		g.logger.Info("BFD up: enabling the BGP session again", "peer", addr.String(), "reason", reason)
		return g.s.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr.String()})
	}
	return nil
}

// heldForBFD reports whether BFD holds the session with addr down.
func (g *GoBGP) heldForBFD(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	s := &g.sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bfdHeld[a]
}
