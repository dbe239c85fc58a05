package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// prepareNode creates the node's directory, writes the config files its
// role needs and registers (without starting) its software.
func (l *Lab) prepareNode(n *Node) error {
	dir := l.NodeDir(n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	switch n.Role {
	case RoleFRR:
		return l.prepareFRR(n, dir)
	case RoleBIRD:
		return l.prepareBIRD(n, dir)
	case RoleAnycastd:
		return l.prepareAnycastd(n, dir)
	case RoleEtcd:
		return l.prepareEtcd(n, dir)
	}
	return nil
}

// frrDaemons lists the daemons a `daemons` file enables, zebra first.
func frrDaemons(daemons []byte) []string {
	out := []string{"zebra"}
	sc := bufio.NewScanner(bytes.NewReader(daemons))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, val, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.Trim(val, `"'`) != "yes" {
			continue
		}
		switch name {
		case "zebra", "watchfrr", "vtysh_enable", "frr_profile":
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func (l *Lab) prepareFRR(n *Node, dir string) error {
	conf, err := n.File("frr.conf")
	if err != nil {
		return err
	}
	daemons, err := n.File("daemons")
	if err != nil {
		return err
	}
	uid, gid, err := lookupUser("frr")
	if err != nil {
		return fmt.Errorf("node %s: FRR runs as user frr: %w", n.Name, err)
	}
	confPath := filepath.Join(dir, "frr.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "daemons"), daemons, 0o644); err != nil {
		return err
	}
	for _, p := range []string{dir, confPath} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	ns := l.Namespace(n.Name)
	for _, d := range frrDaemons(daemons) {
		bin := filepath.Join(frrLibDir, d)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("node %s: daemons file enables %s: %w", n.Name, d, err)
		}
		p := &proc{
			node: n.Name, name: d, log: filepath.Join(dir, d+".log"),
			pidfile: filepath.Join(dir, d+".pid"),
			argv: []string{bin,
				"-N", ns,
				"-f", confPath,
				"-i", filepath.Join(dir, d+".pid"),
				"-z", filepath.Join(dir, "zserv.api"),
				"--vty_socket", dir,
				"-P", "0", // no TCP vty
				"--log", "stdout",
			},
		}
		if d == "bfdd" { // its control socket, per node, not in /var/run/frr
			p.argv = append(p.argv, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		vty := filepath.Join(dir, d+".vty")
		p.ready = waitFile(p, vty)
		l.addProc(p)
		l.addDaemon(n.Name, d, vty)
	}
	return nil
}

func (l *Lab) prepareBIRD(n *Node, dir string) error {
	conf, err := n.File("bird.conf")
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	ctl := filepath.Join(dir, "bird.ctl")
	p := &proc{
		node: n.Name, name: "bird", log: filepath.Join(dir, "bird.log"),
		pidfile: filepath.Join(dir, "bird.pid"),
		argv:    []string{"bird", "-f", "-c", confPath, "-s", ctl, "-P", filepath.Join(dir, "bird.pid")},
	}
	p.ready = waitFile(p, ctl)
	l.addProc(p)
	l.addDaemon(n.Name, "bird", ctl)
	return nil
}

func (l *Lab) prepareAnycastd(n *Node, dir string) error {
	conf, err := n.File("anycastd.toml")
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "anycastd.toml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	argv := []string{l.opts.Programs["anycastd"], "-config", confPath, "-log-format", "text"}
	p := &proc{
		node: n.Name, name: "anycastd", log: filepath.Join(dir, "anycastd.log"),
		argv: append(argv, l.opts.AnycastdArgs...),
	}
	// Ready once it logs (after loading its config), or still running
	// after a moment; a bad config fails the start with anycastd's message.
	p.ready = waitStarted(p, "level=", time.Second)
	l.addProc(p)
	l.addDaemon(n.Name, "anycastd", "")
	return nil
}

// addDaemon records name as part of the node's software; socket (if any)
// is removed before each start so readiness waits for a fresh one.
func (l *Lab) addDaemon(node, name, socket string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.daemon[node] = append(l.daemon[node], name)
	if socket == "" {
		return
	}
	l.procs[node][name].beforeStart = func() { os.Remove(socket) }
}

func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	return uid, gid, err
}
