package announcer

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/routes"
)

// The loop's order of operations, retries, address handling and reloads,
// against a recording fake speaker and fake addresses: milliseconds each.

// fakeConfig is VIP "web" (vip4) guarded by check "web", its address
// removed on withdrawal.
func fakeConfig() *config.Config {
	return &config.Config{
		BGP:    config.BGP{ASN: 65001, RouterID: netip.MustParseAddr("198.18.1.2")},
		Checks: []config.Check{{Name: "web", Type: config.CheckTCP}},
		VIPs: []config.VIP{{
			Name: "web", Prefixes: []netip.Prefix{vip4}, Checks: []string{"web"}, Require: 1,
			RemoveOnWithdraw: true,
		}},
	}
}

// startFake runs an announcer for cfg over a fake speaker and fake
// addresses sharing one call log. stop ends Run and waits for it.
func startFake(t *testing.T, cfg *config.Config) (a *Announcer, log *callLog, sp *fakeSpeaker, stop func()) {
	t.Helper()
	log = newCallLog()
	sp = newFakeSpeaker(log)
	a = New(cfg, sp, bgptest.DiscardLogger, Options{
		RetryInterval: 5 * time.Millisecond, FlushTimeout: 10 * time.Millisecond, Addresses: fakeAddresses{log},
	})
	stop = run(t, a)
	expectCalls(t, log, "start")
	return a, log, sp, stop
}

// expectCalls waits until the log holds at least len(want) calls since the
// last take, then takes them and compares.
func expectCalls(t *testing.T, log *callLog, want ...string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(log.peek()) < len(want) && time.Now().Before(deadline) {
		log.mu.Lock()
		ch := log.changed
		log.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
		}
	}
	if diff := cmp.Diff(want, log.take()); diff != "" {
		t.Fatalf("speaker and address calls (-want +got):\n%s", diff)
	}
}

func checkEvent(name string, s health.Status) health.Event {
	return health.Event{Check: name, Status: s}
}

// The address is on the interface before the route is announced; the path
// is deleted before the address goes; at shutdown the paths go, then BGP
// stops, then the addresses go.
func TestLoopOrderOfOperations(t *testing.T) {
	a, log, _, stop := startFake(t, fakeConfig())
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	a.CheckChanged(checkEvent("web", health.StatusDown))
	expectCalls(t, log, "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32")
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	stop()
	expectCalls(t, log, "withdraw 203.0.113.42/32", "stop", "addr close")
}

// A failed withdrawal is retried until it succeeds; the route counts as
// announced until then, and its address stays until the path is gone.
func TestLoopRetriesFailedWithdraw(t *testing.T) {
	a, log, _, _ := startFake(t, fakeConfig())
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	// The withdrawal fails until the test lets it succeed, so the snapshot
	// read below cannot race with a retry.
	log.failNext("withdraw 203.0.113.42/32", 1<<30)
	a.CheckChanged(checkEvent("web", health.StatusDown))
	expectCalls(t, log, "withdraw 203.0.113.42/32 (failed)")
	// Published after the failed withdrawal's reconcile (a second failed
	// retry is logged after it).
	expectCalls(t, log, "withdraw 203.0.113.42/32 (failed)")
	if n := len(a.Snapshot().Announced); n != 1 {
		t.Errorf("after a failed withdrawal the snapshot shows %d routes announced, want 1", n)
	}
	log.failNext("withdraw 203.0.113.42/32", 0)
	// Failed retries may still come in between; then the success, and only
	// after it the address goes.
	deadline := time.Now().Add(wait)
	var calls []string
	for time.Now().Before(deadline) {
		log.mu.Lock()
		ch := log.changed
		log.mu.Unlock()
		if calls = append(calls, log.take()...); slices.Contains(calls, "addr remove 203.0.113.42/32") {
			break
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
		}
	}
	calls = slices.DeleteFunc(calls, func(c string) bool { return c == "withdraw 203.0.113.42/32 (failed)" })
	if want := []string{"withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32"}; !slices.Equal(calls, want) {
		t.Errorf("after the failures: calls %q, want %q", calls, want)
	}
	bgptest.Eventually(t, wait, func() bool { return len(a.Snapshot().Announced) == 0 }, "route gone from the snapshot", nil)
}

