package fleet_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// benchWait bounds every wait of BenchmarkWithdrawal (a step that takes
// longer fails the run).
const benchWait = 10 * time.Second

var (
	benchEdge   = netip.MustParseAddr("127.0.0.1") // the announcer with [fleet]
	benchSolo   = netip.MustParseAddr("127.0.0.3") // the announcer without
	benchRouter = netip.MustParseAddr("127.0.0.2")
)

// The VIPs of BenchmarkWithdrawal, one check and one prefix each.
const (
	vipGuarded = "guarded" // min_sites 1; site fra1 announces it: withdrawn once the guard permits it
	vipPlain   = "plain"   // min_sites 0, same announcer: withdrawn without asking
	vipRefused = "refused" // min_sites 1; no other site announces it: kept, guarded
	vipSolo    = "solo"    // an announcer without [fleet] at all: the baseline
)

var benchPrefix = map[string]netip.Prefix{
	vipGuarded: netip.MustParsePrefix("203.0.113.1/32"),
	vipPlain:   netip.MustParsePrefix("203.0.113.2/32"),
	vipRefused: netip.MustParsePrefix("203.0.113.3/32"),
	vipSolo:    netip.MustParsePrefix("203.0.113.4/32"),
}

// benchSide is one announcer of the benchmark, its speaker's decorator,
// and the router it announces to.
type benchSide struct {
	a    *announcer.Announcer
	sp   *timingSpeaker
	r    *bgptest.Router
	addr netip.Addr // its session's local address
}

