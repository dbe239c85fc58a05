package health

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/anycastd/anycastd/config"
)

// fakeSystemd answers org.freedesktop.DBus.Properties.Get for the MainPID
// of one service, as systemd does.
type fakeSystemd struct{ mainPID atomic.Uint32 }

func (f *fakeSystemd) Get(iface, prop string) (dbus.Variant, *dbus.Error) {
	if iface != "org.freedesktop.systemd1.Service" || prop != "MainPID" {
		return dbus.Variant{}, dbus.MakeFailedError(fmt.Errorf("unknown property %s.%s", iface, prop))
	}
	return dbus.MakeVariant(f.mainPID.Load()), nil
}

// startFakeSystemd runs a private dbus-daemon, made the system bus of this
// test, with a fake systemd on it that knows the unit nginx.service.
func startFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("no dbus-daemon")
	}
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	daemon := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+addr, "--print-address")
	stdout, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
	})
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil { // ready
		t.Fatal(err)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeSystemd{}
	if err := conn.Export(f, "/org/freedesktop/systemd1/unit/nginx_2eservice", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v, %v", reply, err)
	}
	return f
}

func TestProcessCheckSystemdUnit(t *testing.T) {
	sd := startFakeSystemd(t)
	svc := startService(t, "", true)
	sd.mainPID.Store(uint32(svc.pid()))
	_, tl := startManager(t, processCheck("nginx", config.ProcessCheck{Unit: "nginx.service"}, 2*time.Second))
	ev := tl.next(t, StatusUp, 5*time.Second)
	if want := fmt.Sprintf("process %d (unit nginx.service)", svc.pid()); ev.Last.Output != want {
		t.Errorf("output %q, want %q", ev.Last.Output, want)
	}

	start := time.Now()
	svc.kill(t)
	ev = tl.next(t, StatusDown, time.Second)
	t.Logf("SIGKILL -> down event: %v", time.Since(start))
	if want := fmt.Sprintf("process %d exited", svc.pid()); ev.Last.Err != want || !ev.Last.Definite {
		t.Errorf("down event result %+v, want a definite %q", ev.Last, want)
	}

	// systemd restarts it: a new MainPID.
	svc2 := startService(t, "", true)
	sd.mainPID.Store(uint32(svc2.pid()))
	tl.next(t, StatusUp, 5*time.Second)

	// Stopped: no main process. Down at the next probe (no pidfd wakes it:
	// svc2 still runs), without waiting for fall.
	sd.mainPID.Store(0)
	ev = tl.next(t, StatusDown, 5*time.Second)
	if ev.Last.Err != "unit nginx.service has no main process" || !ev.Last.Definite {
		t.Errorf("down event result %+v", ev.Last)
	}
	if !strings.Contains(ev.Last.Err, "nginx.service") {
		t.Error(ev.Last.Err)
	}
}
