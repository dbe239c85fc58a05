package fleet

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// etcdServer is an embedded etcd on 127.0.0.1.
type etcdServer struct {
	t                  testing.TB
	dir                string
	clientURL, peerURL string
	e                  *embed.Etcd
	tls                *transport.TLSInfo // client TLS, with an https clientURL
}

// freeURL returns an http URL on a free port of 127.0.0.1.
func freeURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// startEtcd starts an embedded etcd in its own directory; it stops with
// the test.
func startEtcd(t testing.TB) *etcdServer {
	s := newEtcd(t)
	s.start()
	return s
}

// newEtcd returns an embedded etcd not started yet; it stops with the test.
func newEtcd(t testing.TB) *etcdServer {
	s := &etcdServer{t: t, dir: t.TempDir(), clientURL: freeURL(t), peerURL: freeURL(t)}
	t.Cleanup(s.stop)
	return s
}

// start starts (or restarts) the server on its directory and ports.
func (s *etcdServer) start() {
	s.t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = s.dir
	cu, _ := url.Parse(s.clientURL)
	pu, _ := url.Parse(s.peerURL)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + s.peerURL
	if s.tls != nil {
		cfg.ClientTLSInfo = *s.tls
	}
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	var err error
	for range 50 { // the ports may linger a moment after a stop
		if s.e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("starting etcd: %v", err)
	}
	select {
	case <-s.e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		s.t.Fatal("etcd not ready within 20s")
	}
}

func (s *etcdServer) stop() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// fleetCfg is a [fleet] for the test server.
func (s *etcdServer) fleetCfg(site, node string) *config.Fleet {
	return &config.Fleet{
		EtcdEndpoints:     []string{s.clientURL},
		Site:              site,
		Node:              node,
		KeyPrefix:         "/anycastd/",
		OnCoordinatorLost: config.CoordinatorLostHold,
		LeaseTTL:          2 * time.Second,
		Timeout:           time.Second,
	}
}

// countingStore counts the transactions written through its sessions.
type countingStore struct {
	Store
	writes atomic.Int64
}

func (c *countingStore) Open(ctx context.Context, ttl time.Duration) (Session, error) {
	s, err := c.Store.Open(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return countingSession{s, &c.writes}, nil
}

type countingSession struct {
	Session
	n *atomic.Int64
}

func (c countingSession) Write(ctx context.Context, ops []Op) error {
	c.n.Add(1)
	return c.Session.Write(ctx, ops)
}

// node is a Guard with its own etcd client, recording what it is told;
// it applies its verdicts as the announcer does: guarded → Report
// guarded, permitted → Report down.
type node struct {
	t      testing.TB
	cfg    *config.Fleet
	g      *Guard
	store  *EtcdStore
	count  *countingStore
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	log      strings.Builder    // the guard's log (text)
	seq      map[string]uint64  // engaged VIPs' seq (0: not engaged)
	verdicts map[string]Verdict // the last one per VIP
	drains   []DrainSlotEvent
	// quiet: verdicts are not reported back as the VIP's state (as the
	// announcer does not when the state stays, e.g. held)
	quiet bool
}

func startNode(t testing.TB, cfg *config.Fleet) *node {
	t.Helper()
	st, err := NewEtcdStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cfg: cfg, store: st, count: &countingStore{Store: st}, done: make(chan struct{}),
		seq: map[string]uint64{}, verdicts: map[string]Verdict{}}
	logger := slog.New(slog.NewTextHandler(lockedWriter{n}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n.g = New(cfg, n.count, Options{OnVerdict: n.onVerdict, OnDrainSlot: n.onDrain, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.done)
		if err := n.g.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(n.stop)
	return n
}

type lockedWriter struct{ n *node }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	return w.n.log.Write(b)
}

// logLines returns the lines of n's log containing all of subs.
func (n *node) logLines(subs ...string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for l := range strings.Lines(n.log.String()) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func (n *node) stop() {
	n.cancel()
	<-n.done
	n.store.Close()
}

// kill stops the node without revoking its lease (its client closes first).
func (n *node) kill() {
	n.store.Close()
	n.cancel()
	<-n.done
}

func (n *node) onVerdict(v Verdict) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seq[v.VIP] != v.Seq {
		n.t.Errorf("%s: verdict of seq %d, engaged %d: %+v", n.cfg.Node, v.Seq, n.seq[v.VIP], v)
		return
	}
	n.verdicts[v.VIP] = v
	if n.quiet {
		return
	}
	st := routes.StateDown
	if v.Guarded {
		st = routes.StateGuarded
	}
	n.g.Report(v.VIP, st, time.Now(), v.Reason)
}

func (n *node) onDrain(ev DrainSlotEvent) {
	n.mu.Lock()
	n.drains = append(n.drains, ev)
	n.mu.Unlock()
}

func (n *node) engage(vip string, minSites int) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	seq := n.g.Engage(vip, minSites)
	n.seq[vip] = seq
	delete(n.verdicts, vip)
	return seq
}

// recover disengages vip and reports it up.
func (n *node) recover(vip string) {
	n.mu.Lock()
	n.g.Disengage(vip)
	n.seq[vip] = 0
	delete(n.verdicts, vip)
	n.mu.Unlock()
	n.g.Report(vip, routes.StateUp, time.Now(), "")
}

func (n *node) verdict(vip string) (Verdict, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.verdicts[vip]
	return v, ok
}

func (n *node) lastDrain() (DrainSlotEvent, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.drains) == 0 {
		return DrainSlotEvent{}, false
	}
	return n.drains[len(n.drains)-1], true
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitVerdict waits for vip's verdict at n that satisfies ok.
func (n *node) waitVerdict(vip string, d time.Duration, what string, ok func(Verdict) bool) Verdict {
	n.t.Helper()
	var v Verdict
	waitFor(n.t, d, n.cfg.Node+": "+what, func() bool {
		var has bool
		v, has = n.verdict(vip)
		return has && ok(v)
	})
	return v
}

// waitSites waits until n's view has want sites announcing vip.
func (n *node) waitSites(vip string, want int) {
	n.t.Helper()
	waitFor(n.t, 10*time.Second, n.cfg.Node+" sees sites announcing "+vip, func() bool {
		a, _ := n.g.View().Sites(vip)
		return a == want
	})
}