// BenchmarkWithdrawal measures what the fleet guard adds to a withdrawal,
// in one process: an embedded etcd, in-process routers, a real announcer
// with the real GoBGP speaker (behind timingSpeaker) and a real fleet.Guard
// of site ams1 wired as the daemon wires it, a Guard of site fra1 that
// announces "guarded", and, for the baseline, a second real announcer
// without [fleet] ("solo", with a router of its own).
//
// Each iteration brings every VIP up, then sends the down events of
// "guarded", "plain" and "solo" back to back (the order cycles through all
// six, so each is first, second and third alike), then the down event of
// "refused" alone. It records the time from each CheckChanged to the
// speaker's Withdraw call for that VIP's prefix ("refused": to the Announce
// call that re-announces it guarded), and reports p50 and p99 of each in µs
// (with the guard's decision time and an etcd Get round trip, for scale);
// the table goes to the benchmark log. Run with a fixed count, e.g.
// -benchtime=1000x (make bench-fleet).
func BenchmarkWithdrawal(b *testing.B) {
	endpoint := startBenchEtcd(b)
	fleetCfg := func(site string) *config.Fleet {
		return &config.Fleet{
			EtcdEndpoints: []string{endpoint}, Site: site, Node: "edge1", KeyPrefix: "/anycastd/",
			OnCoordinatorLost: config.CoordinatorLostHold, LeaseTTL: 10 * time.Second, Timeout: 2 * time.Second,
		}
	}

	r := bgptest.Start(b, 65000, "198.18.0.1", benchRouter)
	r.AddPeer(b, benchEdge, 65001)
	// The baseline's own router: nothing is relayed between the two.
	rSolo := bgptest.Start(b, 65000, "198.18.0.2", benchRouter)
	rSolo.AddPeer(b, benchSolo, 65002)

	// Site fra1 announces "guarded", so ams1's floor (1) permits withdrawing it.
	fra := startBenchGuard(b, fleetCfg("fra1"), func(fleet.Verdict) {})
	fra.Report(vipGuarded, routes.StateUp, time.Now(), "")

	// Site ams1: the guard wired to the announcer as internal/daemon does.
	cfg := benchConfig(r, benchEdge, 65001, "198.18.1.2", map[string]int{vipGuarded: 1, vipPlain: 0, vipRefused: 1})
	cfg.Fleet = fleetCfg("ams1")
	var (
		edge   = benchSide{r: r, addr: benchEdge}
		tookMu sync.Mutex
		took   = map[string][]time.Duration{} // guard decision times by verdict
	)
	ams := startBenchGuard(b, cfg.Fleet, func(v fleet.Verdict) {
		kind := "permitted"
		if v.Guarded {
			kind = "guarded"
		}
		tookMu.Lock()
		took[kind] = append(took[kind], v.Took)
		tookMu.Unlock()
		edge.a.FleetVerdict(v)
	})
	edge.sp = newTimingSpeaker(announcer.NewGoBGP(bgptest.DiscardLogger))
	edge.a = announcer.New(cfg, edge.sp, bgptest.DiscardLogger, announcer.Options{Fleet: ams})
	runAnnouncer(b, edge.a)

	solo := benchSide{sp: newTimingSpeaker(announcer.NewGoBGP(bgptest.DiscardLogger)), r: rSolo, addr: benchSolo}
	solo.a = announcer.New(benchConfig(rSolo, benchSolo, 65002, "198.18.1.3", map[string]int{vipSolo: 0}),
		solo.sp, bgptest.DiscardLogger, announcer.Options{})
	runAnnouncer(b, solo.a)

	getStore, err := fleet.NewEtcdStore(cfg.Fleet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = getStore.Close() })

	for _, s := range []benchSide{edge, solo} {
		bgptest.Eventually(b, benchWait, func() bool { st, _, _ := s.r.PeerState(b, s.addr); return st == "established" },
			"BGP session with "+s.addr.String()+" established", nil)
	}
	waitView(b, ams, "ams1 sees fra1 announcing "+vipGuarded, func(v fleet.View) bool {
		return entryState(v, vipGuarded, "fra1") == routes.StateUp
	})

	sides := map[string]benchSide{vipGuarded: edge, vipPlain: edge, vipRefused: edge, vipSolo: solo}
	all := []string{vipGuarded, vipPlain, vipRefused, vipSolo}
	orders := [][]string{
		{vipGuarded, vipPlain, vipSolo}, {vipPlain, vipSolo, vipGuarded}, {vipSolo, vipGuarded, vipPlain},
		{vipGuarded, vipSolo, vipPlain}, {vipSolo, vipPlain, vipGuarded}, {vipPlain, vipGuarded, vipSolo},
	}
	lat := map[string][]time.Duration{}
	byPos := map[string][]time.Duration{} // "plain#1": plain's latencies when sent first
	var etcdGet []time.Duration
	down := func(vip string) time.Time {
		t0 := time.Now()
		sides[vip].a.CheckChanged(health.Event{Check: vip, From: health.StatusUp, Status: health.StatusDown})
		return t0
	}
	i := 0
	for b.Loop() {
		// Up: every VIP announced with its normal attributes, at the
		// router, and ams1's entries in etcd say up.
		upAt := time.Now()
		for _, vip := range all {
			sides[vip].a.CheckChanged(health.Event{Check: vip, From: health.StatusDown, Status: health.StatusUp})
		}
		for _, vip := range all {
			rt := sides[vip].sp.wait(b, "announce", benchPrefix[vip], upAt)
			if rt.Prepend != 0 {
				b.Fatalf("%s announced up with prepend %d, want 0", vip, rt.Prepend)
			}
		}
		settle(b, []benchSide{edge, solo}, ams, map[string]routes.State{
			vipGuarded: routes.StateUp, vipPlain: routes.StateUp, vipRefused: routes.StateUp, vipSolo: routes.StateUp})

		// etcd's own round trip, for scale, while everything is idle.
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), benchWait)
		_, _, err := getStore.Get(ctx, "/anycastd/vips/"+vipGuarded+"/")
		cancel()
		if err != nil {
			b.Fatalf("etcd Get: %v", err)
		}
		etcdGet = append(etcdGet, time.Since(t0))

		// Guarded, plain and solo, back to back.
		order := orders[i%len(orders)]
		i++
		sent := map[string]time.Time{}
		for _, vip := range order {
			sent[vip] = down(vip)
		}
		for pos, vip := range order {
			sp := sides[vip].sp
			sp.wait(b, "withdraw", benchPrefix[vip], sent[vip])
			d := sp.at("withdraw", benchPrefix[vip]).Sub(sent[vip])
			lat[vip] = append(lat[vip], d)
			byPos[fmt.Sprintf("%s#%d", vip, pos+1)] = append(byPos[fmt.Sprintf("%s#%d", vip, pos+1)], d)
		}
		settle(b, []benchSide{edge, solo}, ams, map[string]routes.State{
			vipGuarded: routes.StateDown, vipPlain: routes.StateDown, vipRefused: routes.StateUp, vipSolo: routes.StateDown})

		// Refused: kept announced, degraded (replaced with the guarded
		// prepend), never withdrawn.
		t0 = down(vipRefused)
		rt := edge.sp.wait(b, "announce", benchPrefix[vipRefused], t0)
		lat[vipRefused] = append(lat[vipRefused], edge.sp.at("announce", benchPrefix[vipRefused]).Sub(t0))
		if rt.Prepend != routes.GuardedPrepend {
			b.Fatalf("%s re-announced with prepend %d, want the guarded %d", vipRefused, rt.Prepend, routes.GuardedPrepend)
		}
		settle(b, []benchSide{edge, solo}, ams, map[string]routes.State{
			vipGuarded: routes.StateDown, vipPlain: routes.StateDown, vipRefused: routes.StateGuarded, vipSolo: routes.StateDown})
		if w := edge.sp.at("withdraw", benchPrefix[vipRefused]); !w.IsZero() {
			b.Fatalf("%s was withdrawn at %v although no other site announces it", vipRefused, w)
		}
	}
	b.StopTimer()
	// Everything withdrawn (a definite failure needs no verdict) before
	// the routers and the announcers stop.
	for _, vip := range all {
		sides[vip].a.CheckChanged(health.Event{Check: vip, From: health.StatusUp, Status: health.StatusDown,
			Last: health.Result{Err: "benchmark over", Definite: true}})
	}
	settle(b, []benchSide{edge, solo}, ams, map[string]routes.State{
		vipGuarded: routes.StateDown, vipPlain: routes.StateDown, vipRefused: routes.StateDown, vipSolo: routes.StateDown})
	// The routers stop here, everything withdrawn (their cleanups' second
	// Stop does nothing), then the announcers. Whatever the order, GoBGP
	// v4.8.0 (eapache/channels InfiniteChannel, drained without waiting)
	// may leave a peer's outgoing-queue goroutine behind, which the
	// package's goleak check then reports after the figures.
	r.Stop()
	rSolo.Stop()

	tookMu.Lock()
	defer tookMu.Unlock()
	type row struct {
		name, what string
		d          []time.Duration
	}
	rows := []row{
		{vipGuarded, "CheckChanged → Withdraw; min_sites 1, permitted", lat[vipGuarded]},
		{vipPlain, "CheckChanged → Withdraw; min_sites 0, same announcer", lat[vipPlain]},
		{vipSolo, "CheckChanged → Withdraw; announcer without [fleet]", lat[vipSolo]},
		{vipRefused, "CheckChanged → Announce (guarded); min_sites 1, refused", lat[vipRefused]},
		{"decision-permitted", "the guard's lock+read+write+unlock (Verdict.Took)", took["permitted"]},
		{"decision-guarded", "the guard's lock+read+write+unlock (Verdict.Took)", took["guarded"]},
		{"etcd-get", "one etcd Get (txn) round trip, idle", etcdGet},
	}
	for _, vip := range []string{vipGuarded, vipPlain, vipSolo} {
		for pos := 1; pos <= 3; pos++ {
			k := fmt.Sprintf("%s#%d", vip, pos)
			rows = append(rows, row{k, fmt.Sprintf("%s, sent %d of 3", vip, pos), byPos[k]})
		}
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "\n%-20s %6s %10s %10s %10s  %s\n", "case", "n", "p50 µs", "p99 µs", "max µs", "what")
	for _, rw := range rows {
		p50, p99, mx := quantile(rw.d, 0.50), quantile(rw.d, 0.99), quantile(rw.d, 1)
		fmt.Fprintf(&tb, "%-20s %6d %10.0f %10.0f %10.0f  %s\n", rw.name, len(rw.d), micros(p50), micros(p99), micros(mx), rw.what)
		switch rw.name {
		case vipGuarded, vipPlain, vipSolo, vipRefused:
			b.ReportMetric(micros(p50), rw.name+"-p50-µs")
			b.ReportMetric(micros(p99), rw.name+"-p99-µs")
		case "etcd-get":
			b.ReportMetric(micros(p50), rw.name+"-p50-µs")
		}
	}
	fmt.Fprintf(&tb, "p50 guarded − plain: %.0f µs; plain − solo: %.0f µs\n",
		micros(quantile(lat[vipGuarded], 0.5)-quantile(lat[vipPlain], 0.5)),
		micros(quantile(lat[vipPlain], 0.5)-quantile(lat[vipSolo], 0.5)))
	b.Logf("%s", tb.String())
}

