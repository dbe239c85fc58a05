package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/anycastd/anycastd/config"
)

// service is a stand-in for a service's main process: `sleep 60`.
type service struct {
	cmd    *exec.Cmd
	reaped chan struct{} // closed once reaped, if reaping
}

// startService starts a service, writes its pid to pidFile (if not empty)
// and, with reap, reaps it as soon as it exits (else it stays a zombie until
// the test ends). It is killed and reaped when the test ends.
func startService(t testing.TB, pidFile string, reap bool) *service {
	t.Helper()
	s := &service{cmd: exec.Command("sleep", "60"), reaped: make(chan struct{})}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if reap {
		go func() {
			_ = s.cmd.Wait()
			close(s.reaped)
		}()
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		if reap {
			<-s.reaped
		} else {
			_ = s.cmd.Wait()
		}
	})
	if pidFile != "" {
		writePIDFile(t, pidFile, s.pid())
	}
	return s
}

func (s *service) pid() int { return s.cmd.Process.Pid }

func (s *service) kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(s.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// writePIDFile replaces path with one holding pid, as daemons do.
func writePIDFile(t testing.TB, path string, pid int) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func processCheck(name string, pc config.ProcessCheck, interval time.Duration) config.Check {
	return config.Check{Name: name, Type: config.CheckProcess, Interval: interval,
		FastInterval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 2, Fall: 3, Process: &pc}
}

func TestProcessCheckKillAndRestart(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "svc.pid")
	svc := startService(t, pidFile, true)
	// Polling alone would take fall × interval = 6s to see the kill.
	m, tl := startManager(t, processCheck("svc", config.ProcessCheck{PIDFile: pidFile}, 2*time.Second))
	tl.next(t, StatusUp, 5*time.Second)

	mark := tl.mark()
	start := time.Now()
	svc.kill(t)
	ev := tl.next(t, StatusDown, time.Second)
	t.Logf("SIGKILL -> down event: %v", time.Since(start))
	if want := fmt.Sprintf("process %d exited", svc.pid()); ev.Last.Err != want || !ev.Last.Definite {
		t.Errorf("down event result %+v, want a definite %q", ev.Last, want)
	}
	if diff := cmp.Diff([]string{"fail!", "down"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after the kill (-want +got):\n%s", diff)
	}

	// The pid file still names the dead process: it stays down.
	time.Sleep(100 * time.Millisecond)
	if s, _ := m.Status("svc"); s != StatusDown {
		t.Fatalf("status %v with a stale pid file", s)
	}

	// A restarted service, with a new pid in the pid file, rises again
	// after rise (2) passes, the first at the next interval.
	mark = tl.mark()
	svc2 := startService(t, pidFile, true)
	ev = tl.next(t, StatusUp, 5*time.Second)
	if diff := cmp.Diff([]string{"pass", "pass", "up"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after the restart (-want +got):\n%s", diff)
	}
	if want := fmt.Sprintf("process %d (pid file %s)", svc2.pid(), pidFile); ev.Last.Output != want {
		t.Errorf("output %q, want %q", ev.Last.Output, want)
	}
	mark = tl.mark()
	svc2.kill(t)
	tl.next(t, StatusDown, time.Second)
	if diff := cmp.Diff([]string{"fail!", "down"}, tl.since(mark)); diff != "" {
		t.Errorf("timeline after the second kill (-want +got):\n%s", diff)
	}
}

func TestProcessCheckStalePIDFile(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "svc.pid")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writePIDFile(t, pidFile, dead.Process.Pid)
	_, tl := startManager(t,
		processCheck("stale", config.ProcessCheck{PIDFile: pidFile}, 50*time.Millisecond),
		processCheck("missing", config.ProcessCheck{PIDFile: filepath.Join(dir, "nope.pid")}, 50*time.Millisecond))

	// Down at the first probe: a pid that names no process is definite. A
	// missing pid file is not (the service may not have started yet): it
	// needs fall (3) failures.
	var got []string
	for range 2 {
		ev := <-tl.events
		got = append(got, fmt.Sprintf("%s %v %q definite=%v", ev.Check, ev.Status, ev.Last.Err, ev.Last.Definite))
	}
	want := []string{
		fmt.Sprintf("stale down %q definite=true", fmt.Sprintf("process %d (pid file %s) is not running", dead.Process.Pid, pidFile)),
		fmt.Sprintf("missing down %q definite=false", "pid file "+filepath.Join(dir, "nope.pid")+" does not exist"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// fakeSource is a pidSource whose readings the test sets.
type fakeSource struct {
	mu     sync.Mutex
	pid    int
	err    error
	closed bool
}

func (f *fakeSource) set(pid int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pid, f.err = pid, err
}

func (f *fakeSource) read(context.Context) (pidReading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return pidReading{pid: f.pid}, f.err
}

func (f *fakeSource) String() string { return "unit fake.service" }

func (f *fakeSource) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func TestProcessCheckSequence(t *testing.T) {
	src := &fakeSource{}
	c := newProcessCheckerFrom(src)
	ctx := context.Background()
	probe := func(wantErr string, wantDefinite bool) {
		t.Helper()
		out, err := c.CheckOutput(ctx)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("probe failed: %v", err)
		case wantErr != "" && (err == nil || err.Error() != wantErr):
			t.Fatalf("probe: %v (output %q), want %q", err, out, wantErr)
		case err != nil && errors.Is(err, ErrDefinite) != wantDefinite:
			t.Fatalf("probe: %v, definite %v, want %v", err, !wantDefinite, wantDefinite)
		}
	}

	probe("unit fake.service has no main process", true) // MainPID 0
	a := startService(t, "", false)                      // not reaped: a zombie once killed
	src.set(a.pid(), nil)
	probe("", false)
	src.set(a.pid(), errors.New("D-Bus went away"))
	out, err := c.CheckOutput(ctx)
	if err != nil || out != fmt.Sprintf("D-Bus went away; still watching process %d", a.pid()) {
		t.Errorf("source error while the process runs: %q, %v", out, err)
	}
	src.set(a.pid(), nil)

	a.kill(t)
	exited := fmt.Sprintf("process %d exited", a.pid())
	waitFor(t, 5*time.Second, func() bool { _, err := c.CheckOutput(ctx); return err != nil && err.Error() == exited })
	// Its pid (a zombie, still a valid pid) does not pass again.
	probe(exited, true)

	// A new process that is already there when the exit is seen: the exit
	// is reported once, then the new one passes.
	b := startService(t, "", true)
	src.set(b.pid(), nil)
	probe("", false)
	cc := startService(t, "", true)
	b.kill(t)
	<-b.reaped
	src.set(cc.pid(), nil)
	probe(fmt.Sprintf("process %d exited", b.pid()), true)
	probe("", false)

	src.set(0, errors.New("unit fake.service: cannot reach systemd"))
	probe("", false) // still watching cc
	cc.kill(t)
	<-cc.reaped
	probe(fmt.Sprintf("process %d exited", cc.pid()), true)
	probe(fmt.Sprintf("process %d exited; unit fake.service: cannot reach systemd", cc.pid()), true)

	if err := c.Close(); err != nil || !src.closed {
		t.Errorf("Close: %v, source closed %v", err, src.closed)
	}
	probe("process check stopped", false)
}

func TestProcessCheckPIDFileContents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.pid")
	for _, tt := range []struct{ content, err string }{
		{"", "pid file " + path + " is empty"},
		{"  \n", "pid file " + path + " is empty"},
		{"abc\n", `pid file ` + path + `: "abc" is not a pid`},
		{"-5", `pid file ` + path + `: "-5" is not a pid`},
		{"0", `pid file ` + path + `: "0" is not a pid`},
		{strings.Repeat("1", 100), `pid file ` + path + `: "` + strings.Repeat("1", 64) + `" is not a pid`},
		{" 42 \nsecond line", ""},
	} {
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := pidFile(path).read(context.Background())
		switch {
		case tt.err == "" && (err != nil || r.pid != 42):
			t.Errorf("%q: %v, %v; want pid 42", tt.content, r, err)
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%q: %v, want %q", tt.content, err, tt.err)
		}
	}
	if _, err := pidFile(dir).read(context.Background()); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestProcessCheckUnitWithoutSystemd(t *testing.T) {
	for _, p := range []string{"/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket", "/run/systemd/private"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists", p)
		}
	}
	_, tl := startManager(t, processCheck("nginx", config.ProcessCheck{Unit: "nginx.service"}, 50*time.Millisecond))
	ev := tl.next(t, StatusDown, 5*time.Second)
	if ev.Last.Kind != KindError || ev.Last.Definite ||
		!strings.HasPrefix(ev.Last.Err, "cannot run: unit nginx.service: cannot reach systemd over D-Bus: ") {
		t.Errorf("result %+v", ev.Last)
	}
	t.Log(ev.Last.Err)
}
