// Package fleet is the fleet guard and the fleet view: the sites of an
// anycast service share, through a consistent store (etcd), who announces
// which VIP, and no health-driven withdrawal leaves fewer than a VIP's
// min_sites sites announcing it.
//
// The Guard is the engine; a Store (etcd's in this package) is the small
// interface to the coordinator behind it, so another store could follow.
// Without [fleet] nothing here runs.
//
// Keys, under the configured key prefix P (default "/anycastd/"):
//
//	P vips/<vip>/<site>/<node>   an Entry (JSON), under the node's lease
//	P drains/<site>/<node>       a drain slot held (JSON Slot), under the lease
//	P locks/vip/<vip>/           the per-VIP mutex (etcd concurrency.Mutex)
//	P locks/drain/               the drain-slot mutex
package fleet

import (
	"time"

	"github.com/anycastd/anycastd/routes"
)

// Entry is one node's state of one VIP, as published in the store.
type Entry struct {
	VIP   string       `json:"-"` // from the key
	Site  string       `json:"-"` // from the key
	Node  string       `json:"-"` // from the key
	State routes.State `json:"state"`
	// Since is when the VIP entered State at that node.
	Since time.Time `json:"since"`
	// Reason is the node's reason for State (its VIPStatus.Reason).
	Reason string `json:"reason,omitempty"`
	// NoBGP: the node has no established BGP session, so what it
	// announces reaches no router (its uplink is down, say).
	NoBGP bool `json:"no_bgp,omitempty"`
}

// Announcing reports whether the entry counts towards the VIP's sites
// announcing it: up, degraded or guarded, at a node with an established
// BGP session. A draining VIP is on its way out and does not count.
func (e Entry) Announcing() bool {
	return !e.NoBGP && e.InRIB()
}

// InRIB reports whether the node's state announces the VIP (up, degraded
// or guarded), whether or not a router hears it.
func (e Entry) InRIB() bool {
	return e.State == routes.StateUp || e.State == routes.StateDegraded || e.State == routes.StateGuarded
}

// Slot is a drain slot held by a node (max_drained).
type Slot struct {
	Site   string    `json:"-"`
	Node   string    `json:"-"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// Coordinator says whether the store can be reached.
type Coordinator struct {
	// Connected: the last exchange with the store succeeded and the
	// node's lease is alive.
	Connected bool
	// Since is when Connected last changed.
	Since time.Time
	// Err is why it is not connected ("" when it is).
	Err string
}

// View is the fleet as this node sees it through its watch.
type View struct {
	// Entries of every node, sorted by VIP, site, node.
	Entries []Entry
	// Slots are the drain slots held, sorted by site, node.
	Slots []Slot
	// MaxDrained is the configured budget (0: no limit).
	MaxDrained  int
	Site, Node  string // this node's
	Coordinator Coordinator
}

// Sites returns how many distinct sites announce vip (Entry.Announcing)
// in the view, and how many sites have an entry for it at all.
func (v View) Sites(vip string) (announcing, known int) {
	ann, all := map[string]bool{}, map[string]bool{}
	for _, e := range v.Entries {
		if e.VIP != vip {
			continue
		}
		all[e.Site] = true
		if e.Announcing() {
			ann[e.Site] = true
		}
	}
	return len(ann), len(all)
}

// Verdict is the guard's word on one engaged VIP (Guard.Engage): keep it
// announced (Guarded) or let it be withdrawn.
type Verdict struct {
	VIP string
	// Seq is the engagement's sequence number (Guard.Engage's): a verdict
	// whose Seq is not the latest Engage's of VIP is stale.
	Seq uint64
	// Guarded: keep the VIP announced, degraded (routes.StateGuarded).
	// false: the withdrawal may go ahead.
	Guarded bool
	// Reason says why, for the VIP's reason and the log, e.g. "only 1
	// other site announces it, min_sites 2".
	Reason string
	// Others is how many sites other than this node's announced the VIP
	// when the decision was taken; -1 when the store could not be asked
	// (coordinator lost).
	Others int
	// Took is how long the decision took (lock, read, write, unlock).
	Took time.Duration
}

// DrainSlotEvent tells the announcer about its drain slot (max_drained).
type DrainSlotEvent struct {
	// Granted: the node holds a slot (or needs none: no limit, or the
	// coordinator is lost with on_coordinator_lost = "local").
	Granted bool
	// Detail says why not, e.g. "waiting for a drain slot: 1 of 1 held by
	// ams2/edge1".
	Detail string
}