// benchConfig is an announcer's configuration: one eBGP session from
// local (asn) to r, and the VIPs with their min_sites, each with its own
// check.
func benchConfig(r *bgptest.Router, local netip.Addr, asn uint32, routerID string, vips map[string]int) *config.Config {
	cfg := &config.Config{
		BGP: config.BGP{
			ASN: asn, RouterID: netip.MustParseAddr(routerID),
			Peers: []config.Peer{{
				Address: r.Addr, Port: uint16(r.Port), ASN: r.ASN,
				HoldTime: 9 * time.Second, ConnectRetry: time.Second,
				LocalAddress: local, Families: []config.Family{config.FamilyIPv4},
			}},
		},
	}
	for _, vip := range slices.Sorted(maps.Keys(vips)) {
		cfg.Checks = append(cfg.Checks, config.Check{Name: vip, Type: config.CheckTCP})
		cfg.VIPs = append(cfg.VIPs, config.VIP{
			Name: vip, Prefixes: []netip.Prefix{benchPrefix[vip]}, Checks: []string{vip}, Require: 1, MinSites: vips[vip],
		})
	}
	return cfg
}

// settle waits until the announcers' VIPs are in the states want (and
// announced exactly when they count as announcing), the router holds
// exactly those prefixes, and ams1's own entries in its fleet view (for
// the VIPs it has) say so: nothing is in flight when the next step starts.
func settle(b *testing.B, sides []benchSide, g *fleet.Guard, want map[string]routes.State) {
	b.Helper()
	var at []string
	for vip, st := range want {
		if (fleet.Entry{State: st}).Announcing() {
			at = append(at, benchPrefix[vip].String())
		}
	}
	slices.Sort(at)
	deadline := time.Now().Add(benchWait)
	for {
		var vips []routes.VIPStatus
		var ann, got []string
		for _, s := range sides {
			snap := s.a.Snapshot()
			vips = append(vips, snap.VIPs...)
			for _, rt := range snap.Announced {
				ann = append(ann, rt.Prefix.String())
			}
			got = append(got, bgptest.Prefixes(s.r.Received(b))...)
		}
		slices.Sort(ann)
		slices.Sort(got)
		ok := len(vips) == len(want)
		for _, v := range vips {
			ok = ok && v.State == want[v.Name]
		}
		ok = ok && slices.Equal(ann, at) && slices.Equal(got, at)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not settled within %s: want %v; announcers %+v, announced %v, router %v",
				benchWait, want, vips, ann, got)
		}
		time.Sleep(time.Millisecond)
	}
	waitView(b, g, fmt.Sprintf("ams1's entries in etcd %v", want), func(v fleet.View) bool {
		for vip, st := range want {
			if vip != vipSolo && entryState(v, vip, "ams1") != st {
				return false
			}
		}
		return true
	})
}

