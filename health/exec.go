package health

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/anycastd/anycastd/config"
)

const (
	// maxExecOutput is how much combined output an exec probe keeps.
	maxExecOutput = 4 << 10
	// maxExecErrOutput is how much of it, trimmed, goes into the error
	// message (more is cut at a rune boundary and marked with "...").
	maxExecErrOutput = 200
	// execWaitDelay bounds how long a probe waits for its output pipe to
	// close once the command has exited or been killed (a background
	// grandchild may hold it open).
	execWaitDelay = 250 * time.Millisecond
)

// execChecker runs a command (argv, no shell) in its own process group and
// passes on exit status 0.
//
// When the probe's ctx ends, the whole process group is killed with SIGKILL.
// On Linux, once the command has exited, whatever is left in its process
// group is killed too, so a check cannot leak background processes. A
// command that detaches into another process group or session escapes both.
//
// The command runs in a minimal environment (PATH, as the daemon has it or
// defaultExecPath) plus the check's env, in the check's dir if set.
type execChecker struct {
	argv []string
	env  []string
	dir  string
}

// defaultExecPath is the PATH of exec checks when the daemon has none.
const defaultExecPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func newExecChecker(c config.ExecCheck) *execChecker {
	path, ok := os.LookupEnv("PATH")
	if !ok || path == "" {
		path = defaultExecPath
	}
	env := map[string]string{"PATH": path}
	maps.Copy(env, c.Env)
	e := &execChecker{argv: slices.Clone(c.Command), dir: c.Dir}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		e.env = append(e.env, k+"="+env[k])
	}
	return e
}

// Check implements Checker.
func (e *execChecker) Check(ctx context.Context) error {
	_, err := e.CheckOutput(ctx)
	return err
}

// CheckOutput implements OutputChecker: output is the first 4 KiB of the
// command's combined stdout and stderr.
func (e *execChecker) CheckOutput(ctx context.Context) (string, error) {
	out := &cappedBuffer{max: maxExecOutput}
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out // same writer: one pipe, output interleaved in order
	cmd.Env = e.env
	cmd.Dir = e.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = execWaitDelay

	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrCannotRun, e.argv[0], err)
	}
	if waitExitedNoReap(cmd.Process.Pid) {
		// The leader has exited but is not reaped yet, so its pid (the
		// group id) cannot have been reused: kill what is left in the group.
		_ = killGroup(cmd)
	}
	err := cmd.Wait()
	output := out.String()
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		// ErrWaitDelay with status 0: the command succeeded but something it
		// started outside its process group kept the output pipe open.
		return output, nil
	}
	msg := err.Error() // "exit status 1", "signal: killed", ...
	if snippet := truncate(strings.TrimSpace(output), maxExecErrOutput); snippet != "" {
		msg += ": " + snippet
	}
	return output, errors.New(msg)
}

// killGroup sends SIGKILL to the process group led by cmd's process.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// cappedBuffer keeps the first max bytes written to it and silently drops
// the rest (the writer never fails, so the command never sees EPIPE).
// exec.Cmd copies into it from a single goroutine.
type cappedBuffer struct {
	max int
	buf []byte
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string { return string(b.buf) }
