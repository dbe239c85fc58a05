package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/anycastd/anycastd/config"
)

// MaxOps is the most operations a Guard puts in one Session.Write (etcd's
// default --max-txn-ops is 128).
const MaxOps = 100

// Store is the coordinator behind a Guard (etcd: NewEtcdStore). Keys are
// whole keys, the key prefix included. A Store is safe for concurrent use.
type Store interface {
	// Open starts a session: a lease of ttl (whole seconds) kept alive
	// until the session is closed or revoked, or the store cannot keep it
	// (Session.Done).
	Open(ctx context.Context, ttl time.Duration) (Session, error)
	// Get reads every key under each prefix, at one revision, which it
	// returns (watch from rev+1 to miss nothing).
	Get(ctx context.Context, prefixes ...string) (kvs []KV, rev int64, err error)
	// Watch sends the changes under prefix from revision rev on, in order,
	// until ctx is done. The channel is closed when the watch ends (ctx
	// done, history compacted, store closed): Get again to resync.
	Watch(ctx context.Context, prefix string, rev int64) <-chan []KV
	// Close releases the store (its sessions stop being kept alive).
	Close() error
}

// Session is a lease in the store and what is done under it.
type Session interface {
	// Done is closed when the session is lost: the lease expired or was
	// revoked, or the store was found unreachable.
	Done() <-chan struct{}
	// Write applies ops (at most MaxOps) in one transaction; puts are
	// attached to the session's lease.
	Write(ctx context.Context, ops []Op) error
	// Lock takes the mutex whose keys live under prefix key, waiting for
	// earlier holders; unlock releases it. The lock dies with the session.
	Lock(ctx context.Context, key string) (unlock func(context.Context) error, err error)
	// Revoke ends the lease: every key written under it vanishes.
	Revoke(ctx context.Context) error
	// Close stops keeping the lease alive, without revoking it.
	Close()
}

// KV is a key and its value; Value nil: the key was deleted (Watch).
type KV struct {
	Key   string
	Value []byte
}

// Op is a put (Value) or a delete (Delete) of one key.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// EtcdStore is the etcd Store.
type EtcdStore struct {
	c       *clientv3.Client
	timeout time.Duration
}

// NewEtcdStore returns the etcd store of cfg: its endpoints, TLS, and
// Timeout as the dial timeout and the bound of a session's probe (a
// reload's timeout does not change those). It does not connect: an
// unreachable etcd shows in the first exchanges. etcd's client logs
// nothing.
func NewEtcdStore(cfg *config.Fleet) (*EtcdStore, error) {
	tlsCfg, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultFleetTimeout
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.EtcdEndpoints,
		DialTimeout: timeout,
		// gRPC pings at most every 10s (and etcd refuses more than every 5s).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: timeout,
		TLS:                  tlsCfg,
		Logger:               zap.NewNop(),
		// gRPC's default reconnect backoff grows to 120s: after an etcd
		// outage the guard would stay "coordinator lost" (and hold) for
		// up to two minutes once etcd is back. Retry at least every second.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: timeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return &EtcdStore{c: c, timeout: timeout}, nil
}

