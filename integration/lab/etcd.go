package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The etcd role: a single-member etcd, the fleet guard's coordinator
// ([fleet] in anycastd.toml), in its own namespace. The node binds an
// etcd.conf.yml (etcd's --config-file format: name, listen-client-urls,
// advertise-client-urls, listen-peer-urls, initial-cluster, ...). The lab
// runs Debian's etcd (package etcd-server, 3.4) on it, or the binary
// Options.Programs["etcd"] names, with these changes:
//
//   - data-dir is DIR/etcd.data (DIR: the node's directory in the lab's
//     temporary work directory), wal-dir is dropped: every lab starts from
//     an empty store, and a restart (StartProcess after KillProcess) keeps
//     it, like a real member's restart;
//   - name defaults to the node's name.
//
// The listen-client-urls must be plain http:// URLs on the node's lab
// addresses (which its exec lines add before the lab starts etcd); the
// first one is where readiness is checked: GET /health from the node's
// namespace answers {"health":"true"} once the member has elected itself.
// A missing etcd binary fails the lab's start (never a skip): `make
// test-deps` installs etcd-server.

// etcdBinary is where Debian's etcd-server package puts etcd.
const etcdBinary = "/usr/bin/etcd"

// etcdConf is the bound config file's base name.
const etcdConf = "etcd.conf.yml"

func (l *Lab) prepareEtcd(n *Node, dir string) error {
	bin := etcdBinary
	if p := l.opts.Programs["etcd"]; p != "" {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("node %s (etcd): %w: install Debian's etcd-server package (make test-deps does)", n.Name, err)
	}
	data, err := n.File(etcdConf)
	if err != nil {
		return err
	}
	conf, clientURL, err := etcdLabConfig(data, n.Name, filepath.Join(dir, "etcd.data"))
	if err != nil {
		return fmt.Errorf("node %s: %s: %w", n.Name, etcdConf, err)
	}
	confPath := filepath.Join(dir, etcdConf)
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	p := &proc{
		node: n.Name, name: "etcd", log: filepath.Join(dir, "etcd.log"),
		argv: []string{bin, "--config-file", confPath},
	}
	p.ready = l.waitEtcdHealthy(p, clientURL)
	l.addProc(p)
	l.addDaemon(n.Name, "etcd", "")
	return nil
}

// etcdLabConfig returns the config etcd runs with in the lab (see above)
// and the first client URL.
func etcdLabConfig(data []byte, node, dataDir string) (conf []byte, clientURL string, err error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, "", err
	}
	if m == nil {
		m = map[string]any{}
	}
	urls, _ := m["listen-client-urls"].(string)
	if strings.TrimSpace(urls) == "" {
		return nil, "", errors.New("no listen-client-urls: the lab needs an http:// URL on a lab address")
	}
	first, _, _ := strings.Cut(urls, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return nil, "", fmt.Errorf("listen-client-urls %q: the first must be http://address:port (the lab checks its /health)", urls)
	}
	m["data-dir"] = dataDir
	delete(m, "wal-dir")
	if _, ok := m["name"]; !ok {
		m["name"] = node
	}
	conf, err = yaml.Marshal(m)
	return conf, u.Scheme + "://" + u.Host, err
}

// waitEtcdHealthy waits until GET clientURL/health, made from p's node's
// namespace, answers {"health":"true"}; it fails if p exits first, quoting
// its log.
func (l *Lab) waitEtcdHealthy(p *proc, clientURL string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var last error
		for {
			if last = l.etcdHealth(ctx, p.node, clientURL); last == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s/health: %w (%w)", clientURL, last, ctx.Err())
			case <-p.exited():
				log, _ := os.ReadFile(p.log)
				return fmt.Errorf("exited during startup:\n%s", tail(strings.TrimSpace(string(log)), 20))
			case <-t.C:
			}
		}
	}
}

// etcdHealth asks etcd's /health from node's namespace.
func (l *Lab) etcdHealth(ctx context.Context, node, clientURL string) error {
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	status, body, err := l.HTTPGet(cctx, node, clientURL+"/health")
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil || h.Health != "true" {
		return fmt.Errorf("status %d: %s", status, strings.TrimSpace(body))
	}
	return nil
}

// EtcdHealthy is nil when the etcd of node answers {"health":"true"} on
// its first client URL (from the node's own namespace).
func (l *Lab) EtcdHealthy(node string) error {
	n := l.Topo.Nodes[node]
	if n == nil || n.Role != RoleEtcd {
		return fmt.Errorf("%s is not an etcd node", node)
	}
	data, err := n.File(etcdConf)
	if err != nil {
		return err
	}
	_, clientURL, err := etcdLabConfig(data, node, "")
	if err != nil {
		return err
	}
	return l.etcdHealth(context.Background(), node, clientURL)
}
