package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// A second router address: bgptest routers are told apart by address.
var router2Addr = netip.MustParseAddr("127.0.0.3")

// twoPeerConfig is testConfig with a second session, to r2.
func twoPeerConfig(r1, r2 *bgptest.Router) *config.Config {
	cfg := testConfig(r1)
	p := cfg.BGP.Peers[0]
	p.Address, p.Port, p.ASN = r2.Addr, uint16(r2.Port), r2.ASN
	cfg.BGP.Peers = append(cfg.BGP.Peers, p)
	return cfg
}

// startWithSpeaker is startAnnouncer that also returns the speaker, for
// its Adj-RIB-Out.
func startWithSpeaker(t *testing.T, cfg *config.Config) (*Announcer, *GoBGP) {
	t.Helper()
	sp := NewGoBGP(bgptest.DiscardLogger)
	a := New(cfg, sp, bgptest.DiscardLogger, Options{})
	run(t, a)
	return a, sp
}

func check(a *Announcer, name string, s health.Status) {
	a.CheckChanged(health.Event{Check: name, Status: s})
}

// fmtFull prints a route with the attributes these tests look at.
func fmtFull(r bgptest.Route) string {
	deref := func(p *uint32) any {
		if p == nil {
			return "-"
		}
		return *p
	}
	return fmt.Sprintf("%s as-path %v med %v local-pref %v communities %v large %v",
		r.Prefix, r.ASPath, deref(r.MED), deref(r.LocalPref), r.Communities, r.LargeCommunities)
}

func fmtRoutes(r *bgptest.Router, t *testing.T) func() string {
	return func() string {
		got := r.Received(t)
		var s []string
		for _, p := range bgptest.Prefixes(got) {
			s = append(s, fmtFull(got[netip.MustParsePrefix(p)]))
		}
		return fmt.Sprint(s)
	}
}

// A VIP with prepends, towards an iBGP and an eBGP router: the prepends go
// to the eBGP router only (the path itself carries none, so GoBGP's loop
// check never drops it towards the iBGP router), the iBGP router gets the
// other attributes and LOCAL_PREF, and every change, the withdrawal last,
// reaches both. Before the prepends moved to the export policy the iBGP
// router never got the VIP.
func TestPrependsGoToEBGPOnlyAndIBGPFollowsEveryChange(t *testing.T) {
	ebgp := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	ebgp.AddPeer(t, edgeAddr, 65001)
	ibgp := bgptest.Start(t, 65001, "198.18.0.3", router2Addr)
	ibgp.AddPeer(t, edgeAddr, 65001)
	cfg := twoPeerConfig(ebgp, ibgp)
	cfg.Checks = append(cfg.Checks, config.Check{Name: "db", Type: config.CheckTCP})
	v := &cfg.VIPs[0]
	v.Checks, v.Require = []string{"web", "db"}, 2
	v.Prepend, v.LocalPref = 2, u32(200)
	v.Degraded = &config.Degraded{Prepend: 4, MED: u32(50), Communities: []config.Community{65001<<16 | 666}, MinPassing: 1}
	a, sp := startWithSpeaker(t, cfg)
	check(a, "web", health.StatusUp)
	check(a, "db", health.StatusUp)

	asPath := func(r *bgptest.Router, want ...uint32) func() bool {
		return func() bool {
			rt, ok := r.Received(t)[vip4]
			return ok && slices.Equal(rt.ASPath, want)
		}
	}
	bgptest.Eventually(t, wait, asPath(ebgp, 65001, 65001, 65001), "VIP at the eBGP router with 2 prepends", fmtRoutes(ebgp, t))
	bgptest.Eventually(t, wait, asPath(ibgp), "VIP at the iBGP router with an empty AS path", fmtRoutes(ibgp, t))
	in := ibgp.Received(t)[vip4]
	if in.MED == nil || *in.MED != 10 || !slices.Contains(in.Communities, "65001:100") || in.LocalPref == nil || *in.LocalPref != 200 {
		t.Errorf("iBGP route %s, want MED 10, community 65001:100, local-pref 200", fmtFull(in))
	}
	if ex := ebgp.Received(t)[vip4]; ex.LocalPref != nil {
		t.Errorf("eBGP route %s carries LOCAL_PREF (RFC 4271 §5.1.5)", fmtFull(ex))
	}
	// anycastctl routes shows the same, per peer.
	out, err := sp.AdvertisedRoutes(context.Background(), ebgp.Addr)
	if err != nil || len(out) != 1 || !slices.Equal(out[0].ASPath, []uint32{65001, 65001, 65001}) {
		t.Errorf("Adj-RIB-Out towards the eBGP router: %+v, %v; want the VIP with AS path 65001 65001 65001", out, err)
	}
	out, err = sp.AdvertisedRoutes(context.Background(), ibgp.Addr)
	if err != nil || len(out) != 1 || len(out[0].ASPath) != 0 {
		t.Errorf("Adj-RIB-Out towards the iBGP router: %+v, %v; want the VIP with an empty AS path", out, err)
	}

	check(a, "db", health.StatusDown) // degraded: 1 passing
	bgptest.Eventually(t, wait, asPath(ebgp, 65001, 65001, 65001, 65001, 65001), "degraded VIP at the eBGP router with 4 prepends", fmtRoutes(ebgp, t))
	bgptest.Eventually(t, wait, func() bool {
		rt, ok := ibgp.Received(t)[vip4]
		return ok && len(rt.ASPath) == 0 && rt.MED != nil && *rt.MED == 50 && slices.Contains(rt.Communities, "65001:666")
	}, "degraded VIP at the iBGP router (MED 50, 65001:666, no prepends)", fmtRoutes(ibgp, t))

	check(a, "web", health.StatusDown) // withdrawn
	bgptest.Eventually(t, wait, func() bool { return len(ibgp.Received(t)) == 0 }, "withdrawal at the iBGP router", fmtRoutes(ibgp, t))
	bgptest.Eventually(t, wait, func() bool { return len(ebgp.Received(t)) == 0 }, "withdrawal at the eBGP router", fmtRoutes(ebgp, t))

	// Announced again: the prepend sets followed the withdrawal.
	check(a, "web", health.StatusUp)
	check(a, "db", health.StatusUp)
	bgptest.Eventually(t, wait, asPath(ebgp, 65001, 65001, 65001), "VIP back at the eBGP router with 2 prepends", fmtRoutes(ebgp, t))
	bgptest.Eventually(t, wait, asPath(ibgp), "VIP back at the iBGP router", fmtRoutes(ibgp, t))
}