// clientTLS is the TLS configuration of cfg; nil without https endpoints.
func clientTLS(cfg *config.Fleet) (*tls.Config, error) {
	https := false
	for _, e := range cfg.EtcdEndpoints {
		if u, err := url.Parse(e); err == nil && u.Scheme == "https" {
			https = true
		}
	}
	if !https {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("fleet ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("fleet ca_file %q: no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("fleet cert_file, key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Close closes the client.
func (s *EtcdStore) Close() error { return s.c.Close() }

// Get implements Store.
func (s *EtcdStore) Get(ctx context.Context, prefixes ...string) ([]KV, int64, error) {
	ops := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		ops[i] = clientv3.OpGet(p, clientv3.WithPrefix())
	}
	resp, err := s.c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, err
	}
	var kvs []KV
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().GetKvs() {
			v := kv.Value
			if v == nil {
				v = []byte{}
			}
			kvs = append(kvs, KV{Key: string(kv.Key), Value: v})
		}
	}
	return kvs, resp.Header.Revision, nil
}

// Watch implements Store.
func (s *EtcdStore) Watch(ctx context.Context, prefix string, rev int64) <-chan []KV {
	out := make(chan []KV)
	wc := s.c.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	go func() {
		defer close(out)
		for resp := range wc {
			if resp.Canceled || resp.Err() != nil {
				return
			}
			if len(resp.Events) == 0 {
				continue
			}
			batch := make([]KV, len(resp.Events))
			for i, ev := range resp.Events {
				batch[i].Key = string(ev.Kv.Key)
				if ev.Type == clientv3.EventTypePut {
					batch[i].Value = ev.Kv.Value
					if batch[i].Value == nil {
						batch[i].Value = []byte{}
					}
				}
			}
			select {
			case out <- batch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Open implements Store. The lease is granted within ctx; it is kept alive
// until Close or Revoke. The session is Done when etcd's keep-alive ends,
// or when the connection leaves the ready state and a probe read then
// fails within the store's timeout.
func (s *EtcdStore) Open(ctx context.Context, ttl time.Duration) (Session, error) {
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	g, err := s.c.Grant(ctx, secs)
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	cs, err := concurrency.NewSession(s.c, concurrency.WithLease(g.ID), concurrency.WithContext(life))
	if err != nil {
		cancel()
		return nil, err
	}
	es := &etcdSession{s: s, cs: cs, cancel: cancel, done: make(chan struct{})}
	go es.monitor(life)
	return es, nil
}

type etcdSession struct {
	s      *EtcdStore
	cs     *concurrency.Session
	cancel context.CancelFunc
	done   chan struct{}
}

// monitor closes done when the lease's keep-alive ends or etcd cannot be
// reached.
func (es *etcdSession) monitor(life context.Context) {
	defer close(es.done)
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		conn := es.s.c.ActiveConnection()
		for {
			st := conn.GetState()
			if st != connectivity.Ready {
				ctx, cancel := context.WithTimeout(life, es.s.timeout)
				_, err := es.s.c.Get(ctx, "\x00probe", clientv3.WithCountOnly())
				cancel()
				if err != nil {
					return
				}
				if st = conn.GetState(); st == connectivity.Ready {
					continue
				}
			}
			if !conn.WaitForStateChange(life, st) {
				return
			}
		}
	}()
	select {
	case <-es.cs.Done():
	case <-lost:
	}
}

func (es *etcdSession) Done() <-chan struct{} { return es.done }

func (es *etcdSession) Write(ctx context.Context, ops []Op) error {
	if len(ops) > MaxOps {
		return fmt.Errorf("%d operations in one transaction, at most %d", len(ops), MaxOps)
	}
	xs := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		if o.Delete {
			xs[i] = clientv3.OpDelete(o.Key)
		} else {
			xs[i] = clientv3.OpPut(o.Key, string(o.Value), clientv3.WithLease(es.cs.Lease()))
		}
	}
	_, err := es.s.c.Txn(ctx).Then(xs...).Commit()
	return err
}

func (es *etcdSession) Lock(ctx context.Context, key string) (func(context.Context) error, error) {
	pfx := key
	if n := len(pfx); n > 0 && pfx[n-1] == '/' {
		pfx = pfx[:n-1] // NewMutex adds the "/"
	}
	m := concurrency.NewMutex(es.cs, pfx)
	// Mutex.Lock may block on its own clean-up when etcd is gone: bound
	// it by ctx here.
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx) }()
	select {
	case err := <-errc:
		if err != nil {
			return nil, err
		}
		return m.Unlock, nil
	case <-ctx.Done():
		go func() {
			if <-errc == nil { // taken too late: give it back
				ctx, cancel := context.WithTimeout(context.Background(), es.s.timeout)
				defer cancel()
				_ = m.Unlock(ctx)
			}
		}()
		return nil, ctx.Err()
	}
}

func (es *etcdSession) Revoke(ctx context.Context) error {
	defer es.Close()
	_, err := es.s.c.Revoke(ctx, es.cs.Lease())
	return err
}

func (es *etcdSession) Close() {
	es.cancel()
	es.cs.Orphan()
}
