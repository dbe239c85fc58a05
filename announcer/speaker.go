// Package announcer owns what anycastd announces: the embedded BGP speaker and
// the loop that turns check states into route-table diffs.
package announcer

import (
	"context"
	"net/netip"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// Speaker is the BGP side of the announcer. The only implementation talking
// to real BGP is the GoBGP adapter (gobgp*.go); the loop's tests use a
// recording fake (fake_test.go).
type Speaker interface {
	SpeakerReader
	// Start brings up the BGP instance, its policies and its peers.
	Start(ctx context.Context, cfg *config.Config) error
	// Announce adds the routes, or replaces those announced for their
	// prefixes, as one batch: routes announced together share UPDATEs.
	// After an error any part of the batch may have been announced; calling
	// it again with the same routes completes it.
	Announce(ctx context.Context, rs ...routes.Route) error
	// Withdraw removes the routes for the prefixes as one batch (they share
	// UPDATEs); withdrawing a prefix that is not announced is not an error.
	// After an error none of them is withdrawn.
	Withdraw(ctx context.Context, prefixes ...netip.Prefix) error
	// SentUpdates returns how many UPDATE messages each established session
	// has written to its socket so far.
	SentUpdates(ctx context.Context) (map[netip.Addr]uint64, error)
	// Configure moves the running instance to cfg from what it has
	// installed: the export policy, and only the sessions whose own
	// settings differ (added, deleted, or deleted and added again). The
	// global settings (ASN, router ID, listener) must equal Start's
	// (config.Compare refuses a reload otherwise). After an error the
	// instance may be part way; calling Configure again with the same cfg
	// completes the move. Configure with the installed cfg does nothing.
	Configure(ctx context.Context, cfg *config.Config) error
	// Stop closes every session and stops the instance.
	Stop(ctx context.Context) error
}

// SpeakerReader is the read side of the speaker, for the API and metrics.
// Its methods may be called from any goroutine.
type SpeakerReader interface {
	// Peers returns the state of every configured session.
	Peers(ctx context.Context) ([]PeerStatus, error)
	// PeerDetails returns every configured session with its message and
	// prefix counters, in no particular order.
	PeerDetails(ctx context.Context) ([]PeerDetail, error)
	// AdvertisedRoutes returns the routes sent to the session with peer,
	// sorted by prefix.
	AdvertisedRoutes(ctx context.Context, peer netip.Addr) ([]AdvertisedRoute, error)
}

// PeerStatus is a BGP session as seen by the speaker.
type PeerStatus struct {
	Address     netip.Addr
	ASN         uint32
	Description string
	State       string // idle, connect, active, opensent, openconfirm, established
	Since       time.Time
	// LastError is why the session last went down or was refused while
	// opening (GoBGP's reason: a NOTIFICATION sent or received with its code
	// and subcode, the hold timer, a read error).
	LastError string
	// MaxPrefixesExceeded counts the times the session was closed because
	// the peer sent more than max_received_prefixes in one family.
	MaxPrefixesExceeded uint64
}

// Established reports whether the session is up.
func (p PeerStatus) Established() bool { return p.State == "established" }

// Addresses puts VIP addresses on the host so that the service can bind them
// and the host accepts their traffic. hostaddr.Host implements it with
// netlink; without one (interface.manage = false) addresses are the
// operator's job.
type Addresses interface {
	// Add puts prefix's address, of VIP vip, on the interface; an address
	// already there is adopted, never removed later.
	Add(prefix netip.Prefix, vip string) error
	// Remove takes away an address anycastd added; others are left alone.
	Remove(prefix netip.Prefix) error
	// Close removes every address anycastd added (and a link it created).
	Close() error
}
