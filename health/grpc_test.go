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

	// Keys formatted with the CA file, the client certificate and key files.
	for _, tc := range []struct {
		name string
		addr string
		keys string
		want string
	}{
		{"ca_file", addr, "tls = true\nca_file = %[2]q", ""},
		{"server name", addr, "tls = true\nca_file = %[2]q\ntls_server_name = 'web.internal'", ""},
		{"wrong server name", addr, "tls = true\nca_file = %[2]q\ntls_server_name = 'db.internal'", "~code = Unavailable"},
		{"unknown authority", addr, "tls = true", "~certificate signed by unknown authority"},
		{"insecure", addr, "tls = true\ninsecure_skip_verify = true", ""},
		{"plaintext against tls", addr, "", "~code = Unavailable"},
		{"client certificate", mtls.Addr().String(), "tls = true\nca_file = %[2]q\ncert_file = %[3]q\nkey_file = %[4]q", ""},
		{"no client certificate", mtls.Addr().String(), "tls = true\nca_file = %[2]q", "~code = Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "type = 'grpc'\naddress = %[1]q\n"+tc.keys, tc.addr, pki.caFile, pki.clientCert, pki.clientKey)
			wantCheck(t, mustChecker(t, c), tc.want)
		})
	}
}
