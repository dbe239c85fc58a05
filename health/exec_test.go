package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
