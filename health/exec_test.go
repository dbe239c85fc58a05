package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

func execOutput(t *testing.T, c config.ExecCheck) (string, error) {
	t.Helper()
	ch := mustChecker(t, config.Check{Type: config.CheckExec, Exec: &c}).(*execChecker)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ch.CheckOutput(ctx)
}

func TestExecCheckerEnvDirShell(t *testing.T) {
	t.Setenv("ANYCASTD_SECRET", "leak")
	out, err := execOutput(t, config.ExecCheck{
		Command: []string{"/usr/bin/env"},
		Env:     map[string]string{"B": "2", "A": "x=y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "A=x=y\nB=2\nPATH=" + os.Getenv("PATH") + "\n"; out != want {
		t.Errorf("environment:\n%s\nwant:\n%s", out, want)
	}

	out, err = execOutput(t, config.ExecCheck{Command: []string{"/usr/bin/env"}, Env: map[string]string{"PATH": "/x"}})
	if err != nil || out != "PATH=/x\n" {
		t.Errorf("env PATH override: %q, %v", out, err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = execOutput(t, config.ExecCheck{Command: []string{"/bin/sh", "-c", "pwd; test -e ready"}, Dir: dir})
	if err != nil || out != dir+"\n" {
		t.Errorf("dir: %q, %v", out, err)
	}

	// As config builds it for shell = true.
	shell := config.ExecCheck{Command: []string{"/bin/sh", "-c", `test "$MODE" = fast && echo "$((6*7))" | grep -q 42`},
		Shell: true, Env: map[string]string{"MODE": "fast"}}
	if _, err := execOutput(t, shell); err != nil {
		t.Errorf("shell: %v", err)
	}
	shell.Env["MODE"] = "slow"
	if _, err := execOutput(t, shell); err == nil || err.Error() != "exit status 1" {
		t.Errorf("shell, failing: err = %v, want exit status 1", err)
	}

	_, err = execOutput(t, config.ExecCheck{Command: []string{"/bin/true"}, Dir: filepath.Join(dir, "gone")})
	if !errors.Is(err, ErrCannotRun) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing dir: err = %v, want ErrCannotRun", err)
	}
	_, err = execOutput(t, config.ExecCheck{Command: []string{"/nonexistent/anycastd-test"}})
	if !errors.Is(err, ErrCannotRun) {
		t.Errorf("missing binary: err = %v, want ErrCannotRun", err)
	}
}

// A command that exits 0 while a process it started has left its process
// group and session (setsid) and holds the output pipe: the probe passes at
// once with what the command wrote, and, where probes run in a cgroup, no
// process of it survives the probe.
func TestExecCheckerDetachedGrandchild(t *testing.T) { detachedGrandchild(t) }

func detachedGrandchild(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := `setsid sh -c 'echo $$ > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; exec sleep 1000' &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo ready; exit 0`
	ch := mustChecker(t, config.Check{Type: config.CheckExec, Exec: &config.ExecCheck{
		Command: []string{"/bin/sh", "-c", script}, Env: map[string]string{"PIDFILE": pidFile}}}).(*execChecker)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ch.CheckOutput(ctx)
	if err != nil || ctx.Err() != nil {
		t.Fatalf("probe: %q, %v (ctx %v), want a pass", out, err, ctx.Err())
	}
	if out != "ready\n" {
		t.Errorf("output %q, want %q", out, "ready\n")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if cg := newProbeCgroup(); cg == nil {
		if processAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Skip("no writable cgroup v2 hierarchy: a process that calls setsid escapes the probe")
	} else {
		cg.remove()
	}
	// cgroup.kill is asynchronous: poll until the sleep has died.
	for processAlive(pid) {
		if ctx.Err() != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the detached grandchild %d survived the probe", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processAlive reports whether pid is a live process (not a zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}