// entryState is the state of site's entry for vip in v ("" when none).
func entryState(v fleet.View, vip, site string) routes.State {
	for _, e := range v.Entries {
		if e.VIP == vip && e.Site == site {
			return e.State
		}
	}
	return ""
}

// waitView waits until g's fleet view satisfies ok.
func waitView(b *testing.B, g *fleet.Guard, what string, ok func(fleet.View) bool) {
	b.Helper()
	timer := time.NewTimer(benchWait)
	defer timer.Stop()
	for {
		v, changed := g.WatchView()
		if ok(v) {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			b.Fatalf("not within %s: %s; view %+v", benchWait, what, v.Entries)
		}
	}
}

// quantile is the nearest-rank q-quantile of ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// timingSpeaker is a decorator: every call goes to the real speaker; it
// also records when Announce and Withdraw were called for each prefix (at
// the call, before the real speaker runs) and what was announced.
type timingSpeaker struct {
	announcer.Speaker
	mu      sync.Mutex
	calls   map[string]map[netip.Prefix]time.Time // "announce"/"withdraw" → prefix → last call
	routes  map[netip.Prefix]routes.Route         // the last route announced per prefix
	changed chan struct{}                         // closed and replaced on every call
}

func newTimingSpeaker(s announcer.Speaker) *timingSpeaker {
	return &timingSpeaker{Speaker: s,
		calls:   map[string]map[netip.Prefix]time.Time{"announce": {}, "withdraw": {}},
		routes:  map[netip.Prefix]routes.Route{},
		changed: make(chan struct{}),
	}
}

