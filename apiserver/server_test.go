package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/anycastd/anycastd/announcer"
	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/testutil"
	"github.com/anycastd/anycastd/routes"
)

const testConfig = `
[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
families = ["ipv4", "ipv6"]
next_hop_ipv6 = "2001:db8::2"

[[check]]
name = "web"
type = "http"
url = "http://127.0.0.1:8080/healthz"

[[vip]]
name = "web"
prefixes = ["203.0.113.42/32", "2001:db8:42::1/128"]
checks = ["web"]
communities = ["65001:100"]
`

// fakeAnnouncer records control calls.
type fakeAnnouncer struct {
	mu    sync.Mutex
	snap  announcer.Snapshot
	calls []string
}

func (f *fakeAnnouncer) Snapshot() announcer.Snapshot { return f.snap }

func (f *fakeAnnouncer) Drain(_ context.Context, vip, reason string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("drain %q %q %s", vip, reason, d))
	return nil
}

func (f *fakeAnnouncer) Undrain(_ context.Context, vip string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("undrain %q", vip))
	return nil
}

func (f *fakeAnnouncer) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type fakeSpeaker struct{}

func (fakeSpeaker) PeerDetails(context.Context) ([]announcer.PeerDetail, error) {
	return []announcer.PeerDetail{{PeerStatus: announcer.PeerStatus{
		Address: netip.MustParseAddr("198.18.1.1"), ASN: 65000, State: "active",
	}}}, nil
}

func (fakeSpeaker) AdvertisedRoutes(context.Context, netip.Addr) ([]announcer.AdvertisedRoute, error) {
	return nil, errors.New("not established")
}

// testServer returns a Server over fakes, listening as api says (a unix
// socket in a temporary directory unless api says otherwise).
func testServer(t *testing.T, api config.API, opts Options) (*fakeAnnouncer, *Listeners) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	ann := &fakeAnnouncer{snap: announcer.Snapshot{VIPs: []routes.VIPStatus{{
		Name: "web", State: routes.StateDown, Reason: "0 of 1 checks passing, 1 required: web has not risen yet", Require: 1,
	}}}}
	opts.Config = func() *config.Config { return cfg }
	opts.Announcer = ann
	opts.Checks = func() []health.CheckState { return nil }
	opts.Speaker = fakeSpeaker{}
	if api.Listen == "" {
		api.Listen = "unix://" + shortSocket(t)
	}
	l, err := New(opts).Listen(api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return ann, l
}

