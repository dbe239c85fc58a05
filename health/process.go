package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"github.com/anycastd/anycastd/config"
)

// processChecker watches the service's main process, named by a pid file or
// by a systemd unit's MainPID, through a pidfd.
//
// Each probe reads the pid again. A new pid is attached to (a pidfd opened);
// the attached process passes while it runs. Its exit fails the check with a
// definite error, once, even if a new pid is already there, so that a
// restarted service rises again by the usual rise rules. Watch waits on the
// pidfd and wakes the runner the moment the process exits.
//
// A pid that is known dead stays dead until the pid file changes, so a
// stale pid file whose pid has been reused by an unrelated process does not
// pass. While the attached process runs, a pid file that cannot be read
// (being rewritten, deleted) does not fail the check.
type processChecker struct {
	src pidSource

	mu      sync.Mutex
	closed  bool
	cur     *watchedProc  // the attached process; nil before the first
	dead    pidReading    // a pid known not to run (pid 0: none)
	changed chan struct{} // buffered 1: cur was replaced, marked gone or closed
}

// watchedProc is an attached process.
type watchedProc struct {
	pidReading
	fd   *pidfd
	gone bool // its exit has been reported (fd is closed then)
}

// pidReading is a pid as read from its source. version tells apart two
// readings of the same pid: the pid file's modification time and size.
type pidReading struct {
	pid     int
	version pidVersion
}

type pidVersion struct {
	mtime int64
	size  int64
}

// pidSource reads the pid of the process to watch. pid 0 with a nil error
// means that there is no such process (a systemd unit that is not running).
type pidSource interface {
	read(ctx context.Context) (pidReading, error)
	String() string // "pid file /run/nginx.pid", "unit nginx.service"
	io.Closer
}

// errNoProcess: the pid names no running process.
var errNoProcess = errors.New("no such process")

func newProcessChecker(c config.ProcessCheck) *processChecker {
	if c.Unit != "" {
		return newProcessCheckerFrom(&unitSource{unit: c.Unit, bus: &systemdBus{}})
	}
	return newProcessCheckerFrom(pidFile(c.PIDFile))
}

func newProcessCheckerFrom(src pidSource) *processChecker {
	return &processChecker{src: src, changed: make(chan struct{}, 1)}
}

// Check implements Checker.
func (c *processChecker) Check(ctx context.Context) error {
	_, err := c.CheckOutput(ctx)
	return err
}

// CheckOutput implements OutputChecker: the output names the pid watched.
func (c *processChecker) CheckOutput(ctx context.Context) (string, error) {
	r, srcErr := c.src.read(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", errors.New("process check stopped")
	}
	// An exit not yet reported is reported now, whatever the source says.
	var exitErr error
	if p := c.cur; p != nil && !p.gone && p.fd.exited() {
		c.markGone(p)
		exitErr = Definite(fmt.Errorf("process %d exited", p.pid))
	}
	alive := c.cur != nil && !c.cur.gone
	switch {
	case srcErr != nil && exitErr != nil:
		return "", exitErr
	case srcErr != nil && alive:
		return fmt.Sprintf("%v; still watching process %d", srcErr, c.cur.pid), nil
	case srcErr != nil && c.cur != nil:
		return "", Definite(fmt.Errorf("process %d exited; %w", c.cur.pid, srcErr))
	case srcErr != nil:
		return "", srcErr
	case r.pid == 0:
		if exitErr != nil {
			return "", exitErr
		}
		return "", Definite(fmt.Errorf("%s has no main process", c.src))
	case alive && c.cur.pid == r.pid:
		c.cur.version = r.version
		return c.output(), nil
	case c.dead == r:
		return "", first(exitErr, c.notRunning(r.pid))
	}
	fd, err := openPidfd(r.pid)
	switch {
	case errors.Is(err, errNoProcess):
		c.dead = r
		return "", first(exitErr, c.notRunning(r.pid))
	case err != nil:
		return "", first(exitErr, fmt.Errorf("%w: watching process %d: %w", ErrCannotRun, r.pid, err))
	}
	if c.cur != nil && !c.cur.gone {
		c.cur.fd.close()
	}
	c.cur = &watchedProc{pidReading: r, fd: fd}
	c.dead = pidReading{}
	c.notify()
	if exitErr != nil {
		return "", exitErr
	}
	return c.output(), nil
}

