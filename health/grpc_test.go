package health

import (
	"net"
	"testing"

	"github.com/anycastd/anycastd/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startGRPC serves the standard health service on ln until the test ends.
func startGRPC(t *testing.T, ln net.Listener, opts ...grpc.ServerOption) *health.Server {
	t.Helper()
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return hs
}

func grpcCheck(t *testing.T, c config.GRPCCheck) Checker {
	t.Helper()
	return mustChecker(t, config.Check{Type: config.CheckGRPC, GRPC: &c})
}

func TestGRPCChecker(t *testing.T) {
	ln := listen(t)
	hs := startGRPC(t, ln)
	addr := ln.Addr().String()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)

	server := grpcCheck(t, config.GRPCCheck{Address: addr})
	orders := grpcCheck(t, config.GRPCCheck{Address: addr, Service: "orders"})
	wantCheck(t, server, "")
	wantCheck(t, orders, "")

	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_NOT_SERVING)
	wantCheck(t, orders, `service "orders" is NOT_SERVING`)
	wantCheck(t, server, "")
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	wantCheck(t, orders, "")

	hs.Shutdown() // everything NOT_SERVING, as a server does while it drains
	wantCheck(t, server, `service "" is NOT_SERVING`)
	wantCheck(t, orders, `service "orders" is NOT_SERVING`)
	hs.Resume()
	wantCheck(t, server, "")

	wantCheck(t, grpcCheck(t, config.GRPCCheck{Address: addr, Service: "unknown"}), "~code = NotFound")

	noHealth := listen(t)
	srv := grpc.NewServer() // no health service registered
	go srv.Serve(noHealth)
	defer srv.Stop()
	wantCheck(t, grpcCheck(t, config.GRPCCheck{Address: noHealth.Addr().String()}), "~code = Unimplemented")

	gone := listen(t)
	goneAddr := gone.Addr().String()
	gone.Close()
	wantCheck(t, grpcCheck(t, config.GRPCCheck{Address: goneAddr}), "~code = Unavailable")
}

func TestGRPCCheckerTLS(t *testing.T) {
	pki := newTestPKI(t)
	ln := listen(t)
	startGRPC(t, ln, grpc.Creds(credentials.NewTLS(pki.serverConfig(false))))
	addr := ln.Addr().String()
	mtls := listen(t)
	startGRPC(t, mtls, grpc.Creds(credentials.NewTLS(pki.serverConfig(true))))

	for _, tc := range []struct {
		name string
		c    config.GRPCCheck
		want string
	}{
		{"ca_file", config.GRPCCheck{Address: addr, TLS: &config.TLSClient{CAFile: pki.caFile}}, ""},
		{"server name", config.GRPCCheck{Address: addr, TLS: &config.TLSClient{CAFile: pki.caFile, ServerName: "web.internal"}}, ""},
		{"wrong server name", config.GRPCCheck{Address: addr,
			TLS: &config.TLSClient{CAFile: pki.caFile, ServerName: "db.internal"}}, "~code = Unavailable"},
		{"unknown authority", config.GRPCCheck{Address: addr, TLS: &config.TLSClient{}}, "~certificate signed by unknown authority"},
		{"insecure", config.GRPCCheck{Address: addr, TLS: &config.TLSClient{InsecureSkipVerify: true}}, ""},
		{"plaintext against tls", config.GRPCCheck{Address: addr}, "~code = Unavailable"},
		{"client certificate", config.GRPCCheck{Address: mtls.Addr().String(), TLS: &config.TLSClient{
			CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}}, ""},
		{"no client certificate", config.GRPCCheck{Address: mtls.Addr().String(),
			TLS: &config.TLSClient{CAFile: pki.caFile}}, "~code = Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCheck(t, grpcCheck(t, tc.c), tc.want) })
	}
}