// shortSocket returns a socket path in a new directory; unix socket paths
// are limited to about 100 bytes, which t.TempDir() may exceed.
func shortSocket(t *testing.T) string {
	dir, err := os.MkdirTemp("", "acd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "sub", "api.sock")
}

func client(t *testing.T, target string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func unixTarget(l *Listeners) string { return "unix://" + l.Addrs()[0].String() }

func TestUnixSocketModeAndStaleFile(t *testing.T) {
	path := shortSocket(t)
	_, l := testServer(t, config.API{Listen: "unix://" + path}, Options{})
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != SocketMode {
		t.Fatalf("socket: %v %v, want a socket with mode %o", fi, err, SocketMode)
	}
	// A second server on the same live socket refuses to start.
	if _, err := New(Options{}).Listen(config.API{Listen: "unix://" + path}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	l.Stop()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after Stop: %v", err)
	}

	// A stale socket (nobody listening, as after a crash) is replaced.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, l = testServer(t, config.API{Listen: "unix://" + path}, Options{})
	if _, err := healthpb.NewHealthClient(client(t, unixTarget(l), nil)).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health over the replaced socket: %v", err)
	}
	l.Stop()

	// A file that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{}).Listen(config.API{Listen: "unix://" + path}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listener over a regular file: %v", err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	_, l := testServer(t, config.API{}, Options{})
	conn := client(t, unixTarget(l), nil)
	ctx := context.Background()
	for _, svc := range []string{"", "anycastd.v1.AnycastdService"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, resp, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "anycastd.v1.AnycastdService") {
		t.Errorf("reflection lists %v", names)
	}
}

func TestControlArguments(t *testing.T) {
	reloadErr := errors.New("vip \"x\": prefixes is required (line 3)")
	reloads := 0
	ann, l := testServer(t, config.API{}, Options{Reload: func(context.Context) ([]string, error) {
		reloads++
		switch reloads {
		case 1:
			return []string{`removing VIP "dns" here leaves 1 site announcing it fleet-wide (fra1), below its min_sites 2`}, nil
		case 2:
			return nil, reloadErr
		}
		return nil, fmt.Errorf("%w: adding peer 198.18.1.1: timeout", announcer.ErrNotConverged)
	}})
	c := pb.NewAnycastdServiceClient(client(t, unixTarget(l), nil))
	ctx := context.Background()
	tests := []struct {
		req  *pb.DrainRequest
		code codes.Code
	}{
		{&pb.DrainRequest{Vip: "web", Reason: "upgrade", Duration: durationpb.New(time.Minute)}, codes.OK},
		{&pb.DrainRequest{All: true}, codes.OK},
		{&pb.DrainRequest{Vip: "nope"}, codes.NotFound},
		{&pb.DrainRequest{}, codes.InvalidArgument},
		{&pb.DrainRequest{Vip: "web", All: true}, codes.InvalidArgument},
		{&pb.DrainRequest{Vip: "web", Reason: "two\nlines"}, codes.InvalidArgument},
		{&pb.DrainRequest{Vip: "web", Reason: strings.Repeat("x", 300)}, codes.InvalidArgument},
		{&pb.DrainRequest{Vip: "web", Duration: durationpb.New(-time.Second)}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		if _, err := c.Drain(ctx, tt.req); status.Code(err) != tt.code {
			t.Errorf("Drain(%v) = %v, want %s", tt.req, err, tt.code)
		}
	}
	if _, err := c.Undrain(ctx, &pb.UndrainRequest{Vip: "web"}); err != nil {
		t.Errorf("Undrain: %v", err)
	}
	want := []string{`drain "web" "upgrade" 1m0s`, `drain "" "" 0s`, `undrain "web"`}
	if got := ann.Calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("announcer calls = %q, want %q", got, want)
	}
	if resp, err := c.Reload(ctx, &pb.ReloadRequest{}); err != nil || len(resp.GetWarnings()) != 1 {
		t.Errorf("Reload: %v, %v; want one warning", resp, err)
	}
	_, err := c.Reload(ctx, &pb.ReloadRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "prefixes is required") {
		t.Errorf("refused Reload = %v, want FailedPrecondition with the problem", err)
	}
	_, err = c.Reload(ctx, &pb.ReloadRequest{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "configuration in force") {
		t.Errorf("Reload the speaker has not taken yet = %v, want Unavailable saying the configuration is in force", err)
	}
	_, err = c.ReportCheck(ctx, &pb.ReportCheckRequest{Check: "web"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ReportCheck without Report = %v, want Unimplemented", err)
	}
}

func TestReloadUnimplemented(t *testing.T) {
	_, l := testServer(t, config.API{}, Options{})
	_, err := pb.NewAnycastdServiceClient(client(t, unixTarget(l), nil)).Reload(context.Background(), &pb.ReloadRequest{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), "restart") {
		t.Errorf("Reload = %v, want Unimplemented saying what to do", err)
	}
}

// A plain TCP listener serves reads and refuses control calls.
func TestPlainTCPIsReadOnly(t *testing.T) {
	ann, l := testServer(t, config.API{Listen: "", TCPListen: "127.0.0.1:0"}, Options{})
	tcp := l.Addrs()[1].String()
	c := pb.NewAnycastdServiceClient(client(t, "passthrough:///"+tcp, nil))
	ctx := context.Background()
	if resp, err := c.ListVIPs(ctx, &pb.ListVIPsRequest{}); err != nil || len(resp.Vips) != 1 {
		t.Errorf("ListVIPs over TCP: %v %v", resp, err)
	}
	_, err := c.Drain(ctx, &pb.DrainRequest{Vip: "web"})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "control calls need the unix socket or a client certificate") {
		t.Errorf("Drain over plain TCP = %v, want PermissionDenied", err)
	}
	if _, err := c.Reload(ctx, &pb.ReloadRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Reload over plain TCP = %v, want PermissionDenied", err)
	}
	if len(ann.Calls()) != 0 {
		t.Errorf("the announcer was called: %q", ann.Calls())
	}
}

// Over TLS, control calls need a client certificate the client CA verifies.
func TestMutualTLS(t *testing.T) {
	p := testutil.NewPKI(t)
	ann, l := testServer(t, config.API{TCPListen: "127.0.0.1:0", TLSCertFile: p.ServerCert, TLSKeyFile: p.ServerKey,
		ClientCAFile: p.CAFile}, Options{})
	target := "passthrough:///" + l.Addrs()[1].String()
	roots := x509.NewCertPool()
	pemCA, _ := os.ReadFile(p.CAFile)
	roots.AppendCertsFromPEM(pemCA)
	dialAs := func(certFile, keyFile string) pb.AnycastdServiceClient {
		tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		return pb.NewAnycastdServiceClient(client(t, target, credentials.NewTLS(tc)))
	}
	ctx := context.Background()

	anon := dialAs("", "")
	if _, err := anon.GetStatus(ctx, &pb.GetStatusRequest{}); err != nil {
		t.Errorf("GetStatus over TLS without a client certificate: %v", err)
	}
	if _, err := anon.Drain(ctx, &pb.DrainRequest{Vip: "web"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Drain without a client certificate = %v, want PermissionDenied", err)
	}
	// A certificate from another CA fails the handshake.
	if _, err := dialAs(p.StrangerCert, p.StrangerKey).Drain(ctx, &pb.DrainRequest{Vip: "web"}); err == nil {
		t.Error("Drain with a certificate from another CA succeeded")
	}
	if _, err := dialAs(p.ClientCert, p.ClientKey).Drain(ctx, &pb.DrainRequest{Vip: "web"}); err != nil {
		t.Errorf("Drain with a verified client certificate: %v", err)
	}
	if got := ann.Calls(); len(got) != 1 {
		t.Errorf("announcer calls = %q, want the one drain", got)
	}
}

func TestUnixSocketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket to another group")
	}
	gid, err := config.LookupGroup("nogroup")
	if err != nil {
		t.Skipf("no group nogroup: %v", err)
	}
	path := shortSocket(t)
	testServer(t, config.API{Listen: "unix://" + path, Group: "nogroup"}, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Gid) != gid {
		t.Errorf("socket group = %v, want nogroup (%d)", fi.Sys(), gid)
	}
}