// A VIP whose address cannot be added is not announced; the loop retries
// both.
func TestLoopAnnouncesOnlyOnceTheAddressIsThere(t *testing.T) {
	a, log, _, _ := startFake(t, fakeConfig())
	log.failNext("addr add 203.0.113.42/32", 1)
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32 (failed)", "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
}

// on_address_lost = "withdraw": a VIP whose address is deleted by someone
// else is withdrawn until the address is back; the default puts it back.
func TestLoopAddressLost(t *testing.T) {
	t.Run("withdraw", func(t *testing.T) {
		cfg := fakeConfig()
		cfg.VIPs[0].OnAddressLost = config.AddressLostWithdraw
		a, log, _, _ := startFake(t, cfg)
		a.CheckChanged(checkEvent("web", health.StatusUp))
		expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
		a.AddressChanged(vip4, false)
		// Withdrawn, and the address it no longer has is not removed.
		expectCalls(t, log, "withdraw 203.0.113.42/32")
		bgptest.Eventually(t, wait, func() bool {
			st := a.Snapshot().VIPs[0]
			return st.State == "down" && strings.Contains(st.Reason, "address")
		}, "VIP down for its missing address", func() string { return a.Snapshot().VIPs[0].Reason })
		a.AddressChanged(vip4, true)
		expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	})
	t.Run("restore", func(t *testing.T) {
		a, log, _, _ := startFake(t, fakeConfig())
		a.CheckChanged(checkEvent("web", health.StatusUp))
		expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
		a.AddressChanged(vip4, false)
		expectCalls(t, log, "addr add 203.0.113.42/32")
		if n := len(a.Snapshot().Announced); n != 1 {
			t.Errorf("%d routes announced after the address was restored, want 1", n)
		}
	})
}

// A reload whose speaker step fails: the new configuration is in force at
// once (the removed VIP is withdrawn and stays withdrawn, its address
// goes), nothing new is announced until the speaker has taken it, and the
// loop retries by itself.
func TestLoopFailedReloadConverges(t *testing.T) {
	cfg := fakeConfig()
	cfg.Checks = append(cfg.Checks, config.Check{Name: "db", Type: config.CheckTCP})
	cfg.VIPs = append(cfg.VIPs, config.VIP{Name: "api", Prefixes: []netip.Prefix{vip4b}, Checks: []string{"db"}, Require: 1})
	a, log, sp, _ := startFake(t, cfg)
	a.CheckChanged(checkEvent("web", health.StatusUp))
	a.CheckChanged(checkEvent("db", health.StatusUp))
	bgptest.Eventually(t, wait, func() bool { return sp.prefixes() == "203.0.113.42/32 203.0.113.43/32" }, "both VIPs announced", sp.prefixes)
	log.take()

	// The new configuration drops VIP "api" and check "db", and adds VIP
	// "v6" on check "web", which is up.
	next := fakeConfig()
	next.VIPs = append(next.VIPs, config.VIP{Name: "v6", Prefixes: []netip.Prefix{vip6}, Checks: []string{"web"}, Require: 1})
	log.failNext("configure", 1<<30)
	err := a.Reload(context.Background(), next)
	if !errors.Is(err, ErrNotConverged) {
		t.Fatalf("Reload with a failing speaker: %v, want ErrNotConverged", err)
	}
	if a.Snapshot().Config != next {
		t.Error("after the reload the snapshot's configuration is not the new one")
	}
	// A late event of the removed check changes nothing.
	a.CheckChanged(checkEvent("db", health.StatusUp))
	expectCalls(t, log, "withdraw 203.0.113.43/32", "addr remove 203.0.113.43/32", "configure (failed)", "configure (failed)")
	if got := sp.prefixes(); got != "203.0.113.42/32" {
		t.Errorf("announced while the speaker fails to take the reload: %q, want only 203.0.113.42/32", got)
	}
	log.failNext("configure", 0)
	bgptest.Eventually(t, wait, func() bool { return slices.Contains(log.peek(), "announce 2001:db8:42::1/128") }, "the new VIP announced once the speaker took the reload", nil)
	calls := log.take()
	calls = calls[slices.Index(calls, "configure"):]
	if diff := cmp.Diff([]string{"configure", "addr add 2001:db8:42::1/128", "announce 2001:db8:42::1/128"}, calls); diff != "" {
		t.Errorf("calls once the speaker took the reload (-want +got):\n%s", diff)
	}
	if got := sp.prefixes(); got != "2001:db8:42::1/128 203.0.113.42/32" {
		t.Errorf("announced once converged: %q", got)
	}
	if vips := a.Snapshot().VIPs; !slices.EqualFunc(vips, []string{"web", "v6"}, func(v routes.VIPStatus, n string) bool { return v.Name == n }) {
		t.Errorf("VIPs after the reload: %v", vips)
	}
	// Converged: a reload with no speaker failure returns nil.
	if err := a.Reload(context.Background(), next); err != nil {
		t.Errorf("second reload: %v", err)
	}
}

