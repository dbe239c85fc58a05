package announcer

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/bgptest"
)

var vip4b = netip.MustParsePrefix("203.0.113.43/32")

func clone(c *config.Config) *config.Config {
	n := *c
	n.VIPs = slices.Clone(c.VIPs)
	n.BGP.Peers = slices.Clone(c.BGP.Peers)
	return &n
}

// Adding a VIP neither resets the session nor withdraws the other VIP;
// changing communities is one replacing UPDATE.
func TestReloadAddsVIPAndChangesAttributesWithoutResets(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP at router", nil)
	_, updates, uptime := r.PeerState(t, edgeAddr)

	added := clone(cfg)
	added.VIPs = append(added.VIPs, config.VIP{Name: "api", Prefixes: []netip.Prefix{vip4b}, Checks: []string{"web"}, Require: 1})
	if err := a.Reload(context.Background(), added); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 2 }, "new VIP at router", nil)
	_, after, up2 := r.PeerState(t, edgeAddr)
	if after != updates+1 {
		t.Errorf("adding a VIP cost %d UPDATEs, want 1 (the new route only)", after-updates)
	}
	if !up2.Equal(uptime) {
		t.Errorf("session reset by the reload (up since %v, was %v)", up2, uptime)
	}

	changed := clone(added)
	changed.VIPs[0].Communities = []config.Community{65001<<16 | 200}
	if err := a.Reload(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		return slices.Equal(r.Received(t)[vip4].Communities, []string{"65001:200"})
	}, "new communities at router", nil)
	_, after2, _ := r.PeerState(t, edgeAddr)
	if after2 != after+1 || len(r.Received(t)) != 2 {
		t.Errorf("changing communities cost %d UPDATEs (routes now %v), want 1 and no withdrawal",
			after2-after, bgptest.Prefixes(r.Received(t)))
	}

	// Removing the VIP withdraws it, and the export policy stops allowing it.
	removed := clone(changed)
	removed.VIPs = removed.VIPs[:1]
	if err := a.Reload(context.Background(), removed); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4b]; return !ok }, "removed VIP withdrawn", nil)
	if _, ok := r.Received(t)[vip4]; !ok {
		t.Error("withdrawing the removed VIP also withdrew the other one")
	}

	refused := clone(removed)
	refused.BGP.ASN = 65009
	if err := a.Reload(context.Background(), refused); err == nil {
		t.Error("a reload changing bgp.asn was accepted")
	}
}

// Removing a peer closes only that session.
func TestReloadRemovesOnlyThatPeer(t *testing.T) {
	r1 := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r1.AddPeer(t, edgeAddr, 65001)
	r2 := bgptest.Start(t, 65002, "198.18.0.3", netip.MustParseAddr("127.0.0.3"))
	r2.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r1)
	cfg.BGP.Peers = append(cfg.BGP.Peers, config.Peer{
		Address: r2.Addr, Port: uint16(r2.Port), ASN: r2.ASN, HoldTime: 9 * time.Second,
		ConnectRetry: time.Second, LocalAddress: edgeAddr, Families: []config.Family{config.FamilyIPv4},
	})
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { return len(r1.Received(t)) == 1 && len(r2.Received(t)) == 1 }, "VIP at both routers", nil)
	_, _, uptime := r1.PeerState(t, edgeAddr)

	one := clone(cfg)
	one.BGP.Peers = one.BGP.Peers[:1]
	if err := a.Reload(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { st, _, _ := r2.PeerState(t, edgeAddr); return st != "established" }, "second session closed", nil)
	st, _, up1 := r1.PeerState(t, edgeAddr)
	if st != "established" || !up1.Equal(uptime) || len(r1.Received(t)) != 1 {
		t.Errorf("first session %s since %v (was %v), routes %v: want untouched", st, up1, uptime, bgptest.Prefixes(r1.Received(t)))
	}
}
