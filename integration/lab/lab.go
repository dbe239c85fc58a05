package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options tune a lab.
type Options struct {
	// Programs maps program names to host binaries. "anycastd" is required
	// when the topology has anycastd nodes; other names (e.g. "siteweb")
	// resolve the first word of exec lines. Names not in the map are looked
	// up in PATH.
	Programs map[string]string
	// WorkDir is where the per-node directories go (configs, sockets,
	// pidfiles, logs). Default: a new temporary directory, removed by Close
	// unless KeepWorkDir is set.
	WorkDir     string
	KeepWorkDir bool
	// AnycastdArgs are extra arguments for every anycastd (e.g.
	// "-log-level", "debug").
	AnycastdArgs []string
	// Logf receives progress messages; nil: none.
	Logf func(format string, args ...any)
}

// Lab is a running topology: one network namespace per node, veth pairs
// for the links, and the nodes' processes.
type Lab struct {
	Topo *Topology
	ID   string // 6 hex digits, part of every namespace name

	opts       Options
	dir        string
	removeDir  bool
	markerPath string

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{} // closed when Close has finished
	closeErr  error
	nss       []string                    // namespaces created, in order
	procs     map[string]map[string]*proc // node → process name → process
	daemon    map[string][]string         // node → its software (not services), in start order
}

const (
	nsPrefix  = "acd-"
	markerDir = "/run/anycastd-lab"
	frrLibDir = "/usr/lib/frr"
)

// Namespace returns the network namespace name of node.
func (l *Lab) Namespace(node string) string { return nsPrefix + l.ID + "-" + node }

// NodeDir returns the node's working directory.
func (l *Lab) NodeDir(node string) string { return filepath.Join(l.dir, node) }

// Start builds the topology and starts every node. On error everything
// already created is torn down again. The caller must Close the lab.
func Start(ctx context.Context, topo *Topology, opts Options) (_ *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces)")
	}
	for _, name := range topo.NodeNames() {
		if topo.Nodes[name].Role == RoleAnycastd && opts.Programs["anycastd"] == "" {
			return nil, errors.New("Options.Programs has no anycastd binary")
		}
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	l := &Lab{
		Topo:      topo,
		ID:        hex.EncodeToString(id),
		opts:      opts,
		procs:     map[string]map[string]*proc{},
		daemon:    map[string][]string{},
		closeDone: make(chan struct{}),
	}
	// The marker tells Sweep in other processes that this lab is alive.
	if err := os.MkdirAll(markerDir, 0o755); err != nil {
		return nil, err
	}
	l.markerPath = filepath.Join(markerDir, l.ID+".pid")
	if err := os.WriteFile(l.markerPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, err
	}
	register(l)
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if opts.WorkDir == "" {
		if l.dir, err = os.MkdirTemp("", "anycastd-lab-"+l.ID+"-"); err != nil {
			return nil, err
		}
		l.removeDir = !opts.KeepWorkDir
		// FRR drops privileges to user frr, which must reach its node dir.
		if err := os.Chmod(l.dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		l.dir = filepath.Join(opts.WorkDir, l.ID)
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return nil, err
		}
	}
	l.logf("lab %s (%s): work dir %s", topo.Name, l.ID, l.dir)

	names := topo.NodeNames()
	for _, name := range names {
		if err := l.addNamespace(ctx, name); err != nil {
			return nil, err
		}
	}
	for _, link := range topo.Links {
		if err := l.addLink(ctx, link); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := l.prepareNode(topo.Nodes[name]); err != nil {
			return nil, err
		}
	}
	l.logf("lab %s: %d namespaces, %d links", l.ID, len(names), len(topo.Links))
	for _, name := range names {
		if err := l.runExec(ctx, topo.Nodes[name]); err != nil {
			return nil, err
		}
	}
	l.logf("lab %s: exec lines done", l.ID)
	// The coordinator (etcd) and the routers first, then the anycastd
	// nodes that use them.
	for _, role := range []Role{RoleEtcd, RoleFRR, RoleBIRD, RoleAnycastd} {
		for _, name := range names {
			if topo.Nodes[name].Role != role {
				continue
			}
			if err := l.StartNode(name); err != nil {
				return nil, err
			}
			l.logf("lab %s: %s started (%s)", l.ID, name, role)
		}
	}
	return l, nil
}

func (l *Lab) logf(format string, args ...any) {
	if l.opts.Logf != nil {
		l.opts.Logf(format, args...)
	}
}

