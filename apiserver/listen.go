package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
)

// SocketMode is the mode of the API's unix socket.
const SocketMode = 0o660

// controlMethods change the daemon's state; they need the unix socket or a
// verified client certificate.
var controlMethods = map[string]bool{
	pb.AnycastdService_Drain_FullMethodName:       true,
	pb.AnycastdService_Undrain_FullMethodName:     true,
	pb.AnycastdService_Reload_FullMethodName:      true,
	pb.AnycastdService_ReportCheck_FullMethodName: true,
	pb.AnycastdService_Restart_FullMethodName:     true,
}

// errReadOnly is the answer to a control call on a read-only listener.
var errReadOnly = status.Error(codes.PermissionDenied,
	"control calls need the unix socket or a client certificate: this TCP listener is read-only")

// Listeners serve a Server on the configured sockets.
type Listeners struct {
	srv     *Server
	health  *health.Server
	servers []*grpc.Server
	addrs   []net.Addr
	wg      sync.WaitGroup
	once    sync.Once
}

// Listen serves s on what c configures: the unix socket at c.Listen (its
// directory created, a stale socket file replaced, mode 0660, group
// c.Group) and TCP listeners (c.Listen if host:port, and c.TCPListen),
// with TLS if configured. Every listener also serves gRPC server
// reflection and grpc.health.v1. What clients may hold is bounded as the
// server's Limits say: the unix socket and the TCP listeners each have a
// connection cap (TCP also per source address); connections over it are
// closed at once and logged at most every 10 s.
func (s *Server) Listen(c config.API) (*Listeners, error) {
	l := &Listeners{srv: s, health: health.NewServer()}
	network, addr := c.Network()
	var tcpAddrs []string
	switch network {
	case "unix":
		ln, err := listenUnix(addr, c.Group)
		if err != nil {
			return nil, err
		}
		lim := newConnLimiter("unix", s.limits.UnixConns, 0, s.o.Logger)
		l.serve(&limitListener{Listener: ln, lim: lim}, grpc.NewServer(serverOptions(false)...))
	case "tcp":
		tcpAddrs = append(tcpAddrs, addr)
	}
	if c.TCPListen != "" {
		tcpAddrs = append(tcpAddrs, c.TCPListen)
	}
	if len(tcpAddrs) > 0 {
		creds, err := tlsCredentials(c)
		if err != nil {
			l.Stop()
			return nil, err
		}
		lim := newConnLimiter("tcp", s.limits.TCPConns, s.limits.TCPConnsPerSource, s.o.Logger)
		for _, a := range tcpAddrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				l.Stop()
				return nil, fmt.Errorf("API: %w", err)
			}
			opts := append(serverOptions(true),
				grpc.ChainUnaryInterceptor(unaryGuard), grpc.ChainStreamInterceptor(streamGuard))
			if creds != nil {
				opts = append(opts, grpc.Creds(creds))
			}
			l.serve(&limitListener{Listener: ln, lim: lim}, grpc.NewServer(opts...))
		}
	}
	l.SetHealth(true, false)
	return l, nil
}

// ReadyService is the grpc.health.v1 service name of the node's readiness
// (SetHealth); "" and anycastd.v1.AnycastdService are its liveness.
const ReadyService = "ready"

// SetHealth sets what grpc.health.v1 answers: "" and the API's service
// name are SERVING while live (the daemon's announcer loop runs; a
// Kubernetes liveness probe); ReadyService is SERVING while ready (live,
// at least one BGP session established, not stopping; a readiness probe,
// so a rolling update moves on only once the new instance is back in the
// routing). Listen starts live and not ready; after Stop every service is
// NOT_SERVING and calls are ignored.
func (l *Listeners) SetHealth(live, ready bool) {
	st := func(ok bool) healthpb.HealthCheckResponse_ServingStatus {
		if ok {
			return healthpb.HealthCheckResponse_SERVING
		}
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	l.health.SetServingStatus("", st(live))
	l.health.SetServingStatus(pb.AnycastdService_ServiceDesc.ServiceName, st(live))
	l.health.SetServingStatus(ReadyService, st(ready))
}

func (l *Listeners) serve(ln net.Listener, g *grpc.Server) {
	pb.RegisterAnycastdServiceServer(g, l.srv)
	healthpb.RegisterHealthServer(g, l.health)
	reflection.Register(g)
	l.servers = append(l.servers, g)
	l.addrs = append(l.addrs, ln.Addr())
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := g.Serve(ln); err != nil {
			l.srv.o.Logger.Error("API server failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// Addrs returns the addresses listened on: the unix socket first, if any.
func (l *Listeners) Addrs() []net.Addr { return l.addrs }

// Stop ends open event streams, finishes calls in flight (at most for a
// second) and closes the listeners; the unix socket file is removed.
func (l *Listeners) Stop() {
	l.once.Do(func() {
		close(l.srv.done)
		l.health.Shutdown()
		var wg sync.WaitGroup
		for _, g := range l.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.AfterFunc(time.Second, g.Stop)
				g.GracefulStop()
				t.Stop()
			}()
		}
		wg.Wait()
		l.wg.Wait()
	})
}

// listenUnix listens on the socket at path with SocketMode, owned by group
// if set. The directory is created if missing; a socket file nobody listens
// on any more (left by a crash: connecting is refused) is replaced, any
// other is not: one that answers, one whose listener is too busy to take
// the connection (its accept queue full), one we may not connect to.
func listenUnix(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("API socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("API socket %s: the file exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("API socket %s: another process is listening on it (is anycastd already running?)", path)
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("API socket %s: another process is listening on it but too busy to accept (is anycastd already running?): %w", path, err)
		case !errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("API socket %s: cannot tell whether it is stale, so it stays: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("API socket %s: removing the stale socket: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("API: %w", err)
	}
	err = os.Chmod(path, SocketMode)
	if err == nil && group != "" {
		var gid int
		if gid, err = config.LookupGroup(group); err == nil {
			err = os.Chown(path, -1, gid)
		}
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("API socket %s: %w", path, err)
	}
	return ln, nil
}

// tlsCredentials returns the TLS credentials of c's TCP listeners, nil for
// plain TCP. With a client CA, clients may present a certificate; a
// verified one allows control calls.
func tlsCredentials(c config.API) (credentials.TransportCredentials, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("API TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("API client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("API client CA: no PEM certificate in %s", c.ClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return credentials.NewTLS(tc), nil
}

// verifiedClient reports whether the caller presented a client certificate
// that verified against the client CA.
func verifiedClient(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(ti.State.VerifiedChains) > 0
}

// unaryGuard and streamGuard refuse control calls over TCP without a
// verified client certificate.
func unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if controlMethods[info.FullMethod] && !verifiedClient(ctx) {
		return nil, errReadOnly
	}
	return next(ctx, req)
}

func streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if controlMethods[info.FullMethod] && !verifiedClient(ss.Context()) {
		return errReadOnly
	}
	return next(srv, ss)
}
