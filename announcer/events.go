package announcer

import (
	"net/netip"
	"time"

	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// One event vocabulary: every transition anycastd makes or sees (a check's
// status, a BGP session's state, a VIP's state) is one typed event with the
// state it left (From) and the one it entered (To). The daemon fans each out
// in one place (internal/daemon) to the announcer, metrics and the API's
// event stream.

// Observer is told of every transition. Its methods are called from the
// goroutine of the transition's owner (a probe, GoBGP's event watcher, the
// announcer loop), in order for any one check, session or VIP, and must not
// block.
type Observer interface {
	// CheckChanged: a check changed status (health.Event.From → .Status).
	CheckChanged(ev health.Event)
	// PeerChanged: a BGP session changed state (RFC 4271 §8.2.2).
	PeerChanged(ev PeerEvent)
	// VIPChanged: a VIP changed state.
	VIPChanged(ev VIPEvent)
}

// PeerEvent is a BGP session's state change. From and To are RFC 4271
// §8.2.2 states in lower case (idle, connect, active, opensent,
// openconfirm, established); From is "" for a session's first event.
type PeerEvent struct {
	Address  netip.Addr
	ASN      uint32
	From, To string
	Time     time.Time
	// LastError is why the session last went down or was refused ("" if it
	// never was).
	LastError string
}

// Established reports whether the session came up with this event.
func (e PeerEvent) Established() bool { return e.To == "established" }

// VIPEvent is a VIP's state change. From is "none" for the VIP's first
// state.
type VIPEvent struct {
	VIP      string
	From, To routes.State
	Reason   string
	Time     time.Time
}
