package fleet

import (
	"testing"
	"time"

	"github.com/anycastd/anycastd/routes"
)

// A node without an established BGP session counts for no VIP, whatever
// its state says: its routes reach no router.
func TestNodeWithoutBGPDoesNotCount(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("fra1", "edge1"))
	b.g.SetBGP(false)
	b.g.Report(vip, routes.StateUp, time.Now(), "")
	a.g.Report(vip, routes.StateUp, time.Now(), "")
	waitFor(t, 5*time.Second, "a sees fra1's entry without BGP", func() bool {
		for _, e := range a.g.View().Entries {
			if e.Site == "fra1" && e.NoBGP && e.State == routes.StateUp {
				return true
			}
		}
		return false
	})
	if n, known := a.g.View().Sites(vip); n != 1 || known != 2 {
		t.Errorf("a's view: %d announcing of %d known; want 1 of 2 (fra1 has no BGP session)", n, known)
	}
	a.engage(vip, 1)
	v := a.waitVerdict(vip, 5*time.Second, "guarded", guarded)
	if v.Reason != "no other site announces it, min_sites 1" {
		t.Errorf("verdict %+v", v)
	}

	// fra1's session comes up: ams1 is released.
	b.g.SetBGP(true)
	a.waitVerdict(vip, 5*time.Second, "permitted once fra1 has BGP", permitted)
}

// The entry a decision writes keeps what the node reported where the
// decision changes nothing: a held VIP stays held in the fleet view, with
// its own reason, when the guard permits its withdrawal.
func TestDecisionKeepsReportedState(t *testing.T) {
	s := startEtcd(t)
	a := startNode(t, s.fleetCfg("ams1", "edge1"))
	b := startNode(t, s.fleetCfg("fra1", "edge1"))
	a.quiet = true
	b.g.Report(vip, routes.StateUp, time.Now(), "")
	since := time.Now().Add(-time.Minute).Round(time.Millisecond)
	a.g.Report(vip, routes.StateHeld, since, "flapping: held until 12:00:00")
	a.waitSites(vip, 1) // fra1's entry has reached etcd (a's own view shows its own at once)
	a.engage(vip, 1)
	a.waitVerdict(vip, 5*time.Second, "permitted", permitted)
	waitFor(t, 5*time.Second, "b sees ams1 still held, with its reason", func() bool {
		for _, e := range b.g.View().Entries {
			if e.Site == "ams1" {
				return e.State == routes.StateHeld && e.Reason == "flapping: held until 12:00:00" && e.Since.Equal(since)
			}
		}
		return false
	})

	// Reported up, then a permitted decision: withdrawn, with the guard's
	// reason.
	a.g.Disengage(vip)
	a.g.Report(vip, routes.StateUp, time.Now(), "1 of 1 checks passing")
	b.waitSites(vip, 2)
	a.engage(vip, 1)
	a.waitVerdict(vip, 5*time.Second, "permitted", permitted)
	waitFor(t, 5*time.Second, "b sees ams1 withdrawing", func() bool {
		for _, e := range b.g.View().Entries {
			if e.Site == "ams1" {
				return e.State == routes.StateDown && e.Reason == "withdrawing, the fleet guard permits it: 1 other site announces it (fra1), min_sites 1"
			}
		}
		return false
	})
}

// The view shows this node's own entries as it last reported them, even
// while etcd cannot be reached: they are the truth here.
func TestViewShowsOwnReportsWhileLost(t *testing.T) {
	cfg := (&etcdServer{clientURL: freeURL(t)}).fleetCfg("ams1", "edge1")
	a := startNode(t, cfg)
	waitFor(t, 5*time.Second, "coordinator lost", func() bool {
		c := a.g.View().Coordinator
		return !c.Connected && c.Err != ""
	})
	a.g.Report(vip, routes.StateGuarded, time.Now(), "guarded by the fleet: the fleet coordinator (etcd) cannot be reached")
	v := a.g.View()
	if len(v.Entries) != 1 || v.Entries[0].State != routes.StateGuarded || v.Entries[0].Site != "ams1" {
		t.Errorf("view while lost: %+v", v.Entries)
	}
}
