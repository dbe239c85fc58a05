package health

import (
	"context"
	"fmt"

	"github.com/anycastd/anycastd/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcChecker passes when grpc.health.v1.Health/Check for service answers
// SERVING.
//
// Every probe opens a new connection and closes it afterwards (as
// Kubernetes' gRPC probes do): a long-lived ClientConn would reconnect with
// exponential backoff after the server went away, so a recovered server
// could go unnoticed for up to two minutes, and each check would keep
// goroutines and a socket between probes.
type grpcChecker struct {
	target  string
	service string
	creds   credentials.TransportCredentials
}

func newGRPCChecker(c config.GRPCCheck) (*grpcChecker, error) {
	g := &grpcChecker{
		// passthrough: the dialer resolves the host itself, once per
		// connection, without a resolver goroutine.
		target:  "passthrough:///" + c.Address,
		service: c.Service,
		creds:   insecure.NewCredentials(),
	}
	if c.TLS != nil {
		cfg, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		g.creds = credentials.NewTLS(cfg)
	}
	return g, nil
}

// Check implements Checker.
func (g *grpcChecker) Check(ctx context.Context) error {
	conn, err := grpc.NewClient(g.target,
		grpc.WithTransportCredentials(g.creds),
		grpc.WithUserAgent("anycastd-health-check"),
		grpc.WithNoProxy(),
	)
	if err != nil {
		return fmt.Errorf("%w: grpc client: %w", ErrCannotRun, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.service})
	if err != nil {
		return fmt.Errorf("health rpc: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service %q is %s", g.service, s)
	}
	return nil
}
