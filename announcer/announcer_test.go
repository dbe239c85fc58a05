package announcer

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

const wait = 10 * time.Second

var (
	edgeAddr   = netip.MustParseAddr("127.0.0.1")
	routerAddr = netip.MustParseAddr("127.0.0.2")
	vip4       = netip.MustParsePrefix("203.0.113.42/32")
	vip6       = netip.MustParsePrefix("2001:db8:42::1/128")
)

func u32(v uint32) *uint32 { return &v }

// testConfig is one VIP guarded by check "web", announced to the router.
func testConfig(r *bgptest.Router) *config.Config {
	return &config.Config{
		BGP: config.BGP{
			ASN: 65001, RouterID: netip.MustParseAddr("198.18.1.2"),
			Peers: []config.Peer{{
				Address: r.Addr, Port: uint16(r.Port), ASN: r.ASN,
				HoldTime: 9 * time.Second, ConnectRetry: time.Second,
				LocalAddress: edgeAddr, Families: []config.Family{config.FamilyIPv4},
			}},
		},
		Checks: []config.Check{{Name: "web", Type: config.CheckTCP}},
		VIPs: []config.VIP{{
			Name: "web", Prefixes: []netip.Prefix{vip4}, Checks: []string{"web"}, Require: 1,
			Communities:      []config.Community{65001<<16 | 100},
			LargeCommunities: []config.LargeCommunity{{Global: 65001, Local1: 1, Local2: 2}},
			MED:              u32(10),
		}},
	}
}

// startAnnouncer runs an announcer with a real GoBGP speaker until the test
// ends; the returned function stops it and waits for Run to return.
func startAnnouncer(t *testing.T, cfg *config.Config) (*Announcer, func()) {
	t.Helper()
	a := New(cfg, NewGoBGP(bgptest.DiscardLogger), bgptest.DiscardLogger, Options{})
	return a, run(t, a)
}

// run runs a until the test ends; the returned function (also called at
// cleanup) stops it and waits for Run to return, failing the test on an
// error.
func run(t *testing.T, a *Announcer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestAnnounceAndWithdrawFollowCheck(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	a, _ := startAnnouncer(t, testConfig(r))

	bgptest.Eventually(t, wait, func() bool {
		st, _, _ := r.PeerState(t, edgeAddr)
		return st == "established"
	}, "session established", nil)
	if got := r.Received(t); len(got) != 0 {
		t.Fatalf("router received %v before the check rose", bgptest.Prefixes(got))
	}

	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4]; return ok },
		"VIP at router", func() string { return fmt.Sprint(bgptest.Prefixes(r.Received(t))) })
	got := r.Received(t)[vip4]
	want := bgptest.Route{
		Prefix: vip4, NextHop: "127.0.0.1", ASPath: []uint32{65001},
		Communities: []string{"65001:100"}, LargeCommunities: []string{"65001:1:2"},
		MED: u32(10), From: "127.0.0.1",
	}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); d != "" {
		t.Errorf("route at router (-want +got):\n%s", d)
	}

	a.CheckChanged(health.Event{Check: "web", Status: health.StatusDown, Last: health.Result{Err: "connection refused"}})
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 0 }, "withdrawal", nil)
	vips := a.Snapshot().VIPs
	if len(vips) != 1 || vips[0].State != "down" {
		t.Fatalf("snapshot VIPs = %+v, want web down", vips)
	}
	if want := "0 of 1 checks passing, 1 required: web is down (connection refused)"; vips[0].Reason != want {
		t.Errorf("reason = %q, want %q", vips[0].Reason, want)
	}
}

// The router announces prefixes of its own; a second router peering with
// anycastd must receive only the configured VIPs, never what the first one
// sent, whatever is in the RIB.
func TestExportOnlyConfiguredVIPs(t *testing.T) {
	r1 := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r1.AddPeer(t, edgeAddr, 65001)
	r2 := bgptest.Start(t, 65002, "198.18.0.3", netip.MustParseAddr("127.0.0.3"))
	r2.AddPeer(t, edgeAddr, 65001)
	leaked := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.99/32"), // inside the VIP range but not configured
		netip.MustParsePrefix("0.0.0.0/0"),
	}
	for _, p := range leaked {
		r1.Originate(t, p)
	}
	cfg := testConfig(r1)
	cfg.BGP.Peers = append(cfg.BGP.Peers, config.Peer{
		Address: r2.Addr, Port: uint16(r2.Port), ASN: r2.ASN, HoldTime: 9 * time.Second,
		ConnectRetry: time.Second, LocalAddress: edgeAddr, Families: []config.Family{config.FamilyIPv4},
	})
	a, _ := startAnnouncer(t, cfg)
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})

	bgptest.Eventually(t, wait, func() bool { _, ok := r2.Received(t)[vip4]; return ok }, "VIP at second router", nil)
	bgptest.Eventually(t, wait, func() bool { st, _, _ := r1.PeerState(t, edgeAddr); return st == "established" }, "first session", nil)
	// r1 has sent its prefixes by now (it is established and originated
	// them before the session came up); give GoBGP's queue one more look.
	bgptest.Eventually(t, wait, func() bool { _, ok := r1.Received(t)[vip4]; return ok }, "VIP at first router", nil)
	if got := bgptest.Prefixes(r2.Received(t)); !slices.Equal(got, []string{vip4.String()}) {
		t.Fatalf("second router received %v, want only %s", got, vip4)
	}
	if got := bgptest.Prefixes(r1.Received(t)); !slices.Equal(got, []string{vip4.String()}) {
		t.Fatalf("first router received %v back, want only %s", got, vip4)
	}
}

