package lab

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestEtcdLabConfig(t *testing.T) {
	in := []byte(`
listen-client-urls: http://198.18.100.1:2379,http://127.0.0.1:2379
advertise-client-urls: http://198.18.100.1:2379
data-dir: /var/lib/etcd
wal-dir: /var/lib/etcd/wal
`)
	conf, url, err := etcdLabConfig(in, "etcd", "/tmp/lab/etcd/etcd.data")
	if err != nil {
		t.Fatal(err)
	}
	if url != "http://198.18.100.1:2379" {
		t.Errorf("client URL %q, want the first listen-client-url", url)
	}
	var got map[string]any
	if err := yaml.Unmarshal(conf, &got); err != nil {
		t.Fatal(err)
	}
	if got["data-dir"] != "/tmp/lab/etcd/etcd.data" || got["wal-dir"] != nil || got["name"] != "etcd" ||
		got["advertise-client-urls"] != "http://198.18.100.1:2379" {
		t.Errorf("lab config:\n%s", conf)
	}

	for in, want := range map[string]string{
		"name: x\n": "no listen-client-urls",
		"listen-client-urls: https://198.18.100.1:2379\n":  "must be http://",
		"listen-client-urls: http://198.18.100.1\n":        "must be http://",
		"listen-client-urls: [http://198.18.100.1:2379]\n": "no listen-client-urls",
	} {
		if _, _, err := etcdLabConfig([]byte(in), "etcd", "/d"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %q", in, err, want)
		}
	}
}

func TestEtcdRole(t *testing.T) {
	topo, err := Parse([]byte(`
name: t
topology:
  nodes:
    e1: {kind: linux, image: gcr.io/etcd-development/etcd:v3.4.23}
    e2: {kind: linux, image: anycastd-etcd:latest}
    e3: {kind: linux, image: whatever, labels: {anycastd.lab/role: etcd}}
`), "/topo")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"e1", "e2", "e3"} {
		if r := topo.Nodes[n].Role; r != RoleEtcd {
			t.Errorf("node %s: role %s, want etcd", n, r)
		}
	}
}

// A missing etcd fails the lab's start, saying which package to install.
func TestEtcdMissing(t *testing.T) {
	l := &Lab{opts: Options{Programs: map[string]string{"etcd": "/nonexistent/etcd"}}, procs: map[string]map[string]*proc{}}
	n := &Node{Name: "etcd", Role: RoleEtcd}
	err := l.prepareEtcd(n, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "etcd-server") || !strings.Contains(err.Error(), "/nonexistent/etcd") {
		t.Errorf("prepareEtcd with no etcd binary: %v, want an error naming the binary and Debian's etcd-server", err)
	}
}
