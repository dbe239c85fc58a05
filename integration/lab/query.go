package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Exec runs argv in node's namespace and returns its combined output. The
// error includes the output.
func (l *Lab) Exec(node string, argv ...string) (string, error) {
	if _, ok := l.Topo.Nodes[node]; !ok {
		return "", fmt.Errorf("no node %s", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return run(ctx, "ip", append([]string{"netns", "exec", l.Namespace(node)}, argv...)...)
}

// Vtysh runs vtysh commands on an FRR node and returns the output.
func (l *Lab) Vtysh(node string, cmds ...string) (string, error) {
	if n := l.Topo.Nodes[node]; n == nil || n.Role != RoleFRR {
		return "", fmt.Errorf("%s is not an FRR node", node)
	}
	args := []string{"--vty_socket", l.NodeDir(node)}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return run(ctx, "vtysh", args...)
}

// VtyshJSON runs one vtysh command (ending in "json") and decodes its
// output into v.
func (l *Lab) VtyshJSON(node, cmd string, v any) error {
	out, err := l.Vtysh(node, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("%s: %q: decoding: %w: %.300s", node, cmd, err, out)
	}
	return nil
}

// Birdc runs one birdc command on a BIRD node.
func (l *Lab) Birdc(node, cmd string) (string, error) {
	if n := l.Topo.Nodes[node]; n == nil || n.Role != RoleBIRD {
		return "", fmt.Errorf("%s is not a BIRD node", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return run(ctx, "birdc", "-s", filepath.Join(l.NodeDir(node), "bird.ctl"), cmd)
}

// HTTPGet makes a GET request from node's namespace (no proxy, no
// keep-alive) and returns the status and body.
func (l *Lab) HTTPGet(ctx context.Context, node, url string) (int, string, error) {
	if _, ok := l.Topo.Nodes[node]; !ok {
		return 0, "", fmt.Errorf("no node %s", node)
	}
	ns := l.Namespace(node)
	c := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialInNamespace(ctx, ns, network, addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body), err
}

// dialInNamespace opens the socket on an OS thread switched into the
// namespace; a socket stays in the namespace it was created in, whatever
// thread uses it later.
func dialInNamespace(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Unlocked only once the thread is back in its own namespace;
		// otherwise it dies with this goroutine.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("entering namespace %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Log returns the content of a process's log file (e.g. "anycastd",
// "bgpd", "siteweb").
func (l *Lab) Log(node, name string) (string, error) {
	p, err := l.proc(node, name)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p.log)
	return string(data), err
}

// Dump writes every router's view (BGP sessions and routes) and the
// anycastd logs to w; used when a test fails.
func (l *Lab) Dump(w io.Writer) {
	fmt.Fprintf(w, "===== lab %s (%s), work dir %s\n", l.Topo.Name, l.ID, l.dir)
	for _, name := range l.Topo.NodeNames() {
		n := l.Topo.Nodes[name]
		switch n.Role {
		case RoleFRR:
			fmt.Fprintf(w, "----- %s (FRR)\n", name)
			out, err := l.Vtysh(name, "show bgp summary", "show bgp ipv4 unicast", "show bgp ipv6 unicast")
			if err != nil {
				fmt.Fprintf(w, "vtysh: %v\n", err)
			}
			fmt.Fprintln(w, strings.TrimSpace(out))
			for _, d := range []string{"zebra", "bgpd"} {
				if !l.Running(name, d) {
					fmt.Fprintf(w, "(%s is not running)\n", d)
				}
			}
		case RoleEtcd:
			health := "healthy"
			if err := l.EtcdHealthy(name); err != nil {
				health = err.Error()
			}
			fmt.Fprintf(w, "----- %s (etcd): running %v, /health: %s\n", name, l.Running(name, "etcd"), health)
		case RoleBIRD:
			fmt.Fprintf(w, "----- %s (BIRD)\n", name)
			for _, c := range []string{"show protocols all", "show route all"} {
				out, err := l.Birdc(name, c)
				if err != nil {
					fmt.Fprintf(w, "birdc %s: %v\n", c, err)
				}
				fmt.Fprintln(w, strings.TrimSpace(out))
			}
		}
	}
	for _, name := range l.Topo.NodeNames() {
		if l.Topo.Nodes[name].Role != RoleAnycastd {
			continue
		}
		fmt.Fprintf(w, "----- %s: anycastd log\n", name)
		out, err := l.Log(name, "anycastd")
		if err != nil {
			fmt.Fprintf(w, "%v\n", err)
		}
		fmt.Fprintln(w, tail(strings.TrimSpace(out), 150))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d lines left out]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

// Tools reports which of the programs the lab needs are missing: ip, and
// per role FRR (zebra, bgpd, vtysh) or BIRD (bird, birdc).
func Tools(roles ...Role) []string {
	var missing []string
	check := func(p string) {
		if filepath.IsAbs(p) {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
			}
		} else if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	check("ip")
	for _, r := range roles {
		switch r {
		case RoleFRR:
			check(filepath.Join(frrLibDir, "zebra"))
			check(filepath.Join(frrLibDir, "bgpd"))
			check("vtysh")
		case RoleBIRD:
			check("bird")
			check("birdc")
		}
	}
	return missing
}