func (l *Lab) addNamespace(ctx context.Context, node string) error {
	ns := l.Namespace(node)
	// Under the lock, so that a concurrent Close (a signal) sees it.
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	_, err := run(ctx, "ip", "netns", "add", ns)
	if err == nil {
		l.nss = append(l.nss, ns)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = run(ctx, "ip", "-n", ns, "link", "set", "lo", "up")
	return err
}

// ErrClosed is returned by operations on a lab that is (being) closed, e.g.
// a Start interrupted by a signal.
var ErrClosed = errors.New("lab is closed")

func (l *Lab) addLink(ctx context.Context, link Link) error {
	a, b := l.Namespace(link.A.Node), l.Namespace(link.B.Node)
	if _, err := run(ctx, "ip", "-n", a, "link", "add", link.A.Iface, "type", "veth",
		"peer", "name", link.B.Iface, "netns", b); err != nil {
		return fmt.Errorf("link %s - %s: %w", link.A, link.B, err)
	}
	if _, err := run(ctx, "ip", "-n", a, "link", "set", link.A.Iface, "up"); err != nil {
		return err
	}
	_, err := run(ctx, "ip", "-n", b, "link", "set", link.B.Iface, "up")
	return err
}

// runExec runs the node's exec lines in order; background services are
// started and tracked.
func (l *Lab) runExec(ctx context.Context, n *Node) error {
	for _, line := range n.Exec {
		el, err := parseExecLine(line)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		argv := append([]string{l.program(el.argv[0])}, el.argv[1:]...)
		if el.background {
			name := filepath.Base(el.argv[0])
			l.mu.Lock()
			for i := 2; l.procs[n.Name][name] != nil; i++ {
				name = fmt.Sprintf("%s-%d", filepath.Base(el.argv[0]), i)
			}
			l.mu.Unlock()
			p := &proc{node: n.Name, name: name, argv: argv, log: filepath.Join(l.NodeDir(n.Name), name+".log")}
			l.addProc(p)
			if err := l.startProc(p); err != nil {
				return err
			}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = run(cctx, "ip", append([]string{"netns", "exec", l.Namespace(n.Name)}, argv...)...)
		cancel()
		if err != nil {
			return fmt.Errorf("node %s: exec %q: %w", n.Name, line, err)
		}
	}
	return nil
}

func (l *Lab) program(name string) string {
	if p, ok := l.opts.Programs[name]; ok {
		return p
	}
	return name
}

// Close stops every process, deletes the namespaces (with anything still
// running in them) and the work directory. It may be called more than once
// and from any goroutine; every call returns once the teardown is complete.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.closeDone
		return l.closeErr
	}
	l.closed = true
	defer close(l.closeDone)
	var all []*proc
	for _, m := range l.procs {
		for _, p := range m {
			all = append(all, p)
		}
	}
	nss := append([]string(nil), l.nss...)
	l.mu.Unlock()
	defer unregister(l)

	// SIGTERM everything at once (anycastd withdraws, the routers exit),
	// then SIGKILL what is still running.
	for _, p := range all {
		p.signal(syscall.SIGCONT) // a stopped process would not act on SIGTERM
		p.signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, p := range all {
		select {
		case <-p.exited():
		case <-deadline:
		}
	}
	for _, p := range all {
		p.signal(syscall.SIGKILL)
	}
	for _, p := range all {
		select {
		case <-p.exited():
		case <-time.After(5 * time.Second):
		}
	}
	// pidfiles: daemons that forked on their own.
	for _, p := range all {
		if p.pidfile != "" {
			killPidfile(p.pidfile)
		}
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNamespace(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if l.markerPath != "" {
		os.Remove(l.markerPath)
	}
	if l.removeDir {
		os.RemoveAll(l.dir)
	}
	l.closeErr = errors.Join(errs...)
	return l.closeErr
}

// deleteNamespace kills whatever runs in ns, then deletes it.
func deleteNamespace(ns string) error {
	for range 50 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// FRR's -N (pathspace) creates /var/run/frr/<ns>.
	os.RemoveAll(filepath.Join("/var/run/frr", ns))
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("deleting namespace %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func killPidfile(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	// Only if it still runs a lab daemon: the pid may have been reused.
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), path) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// run runs a host command and returns its combined output; the error
// includes the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Sweep removes what labs of dead processes left behind: namespaces named
// acd-<id>-* whose owner process (recorded in /run/anycastd-lab/<id>.pid)
// is gone, with everything running in them. Labs of live processes are
// left alone. It returns the namespaces it deleted.
func Sweep() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var deleted []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		ns := f[0]
		id, _, ok := strings.Cut(strings.TrimPrefix(ns, nsPrefix), "-")
		if !ok || len(id) != 6 {
			continue
		}
		if ownerAlive(id) {
			continue
		}
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, ns)
	}
	entries, _ := os.ReadDir(markerDir)
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".pid")
		if !ownerAlive(id) {
			os.Remove(filepath.Join(markerDir, e.Name()))
		}
	}
	// Work directories of dead labs (Start's default location).
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "anycastd-lab-*-*"))
	for _, d := range dirs {
		id, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), "anycastd-lab-"), "-")
		if len(id) == 6 && !ownerAlive(id) {
			os.RemoveAll(d)
		}
	}
	return deleted, errors.Join(errs...)
}

func ownerAlive(id string) bool {
	data, err := os.ReadFile(filepath.Join(markerDir, id+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}