// vip.peers selects the sessions that get a VIP, and a peer's communities
// go to that peer only; a reload that changes either moves the routes
// without resetting a session.
func TestVIPPeersAndPeerCommunities(t *testing.T) {
	r1 := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r1.AddPeer(t, edgeAddr, 65001)
	r2 := bgptest.Start(t, 65002, "198.18.0.3", router2Addr)
	r2.AddPeer(t, edgeAddr, 65001)
	cfg := twoPeerConfig(r1, r2)
	cfg.BGP.Peers[1].Communities = []config.Community{65002<<16 | 1}
	cfg.BGP.Peers[1].LargeCommunities = []config.LargeCommunity{{Global: 65002, Local1: 1, Local2: 1}}
	cfg.VIPs[0].Peers = []netip.Addr{r1.Addr}
	cfg.VIPs = append(cfg.VIPs, config.VIP{Name: "api", Prefixes: []netip.Prefix{vip4b}, Checks: []string{"web"}, Require: 1})
	a, sp := startWithSpeaker(t, cfg)
	up(a)

	bgptest.Eventually(t, wait, func() bool { return len(r1.Received(t)) == 2 }, "both VIPs at router 1", fmtRoutes(r1, t))
	bgptest.Eventually(t, wait, func() bool { _, ok := r2.Received(t)[vip4b]; return ok }, "api at router 2", fmtRoutes(r2, t))
	if _, ok := r2.Received(t)[vip4]; ok {
		t.Errorf("router 2 got web, which lists only router 1: %s", fmtRoutes(r2, t)())
	}
	for p, rt := range r1.Received(t) {
		if slices.Contains(rt.Communities, "65002:1") || slices.Contains(rt.LargeCommunities, "65002:1:1") {
			t.Errorf("router 1 got %s with router 2's communities: %s", p, fmtFull(rt))
		}
	}
	if rt := r2.Received(t)[vip4b]; !slices.Contains(rt.Communities, "65002:1") || !slices.Contains(rt.LargeCommunities, "65002:1:1") {
		t.Errorf("router 2 got %s, want its communities 65002:1 and 65002:1:1 added", fmtFull(rt))
	}
	if out, err := sp.AdvertisedRoutes(context.Background(), r2.Addr); err != nil || len(out) != 1 || out[0].Prefix != vip4b {
		t.Errorf("Adj-RIB-Out towards router 2: %+v, %v; want api only", out, err)
	}

	_, _, up1 := r1.PeerState(t, edgeAddr)
	_, _, up2 := r2.PeerState(t, edgeAddr)
	moved := clone(cfg)
	moved.BGP.Peers[1].Communities = []config.Community{65002<<16 | 2}
	moved.VIPs[0].Peers = []netip.Addr{r2.Addr}
	if err := a.Reload(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool {
		rt, ok := r2.Received(t)[vip4]
		return ok && slices.Contains(rt.Communities, "65002:2") && !slices.Contains(rt.Communities, "65002:1")
	}, "web at router 2 after the reload, with the new community", fmtRoutes(r2, t))
	bgptest.Eventually(t, wait, func() bool { _, ok := r1.Received(t)[vip4]; return !ok }, "web gone from router 1", fmtRoutes(r1, t))
	bgptest.Eventually(t, wait, func() bool {
		return slices.Contains(r2.Received(t)[vip4b].Communities, "65002:2")
	}, "api at router 2 with the new community", fmtRoutes(r2, t))
	for i, r := range []*bgptest.Router{r1, r2} {
		st, _, since := r.PeerState(t, edgeAddr)
		if was := []time.Time{up1, up2}[i]; st != "established" || !since.Equal(was) {
			t.Errorf("router %d: session %s since %v, want established since %v (never reset)", i+1, st, since, was)
		}
	}
	if _, ok := r1.Received(t)[vip4b]; !ok {
		t.Errorf("router 1 lost api: %s", fmtRoutes(r1, t)())
	}
}