// A reload config.Compare refuses changes nothing.
func TestLoopRefusedReload(t *testing.T) {
	cfg := fakeConfig()
	a, log, _, _ := startFake(t, cfg)
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	bad := fakeConfig()
	bad.BGP.ASN = 65009
	bad.VIPs = nil
	if err := a.Reload(context.Background(), bad); err == nil || errors.Is(err, ErrNotConverged) {
		t.Fatalf("reload changing bgp.asn: %v, want refused", err)
	}
	if a.Snapshot().Config != cfg || len(a.Snapshot().Announced) != 1 {
		t.Error("a refused reload changed the configuration or the routes")
	}
	if calls := log.take(); len(calls) != 0 {
		t.Errorf("a refused reload made calls: %v", calls)
	}
}

// WaitDrained returns once the drain time is over and the VIP withdrawn.
func TestLoopWaitDrained(t *testing.T) {
	cfg := fakeConfig()
	cfg.Node.DrainTime = 50 * time.Millisecond
	a, log, _, _ := startFake(t, cfg)
	a.CheckChanged(checkEvent("web", health.StatusUp))
	expectCalls(t, log, "addr add 203.0.113.42/32", "announce 203.0.113.42/32")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.DrainForShutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Snapshot().Draining() {
		t.Fatal("not draining after DrainForShutdown")
	}
	if err := a.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Snapshot().Announced); n != 0 {
		t.Errorf("%d routes announced after WaitDrained, want 0", n)
	}
	expectCalls(t, log, "announce 203.0.113.42/32", "withdraw 203.0.113.42/32", "addr remove 203.0.113.42/32")
}

// vipEvents records the VIP transitions the loop reports.
type vipEvents struct {
	mu  sync.Mutex
	evs []string
}

func (r *vipEvents) CheckChanged(health.Event) {}
func (r *vipEvents) PeerChanged(PeerEvent)     {}
func (r *vipEvents) VIPChanged(ev VIPEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev.VIP+" "+string(ev.From)+">"+string(ev.To))
	r.mu.Unlock()
}

func (r *vipEvents) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// A VIP a reload removes ends with a transition to "removed", so the event
// stream and metrics see it go, not only the log.
func TestLoopReloadRemovingAVIPIsAnEvent(t *testing.T) {
	cfg := fakeConfig()
	cfg.VIPs = append(cfg.VIPs, config.VIP{Name: "api", Prefixes: []netip.Prefix{vip4b}, Checks: []string{"web"}, Require: 1})
	log := newCallLog()
	obs := &vipEvents{}
	a := New(cfg, newFakeSpeaker(log), bgptest.DiscardLogger, Options{RetryInterval: 5 * time.Millisecond, Observer: obs})
	run(t, a)
	a.CheckChanged(checkEvent("web", health.StatusUp))
	bgptest.Eventually(t, wait, func() bool { return len(a.Snapshot().Announced) == 2 }, "both VIPs announced", nil)
	if err := a.Reload(context.Background(), fakeConfig()); err != nil {
		t.Fatal(err)
	}
	want := []string{"web none>down", "api none>down", "web down>up", "api down>up", "api up>removed"}
	if got := obs.list(); !slices.Equal(got, want) {
		t.Errorf("VIP events = %q, want %q", got, want)
	}
}
