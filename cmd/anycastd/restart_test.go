package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/internal/bgptest"
)

// exitsWith waits for d to exit and fails unless it exited with status
// code.
func exitsWith(t *testing.T, d *daemon, code int, after string) {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err // for cleanup
		if got := d.cmd.ProcessState.ExitCode(); got != code {
			t.Fatalf("anycastd exited with %v after %s, want exit status %d", err, after, code)
		}
	case <-time.After(wait):
		t.Fatalf("anycastd did not exit after %s", after)
	}
}

// SIGUSR2 with graceful_restart: a planned restart sends no withdrawal
// (the router here does not negotiate graceful restart, so it drops the
// routes when the session closes, and anycastd says so).
func TestSIGUSR2StopsWithoutWithdrawing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	cfg := strings.Replace(baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())),
		"listen_port = 0\n", "listen_port = 0\ngraceful_restart = true\ngraceful_restart_time = \"60s\"\n", 1)
	d := startDaemon(t, cfg)
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	_, before, _ := r.PeerState(t, edgeAddr)

	if err := d.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	exitsWith(t, d, exitPlannedRestart, "SIGUSR2")
	if _, after, _ := r.PeerState(t, edgeAddr); after != before {
		t.Errorf("router received %d UPDATEs before SIGUSR2 and %d after; a planned restart sends none", before, after)
	}
	logs := d.logs.String()
	for _, want := range []string{"planned restart: stopping BGP without withdrawing", "did not negotiate graceful restart"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, "msg=withdrawn") {
		t.Errorf("a planned restart withdrew a route:\n%s", logs)
	}
}

// Without graceful_restart, SIGUSR2 stops as SIGTERM does: the routes are
// withdrawn with an UPDATE.
func TestSIGUSR2WithoutGracefulRestartWithdraws(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := startRouter(t)
	d := startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())))
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	_, before, _ := r.PeerState(t, edgeAddr)
	if err := d.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	exitsWith(t, d, exitPlannedRestart, "SIGUSR2") // to be started again, after the full stop
	bgptest.Eventually(t, wait, hasNone(t, r), "router holds no VIP", nil)
	if _, after, _ := r.PeerState(t, edgeAddr); after <= before {
		t.Errorf("router received %d UPDATEs before SIGUSR2 and %d after; want a withdrawal UPDATE", before, after)
	}
	if !strings.Contains(d.logs.String(), "bgp.graceful_restart is off") {
		t.Error("no warning that SIGUSR2 without graceful_restart stops as SIGTERM does")
	}
}

// The API's Restart (anycastctl restart): refused without graceful
// restart; with it, a planned restart as SIGUSR2 does.
func TestAPIRestart(t *testing.T) {
	off := startAPIDaemon(t, "")
	_, err := off.client.Restart(context.Background(), &pb.RestartRequest{})
	wantCode(t, err, codes.FailedPrecondition, "Restart without graceful_restart")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir, err := os.MkdirTemp("", "acd-api") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "api.sock")
	r := startRouter(t)
	cfg := strings.NewReplacer(
		"listen_port = 0\n", "listen_port = 0\ngraceful_restart = true\ngraceful_restart_time = \"60s\"\n",
		"[api]\nlisten = \"\"", fmt.Sprintf("[api]\nlisten = \"unix://%s\"", socket),
	).Replace(baseConfig(r, fmt.Sprintf("type = \"tcp\"\naddress = %q", ln.Addr())))
	d := startDaemon(t, cfg)
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced", nil)
	_, before, _ := r.PeerState(t, edgeAddr)
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := pb.NewAnycastdServiceClient(conn).Restart(context.Background(), &pb.RestartRequest{})
	if err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if resp.RestartTimeSeconds != 60 {
		t.Errorf("Restart: restart time %ds, want 60s", resp.RestartTimeSeconds)
	}
	exitsWith(t, d, exitPlannedRestart, "the API's Restart")
	if _, after, _ := r.PeerState(t, edgeAddr); after != before {
		t.Errorf("router received %d UPDATEs before Restart and %d after; a planned restart sends none", before, after)
	}
	if !strings.Contains(d.logs.String(), "restart requested over the API") {
		t.Error("the log does not say the restart came over the API")
	}
}