func TestIPv6OverIPv4SessionUsesConfiguredNextHop(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	cfg.BGP.Peers[0].Families = []config.Family{config.FamilyIPv4, config.FamilyIPv6}
	cfg.BGP.Peers[0].NextHopIPv6 = netip.MustParseAddr("2001:db8::2")
	cfg.VIPs[0].Prefixes = []netip.Prefix{vip4, vip6}
	a, _ := startAnnouncer(t, cfg)
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})

	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 2 }, "both VIPs at router",
		func() string { return fmt.Sprint(bgptest.Prefixes(r.Received(t))) })
	got := r.Received(t)
	if nh := got[vip6].NextHop; nh != "2001:db8::2" {
		t.Errorf("IPv6 next hop = %s, want 2001:db8::2", nh)
	}
	if nh := got[vip4].NextHop; nh != "127.0.0.1" {
		t.Errorf("IPv4 next hop = %s, want 127.0.0.1", nh)
	}
}

func TestIPv6Session(t *testing.T) {
	lo6 := netip.MustParseAddr("::1")
	r := bgptest.Start(t, 65000, "198.18.0.1", lo6)
	r.AddPeer(t, lo6, 65001)
	cfg := testConfig(r)
	cfg.BGP.Peers[0].LocalAddress = lo6
	cfg.BGP.Peers[0].Families = []config.Family{config.FamilyIPv6}
	cfg.VIPs[0].Prefixes = []netip.Prefix{vip6}
	a, _ := startAnnouncer(t, cfg)
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip6]; return ok }, "IPv6 VIP at router", nil)
	if nh := r.Received(t)[vip6].NextHop; nh != "::1" {
		t.Errorf("next hop = %s, want ::1 (the session's local address)", nh)
	}
}

func TestShutdownWithdrawsEverything(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	a, stop := startAnnouncer(t, testConfig(r))
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP at router", nil)
	_, before, _ := r.PeerState(t, edgeAddr)
	stop()
	// The withdrawal is an UPDATE sent before the session closes: the
	// router counts one more UPDATE from us, not just a dropped session.
	bgptest.Eventually(t, wait, func() bool {
		_, after, _ := r.PeerState(t, edgeAddr)
		return after > before && len(r.Received(t)) == 0
	}, "withdrawal UPDATE at router", func() string {
		_, after, _ := r.PeerState(t, edgeAddr)
		return fmt.Sprintf("UPDATEs %d before, %d after; routes %v", before, after, bgptest.Prefixes(r.Received(t)))
	})
}

// Starting and stopping the announcer leaves no goroutine behind (GoBGP
// v4's Serve returns once the speaker is stopped). One exception, GoBGP's
// own: v4.8.0 drains a closed session's outgoing queue without waiting
// (cleanInfiniteChannel's drainChannel returns at the first empty read), so
// when a message is still in flight inside eapache/channels' buffer
// goroutine at that moment, that goroutine blocks on its output forever.
func TestNoGoroutineLeak(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/eapache/channels.(*InfiniteChannel).infiniteBuffer")}
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	a, stop := startAnnouncer(t, testConfig(r))
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == 1 }, "VIP at router", nil)
	stop()
	r.Stop()
	goleak.VerifyNone(t, opts...)
}

// Why a session went down is kept for the log and the API.
func TestPeerDownReasonIsKept(t *testing.T) {
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	sp := NewGoBGP(bgptest.DiscardLogger)
	a := New(testConfig(r), sp, bgptest.DiscardLogger, Options{})
	run(t, a)
	bgptest.Eventually(t, wait, func() bool { st, _, _ := r.PeerState(t, edgeAddr); return st == "established" }, "session", nil)

	// The router shuts the session down with a Cease NOTIFICATION and a
	// message (a stopping GoBGP may instead just close the connection).
	r.DisablePeer(t, edgeAddr, "maintenance, ticket 42")
	bgptest.Eventually(t, wait, func() bool {
		ps, err := sp.Peers(context.Background())
		return err == nil && len(ps) == 1 && !ps[0].Established() &&
			strings.Contains(ps[0].LastError, "notification-received") && strings.Contains(ps[0].LastError, `"maintenance, ticket 42"`)
	}, "the reason the session went down, with the router's message", func() string {
		ps, _ := sp.Peers(context.Background())
		return fmt.Sprintf("%+v", ps)
	})
}

// GoBGP v4 packs withdrawals queued together into shared UPDATEs; shutdown
// still sees them leave and says nothing of withdrawals left behind.
func TestShutdownWithManyVIPsSeesWithdrawalsLeave(t *testing.T) {
	const n = 250
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, 65001)
	cfg := testConfig(r)
	var ps []netip.Prefix
	for i := range n {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 32))
	}
	cfg.VIPs[0].Prefixes = ps
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	a := New(cfg, NewGoBGP(logger), logger, Options{})
	stop := run(t, a)
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	bgptest.Eventually(t, wait, func() bool { return len(r.Received(t)) == n }, "VIPs at router", nil)
	stop()
	if strings.Contains(logs.String(), "may not all have left") {
		t.Errorf("shutdown did not see the withdrawals leave:\n%s", logs.String())
	}
}
