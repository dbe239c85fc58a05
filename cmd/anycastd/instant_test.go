package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/internal/bgptest"
)

// startSleeper starts a stand-in service process and writes its pid to
// pidFile, as a daemon does. It is killed and reaped when the test ends.
func startSleeper(t *testing.T, pidFile string) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(reaped)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-reaped
	})
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, pidFile); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestProcessCheckWithdrawsOnKill(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "svc.pid")
	pid := startSleeper(t, pidFile)
	r := startRouter(t)
	d := startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"process\"\npid_file = %q", pidFile)))
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced while the process runs", nil)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	bgptest.Eventually(t, wait, hasNone(t, r), "withdrawal after SIGKILL of the service", nil)
	t.Logf("SIGKILL -> VIPs gone at the router (polled every 10ms): %v", time.Since(start))
	logs := d.logs.String()
	if want := fmt.Sprintf("process %d exited", pid); !strings.Contains(logs, want) || !strings.Contains(logs, "definite=true") {
		t.Errorf("logs do not say %q with definite=true", want)
	}

	startSleeper(t, pidFile) // restarted: a new pid in the pid file
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back once the service runs again", nil)
}

func TestListenCheckWithdrawsOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	r := startRouter(t)
	d := startDaemon(t, baseConfig(r, fmt.Sprintf("type = \"listen\"\naddress = %q", addr)))
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs announced while the service listens", nil)

	ln.Close()
	start := time.Now()
	bgptest.Eventually(t, wait, hasNone(t, r), "withdrawal after the listener closed", nil)
	t.Logf("listener closed -> VIPs gone at the router: %v", time.Since(start))
	if want := "no tcp listener on " + addr; !strings.Contains(d.logs.String(), want) {
		t.Errorf("logs do not say %q", want)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("reopening %s: %v", addr, err)
	}
	defer ln.Close()
	bgptest.Eventually(t, wait, hasVIPs(t, r), "VIPs back after the listener reopened", nil)
}
