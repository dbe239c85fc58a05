package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// execDrainDelay bounds how long a probe waits for its output pipe to
	// close once the command has exited or been killed; a background
	// process that escaped the kill may hold it open. What the command
	// wrote before it exited is read either way.
	execDrainDelay = 50 * time.Millisecond
)

// execChecker runs a command (argv, no shell) in its own process group and
// passes on exit status 0.
//
// When the probe's ctx ends, the whole process group is killed with SIGKILL.
// On Linux, once the command has exited, whatever is left in its process
// group is killed too, so a check cannot leak background processes. Where a
// cgroup v2 hierarchy is writable, each probe also runs in a cgroup of its
// own that is killed whole (cgroup.kill) with it: a process that detached
// into another process group or session (setsid) dies too. Without one, such
// a process escapes.
//
// The exit status decides, as soon as the command has exited: output is
// read from a pipe anycastd owns, and a process that escaped and holds it
// open delays the result by execDrainDelay at most.
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
	cg := newProbeCgroup()
	cmd, r, err := e.start(ctx, cg)
	if err != nil && cg.shimInstead(err, slog.Info) {
		cmd, r, err = e.start(ctx, cg)
	}
	if err != nil && cg != nil {
		// The kernel may refuse to start a process in a cgroup (clone3
		// CLONE_INTO_CGROUP needs Linux 5.7): the process group only.
		cg.remove()
		cg = nil
		cmd, r, err = e.start(ctx, nil)
	}
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrCannotRun, e.argv[0], err)
	}
	defer r.Close()
	out := &cappedBuffer{max: maxExecOutput}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, r)
	}()
	if waitExitedNoReap(cmd.Process.Pid) {
		// The leader has exited but is not reaped yet, so its pid (the
		// group id) cannot have been reused: kill what is left in the group
		// and in the cgroup.
		cg.kill()
		_ = killGroup(cmd)
	}
	err = cmd.Wait()
	cg.kill()
	go cg.remove()
	drain(r, out, copied)
	output := out.String()
	if err == nil {
		return output, nil
	}
	msg := err.Error() // "exit status 1", "signal: killed", ...
	if snippet := truncate(strings.TrimSpace(output), maxExecErrOutput); snippet != "" {
		msg += ": " + snippet
	}
	return output, errors.New(msg)
}

// start starts the command in its own process group (and in cg, unless
// nil) with its stdout and stderr on one pipe, whose read end it returns.
func (e *execChecker) start(ctx context.Context, cg *probeCgroup) (*exec.Cmd, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, e.argv[0], e.argv[1:]...)
	cmd.Stdout = w
	cmd.Stderr = w // same pipe: output interleaved in order
	cmd.Env = e.env
	cmd.Dir = e.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cg.attach(cmd)
	cmd.Cancel = func() error {
		cg.kill()
		return killGroup(cmd)
	}
	err = cmd.Start()
	w.Close() // the command has its own copy
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return cmd, r, nil
}

// drain finishes reading the output once the command has exited: it waits
// for the copy into out to reach EOF (every holder of the pipe gone) for
// execDrainDelay at most, then stops it and reads what is still buffered in
// the pipe without waiting for more.
func drain(r *os.File, out *cappedBuffer, copied <-chan struct{}) {
	t := time.NewTimer(execDrainDelay)
	defer t.Stop()
	select {
	case <-copied:
		return
	case <-t.C:
	}
	_ = r.SetReadDeadline(time.Now())
	<-copied
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	var buf [4096]byte
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), buf[:])
			if n <= 0 || err != nil {
				return true // EAGAIN: nothing more buffered
			}
			_, _ = out.Write(buf[:n])
		}
	})
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
// One goroutine at a time writes to it.
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
