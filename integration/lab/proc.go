package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one process the lab runs in a node's namespace: a node's software
// (zebra, bgpd, bird, anycastd) or a background service from its exec lines.
type proc struct {
	node, name string
	argv       []string // run as `ip netns exec NS argv...` (ip execs into it: same pid)
	log        string   // stdout and stderr, appended across restarts
	pidfile    string   // written by the daemon itself, if any
	ready      func(ctx context.Context) error
	// beforeStart runs before each start (e.g. removes a stale socket).
	beforeStart func()

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
}

func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

func (p *proc) running() bool {
	select {
	case <-p.exited():
		return false
	default:
		return true
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s on %s is not running", p.name, p.node)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

func (l *Lab) addProc(p *proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.procs[p.node] == nil {
		l.procs[p.node] = map[string]*proc{}
	}
	l.procs[p.node][p.name] = p
}

func (l *Lab) proc(node, name string) (*proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.procs[node][name]
	if p == nil {
		return nil, fmt.Errorf("node %s has no process %s", node, name)
	}
	return p, nil
}

// startProc starts p in its node's namespace and waits until it is ready.
func (l *Lab) startProc(p *proc) error {
	if p.running() {
		return fmt.Errorf("%s on %s is already running", p.name, p.node)
	}
	if p.beforeStart != nil {
		p.beforeStart()
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== lab: starting %s at %s: %q\n", p.name, time.Now().Format("15:04:05.000"), p.argv)
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.Namespace(p.node)}, p.argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: a Ctrl-C at the terminal reaches the test or demo
	// program, which tears down; it must not hit the daemons first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Under the lab's lock, so that a concurrent Close (a signal) either
	// comes first and nothing starts, or sees the process and stops it.
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if err := cmd.Start(); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("starting %s on %s: %w", p.name, p.node, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	l.mu.Unlock()
	go func() {
		err := cmd.Wait()
		if lf, ferr := os.OpenFile(p.log, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
			fmt.Fprintf(lf, "=== lab: %s exited at %s: %v\n", p.name, time.Now().Format("15:04:05.000"), exitText(err))
			lf.Close()
		}
		close(done)
	}()
	if p.ready != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.ready(ctx); err != nil {
			return fmt.Errorf("%s on %s did not become ready: %w (log: %s)", p.name, p.node, err, p.log)
		}
	}
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// waitFile waits until path exists or p exits.
func waitFile(p *proc, path string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if _, err := os.Stat(path); err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not created: %w", path, ctx.Err())
			case <-p.exited():
				return errors.New("exited during startup")
			case <-t.C:
			}
		}
	}
}

// waitStarted waits until p's log (from this start on) contains marker,
// or grace has passed with p running; it fails if p exits first, quoting
// the log.
func waitStarted(p *proc, marker string, grace time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		size := int64(0)
		if fi, err := os.Stat(p.log); err == nil {
			size = fi.Size() // only what this start writes counts
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		deadline := time.After(grace)
		for {
			data, _ := os.ReadFile(p.log)
			if int64(len(data)) > size && strings.Contains(string(data[size:]), marker) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-deadline:
				return nil
			case <-p.exited():
				data, _ := os.ReadFile(p.log)
				if int64(len(data)) > size {
					data = data[size:]
				}
				return fmt.Errorf("exited during startup:\n%s", strings.TrimSpace(string(data)))
			case <-t.C:
			}
		}
	}
}

// SignalProcess sends sig to a process of node ("zebra", "bgpd", "bird",
// "anycastd", or a service from the exec lines such as "siteweb") and
// returns at once.
func (l *Lab) SignalProcess(node, name string, sig syscall.Signal) error {
	p, err := l.proc(node, name)
	if err != nil {
		return err
	}
	return p.signal(sig)
}

// KillProcess sends sig to a process; for SIGKILL, SIGTERM and SIGINT it
// waits (up to 15s) until the process has exited.
func (l *Lab) KillProcess(node, name string, sig syscall.Signal) error {
	p, err := l.proc(node, name)
	if err != nil {
		return err
	}
	if sig == syscall.SIGTERM || sig == syscall.SIGINT {
		p.signal(syscall.SIGCONT)
	}
	if err := p.signal(sig); err != nil {
		return err
	}
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT:
		select {
		case <-p.exited():
		case <-time.After(15 * time.Second):
			return fmt.Errorf("%s on %s still running 15s after %v", name, node, sig)
		}
	}
	return nil
}

// StartProcess starts a process of node again, with the arguments it was
// first started with.
func (l *Lab) StartProcess(node, name string) error {
	p, err := l.proc(node, name)
	if err != nil {
		return err
	}
	return l.startProc(p)
}

// Running reports whether a process of node runs.
func (l *Lab) Running(node, name string) bool {
	p, err := l.proc(node, name)
	return err == nil && p.running()
}

// Pid returns the pid of a process of node (0 if it never ran).
func (l *Lab) Pid(node, name string) int {
	p, err := l.proc(node, name)
	if err != nil {
		return 0
	}
	return p.pid()
}

// StartNode starts the node's software (FRR daemons, bird or anycastd) in
// order, each once ready. Processes already running are left alone.
func (l *Lab) StartNode(node string) error {
	l.mu.Lock()
	names := append([]string(nil), l.daemon[node]...)
	l.mu.Unlock()
	for _, name := range names {
		if l.Running(node, name) {
			continue
		}
		if err := l.StartProcess(node, name); err != nil {
			return err
		}
	}
	return nil
}

// KillNode sends sig to the node's software (in reverse start order); for
// SIGKILL, SIGTERM and SIGINT it waits until the processes have exited.
func (l *Lab) KillNode(node string, sig syscall.Signal) error {
	l.mu.Lock()
	names := append([]string(nil), l.daemon[node]...)
	l.mu.Unlock()
	if len(names) == 0 {
		return fmt.Errorf("node %s runs no software of its own", node)
	}
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		if !l.Running(node, names[i]) {
			continue
		}
		if err := l.KillProcess(node, names[i], sig); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