func (s *timingSpeaker) Announce(ctx context.Context, rs ...routes.Route) error {
	now := time.Now()
	s.mu.Lock()
	for _, r := range rs {
		s.calls["announce"][r.Prefix] = now
		s.routes[r.Prefix] = r
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return s.Speaker.Announce(ctx, rs...)
}

func (s *timingSpeaker) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	now := time.Now()
	s.mu.Lock()
	for _, p := range prefixes {
		s.calls["withdraw"][p] = now
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return s.Speaker.Withdraw(ctx, prefixes...)
}

// at is when kind ("announce" or "withdraw") was last called for p.
func (s *timingSpeaker) at(kind string, p netip.Prefix) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind][p]
}

// wait waits until kind was called for p at or after since, and returns
// the last route announced for p.
func (s *timingSpeaker) wait(b *testing.B, kind string, p netip.Prefix, since time.Time) routes.Route {
	b.Helper()
	timer := time.NewTimer(benchWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		at, rt, changed := s.calls[kind][p], s.routes[p], s.changed
		s.mu.Unlock()
		if !at.Before(since) {
			return rt
		}
		select {
		case <-changed:
		case <-timer.C:
			b.Fatalf("no %s of %s within %s", kind, p, benchWait)
		}
	}
}

// startBenchEtcd starts an embedded etcd on 127.0.0.1 (ports chosen by the
// kernel) in a temporary directory, stopped at the end of the benchmark,
// and returns its client URL.
func startBenchEtcd(b *testing.B) string {
	b.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "bench"
	cfg.Dir = b.TempDir()
	cu, _ := url.Parse("http://127.0.0.1:0")
	pu, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		b.Fatalf("starting etcd: %v", err)
	}
	b.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(benchWait):
		b.Fatalf("etcd not ready within %s", benchWait)
	}
	return "http://" + e.Clients[0].Addr().String()
}

// startBenchGuard runs a fleet.Guard for fc with its own etcd client until
// the end of the benchmark (then its lease is revoked and its client
// closed).
func startBenchGuard(b *testing.B, fc *config.Fleet, onVerdict func(fleet.Verdict)) *fleet.Guard {
	b.Helper()
	st, err := fleet.NewEtcdStore(fc)
	if err != nil {
		b.Fatal(err)
	}
	g := fleet.New(fc, st, fleet.Options{OnVerdict: onVerdict, OnDrainSlot: func(fleet.DrainSlotEvent) {}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("guard %s: Run: %v", fc.Site, err)
		}
		_ = st.Close()
	})
	return g
}

// runAnnouncer runs a until the end of the benchmark (before the guards
// and etcd stop: cleanups run last-registered first).
func runAnnouncer(b *testing.B, a *announcer.Announcer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("announcer: Run: %v", err)
		}
	})
}
