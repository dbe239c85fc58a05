package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// GoBGP v4.8.0 marks a session Established only after it has sent the
// initial routes; a path added in between reaches no one on that session.
// Announcements that race a session coming up must all reach the router.
func TestAnnouncedWhileSessionComesUp(t *testing.T) {
	const n = 3000
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	var prefixes []netip.Prefix
	base := netip.MustParseAddr("2001:db8:42::").As16()
	for i := range n {
		a := base
		a[14], a[15] = byte(i>>8), byte(i)
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16(a), 128))
	}
	cfg.BGP.Peers[0].Families = []config.Family{config.FamilyIPv6}
	cfg.BGP.Peers[0].NextHopIPv6 = netip.MustParseAddr("2001:db8:ffff::2")
	cfg.VIPs = []config.VIP{{Name: "many", Prefixes: prefixes}}
	sp := NewGoBGP(bgptest.DiscardLogger)
	ctx := context.Background()
	if err := sp.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Stop(ctx) })
	// Announce one every millisecond or so, from before the session comes
	// up (GoBGP's first connect takes 1.5-2 s) until after: some land in
	// the window between the initial routes and Established.
	for _, p := range prefixes {
		if err := sp.Announce(ctx, routes.Route{Prefix: p}); err != nil {
			t.Fatalf("announcing %s: %v", p, err)
		}
		time.Sleep(time.Millisecond)
	}
	bgptest.Eventually(t, 20*time.Second, func() bool { return len(r.Received(t)) == n },
		fmt.Sprintf("all %d prefixes at the router", n), func() string { return fmt.Sprint(len(r.Received(t))) })
}