// first returns a if it is not nil, else b.
func first(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// output describes the attached process; c.mu must be held.
func (c *processChecker) output() string {
	return "process " + strconv.Itoa(c.cur.pid) + " (" + c.src.String() + ")"
}

// notRunning is the definite failure for a pid that names no process;
// c.mu must be held.
func (c *processChecker) notRunning(pid int) error {
	if c.cur != nil && c.cur.gone && c.cur.pid == pid {
		return Definite(fmt.Errorf("process %d exited", pid))
	}
	return Definite(fmt.Errorf("process %d (%s) is not running", pid, c.src))
}

// markGone records that p has exited; c.mu must be held.
func (c *processChecker) markGone(p *watchedProc) {
	p.gone = true
	p.fd.close()
	c.dead = p.pidReading
	c.notify()
}

// notify tells Watch that cur changed.
func (c *processChecker) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Watch implements Watcher: it waits on the attached process's pidfd and
// calls wake when the process exits.
func (c *processChecker) Watch(ctx context.Context, wake func()) {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() }) // ends a wait in progress
	defer stop()
	for {
		c.mu.Lock()
		closed := c.closed
		var fd *pidfd
		if c.cur != nil && !c.cur.gone {
			fd = c.cur.fd
		}
		c.mu.Unlock()
		if closed {
			return
		}
		if fd != nil && fd.wait() == nil {
			wake() // exited; the probe marks it gone (or attaches a new one)
		}
		// Closed (replaced, stopped), gone, or exited: wait for a change.
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
		}
	}
}

// Close implements io.Closer: it closes the attached pidfd and the source.
func (c *processChecker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.cur != nil && !c.cur.gone {
		c.cur.fd.close()
	}
	c.notify()
	return c.src.Close()
}

// pidFile is a pid file's path.
type pidFile string

func (f pidFile) String() string { return "pid file " + string(f) }
func (f pidFile) Close() error   { return nil }

// maxPIDFileSize bounds what is read of a pid file.
const maxPIDFileSize = 64

func (f pidFile) read(context.Context) (pidReading, error) {
	file, err := os.Open(string(f))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return pidReading{}, fmt.Errorf("%s does not exist", f)
		}
		return pidReading{}, fmt.Errorf("%s: %w", f, unwrapPathError(err))
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return pidReading{}, fmt.Errorf("%s: %w", f, unwrapPathError(err))
	}
	var buf [maxPIDFileSize]byte
	n, err := io.ReadFull(file, buf[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return pidReading{}, fmt.Errorf("%s: %w", f, unwrapPathError(err))
	}
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return pidReading{}, fmt.Errorf("%s is empty", f)
	}
	pid, err := strconv.Atoi(string(line))
	if err != nil || pid <= 0 {
		return pidReading{}, fmt.Errorf("%s: %q is not a pid", f, line)
	}
	return pidReading{pid: pid, version: pidVersion{mtime: fi.ModTime().UnixNano(), size: fi.Size()}}, nil
}

// unwrapPathError drops the *fs.PathError around err, whose path the
// message names already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unitSource reads a systemd service's MainPID.
type unitSource struct {
	unit string
	bus  mainPIDGetter
}

// mainPIDGetter asks systemd for a service's MainPID (0: not running).
type mainPIDGetter interface {
	MainPID(ctx context.Context, unit string) (uint32, error)
	io.Closer
}

func (u *unitSource) String() string { return "unit " + u.unit }
func (u *unitSource) Close() error   { return u.bus.Close() }

func (u *unitSource) read(ctx context.Context) (pidReading, error) {
	pid, err := u.bus.MainPID(ctx, u.unit)
	if err != nil {
		return pidReading{}, fmt.Errorf("%w: unit %s: %w", ErrCannotRun, u.unit, err)
	}
	return pidReading{pid: int(pid)}, nil
}