// A reload installs a new export policy generation: it must know which
// prefixes are announced with which prepend, or a session added by the
// reload (or any later re-evaluation) would get the VIP without them.
func TestReloadKeepsPrependsOfAnnouncedPaths(t *testing.T) {
	r1 := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r1.AddPeer(t, edgeAddr, 65001)
	r2 := bgptest.Start(t, 65002, "198.18.0.3", router2Addr)
	r2.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r1)
	cfg.VIPs[0].OnFailure = config.OnFailureDegrade
	cfg.VIPs[0].Degraded = &config.Degraded{Prepend: 3}
	a, _ := startAnnouncer(t, cfg)
	up(a)
	down(a) // degraded: prepend 3
	want := []uint32{65001, 65001, 65001, 65001}
	bgptest.Eventually(t, wait, func() bool { return slices.Equal(r1.Received(t)[vip4].ASPath, want) },
		"degraded VIP at router 1 with 3 prepends", fmtRoutes(r1, t))

	added := twoPeerConfig(r1, r2)
	added.VIPs = cfg.VIPs
	if err := a.Reload(context.Background(), added); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return slices.Equal(r2.Received(t)[vip4].ASPath, want) },
		"degraded VIP at router 2 (added by the reload) with 3 prepends", fmtRoutes(r2, t))
}

// A reload that changes only an announced VIP's prepend reaches the
// router: the export policy applies prepends, the path itself stays the
// same, and GoBGP sends nothing for an equal path unless told to.
func TestReloadPrependOnlyReachesRouter(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	a, _ := startAnnouncer(t, cfg)
	up(a)
	bgptest.Eventually(t, wait, func() bool { return slices.Equal(r.Received(t)[vip4].ASPath, []uint32{65001}) },
		"VIP at the router without prepends", fmtRoutes(r, t))

	next := *cfg
	next.VIPs = slices.Clone(cfg.VIPs)
	next.VIPs[0].Prepend = 2
	if err := a.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	bgptest.Eventually(t, wait, func() bool { return slices.Equal(r.Received(t)[vip4].ASPath, []uint32{65001, 65001, 65001}) },
		"VIP at the router with 2 prepends after the reload", fmtRoutes(r, t))
}
