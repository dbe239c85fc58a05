package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Role is what a node runs, and so how the lab starts it.
type Role string

const (
	RoleHost     Role = "host"     // nothing but its exec lines (e.g. the client)
	RoleFRR      Role = "frr"      // zebra + the daemons its `daemons` file enables
	RoleBIRD     Role = "bird"     // bird, with bird.conf
	RoleAnycastd Role = "anycastd" // the anycastd binary, with anycastd.toml
	RoleEtcd     Role = "etcd"     // Debian's etcd, with etcd.conf.yml (see etcd.go)
)

// RoleLabel is the node label that sets a node's role explicitly. Without it
// the role follows from the image name: "frr", then "bird", then "etcd",
// then "anycastd"; anything else is a plain host.
const RoleLabel = "anycastd.lab/role"

// maxIfName is the kernel's limit on interface names (IFNAMSIZ - 1).
const maxIfName = 15

// Topology is a parsed *.clab.yml: the subset of containerlab's format the
// lab understands (nodes of kind linux with image, binds, exec, labels; links
// as endpoint pairs "node:ifname").
type Topology struct {
	Name  string
	Dir   string // directory of the file; bind sources are relative to it
	Nodes map[string]*Node
	Links []Link
}

// Node is one topology node.
type Node struct {
	Name   string
	Kind   string
	Image  string
	Role   Role
	Binds  []Bind
	Exec   []string
	Labels map[string]string

	// files overrides bind contents by the base name of the bind target
	// (e.g. "anycastd.toml"); see Topology.SetFile.
	files map[string][]byte
}

// Bind is one "source:target[:options]" bind of a node.
type Bind struct {
	Source string // absolute path on the host
	Target string // path inside the container
}

// Endpoint is one end of a link.
type Endpoint struct{ Node, Iface string }

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a veth pair between two endpoints.
type Link struct{ A, B Endpoint }

type yamlFile struct {
	Name     string `yaml:"name"`
	Topology struct {
		Nodes map[string]*yamlNode `yaml:"nodes"`
		Links []struct {
			Endpoints []string `yaml:"endpoints"`
		} `yaml:"links"`
	} `yaml:"topology"`
}

type yamlNode struct {
	Kind   string            `yaml:"kind"`
	Image  string            `yaml:"image"`
	Binds  []string          `yaml:"binds"`
	Exec   []string          `yaml:"exec"`
	Labels map[string]string `yaml:"labels"`
}

// Load reads and checks a topology file.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, filepath.Dir(abs))
}

// Parse parses a topology whose bind sources are relative to dir.
func Parse(data []byte, dir string) (*Topology, error) {
	var f yamlFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parsing topology: %w", err)
	}
	t := &Topology{Name: f.Name, Dir: dir, Nodes: map[string]*Node{}}
	var errs []error
	for name, yn := range f.Topology.Nodes {
		if yn == nil {
			yn = &yamlNode{}
		}
		n := &Node{Name: name, Kind: yn.Kind, Image: yn.Image, Exec: yn.Exec, Labels: yn.Labels}
		if n.Kind != "linux" {
			errs = append(errs, fmt.Errorf("node %s: kind %q: only kind linux is supported", name, n.Kind))
		}
		for _, line := range n.Exec {
			if _, err := parseExecLine(line); err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", name, err))
			}
		}
		n.Role = roleOf(n)
		if n.Role == "" {
			errs = append(errs, fmt.Errorf("node %s: label %s=%q: want host, frr, bird, anycastd or etcd", name, RoleLabel, n.Labels[RoleLabel]))
		}
		for _, b := range yn.Binds {
			parts := strings.Split(b, ":")
			if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
				errs = append(errs, fmt.Errorf("node %s: bind %q: want source:target", name, b))
				continue
			}
			src := parts[0]
			if !filepath.IsAbs(src) {
				src = filepath.Join(dir, src)
			}
			n.Binds = append(n.Binds, Bind{Source: src, Target: parts[1]})
		}
		t.Nodes[name] = n
	}
	seen := map[Endpoint]bool{}
	for i, l := range f.Topology.Links {
		if len(l.Endpoints) != 2 {
			errs = append(errs, fmt.Errorf("link %d: want 2 endpoints, got %d", i+1, len(l.Endpoints)))
			continue
		}
		var eps [2]Endpoint
		for j, s := range l.Endpoints {
			node, iface, ok := strings.Cut(s, ":")
			eps[j] = Endpoint{node, iface}
			switch {
			case !ok || node == "" || iface == "":
				errs = append(errs, fmt.Errorf("link %d: endpoint %q: want node:interface", i+1, s))
			case t.Nodes[node] == nil:
				errs = append(errs, fmt.Errorf("link %d: endpoint %q: no node %s", i+1, s, node))
			case len(iface) > maxIfName:
				errs = append(errs, fmt.Errorf("link %d: endpoint %q: interface name longer than %d characters", i+1, s, maxIfName))
			case seen[eps[j]]:
				errs = append(errs, fmt.Errorf("link %d: endpoint %q used twice", i+1, s))
			}
			seen[eps[j]] = true
		}
		t.Links = append(t.Links, Link{A: eps[0], B: eps[1]})
	}
	if len(t.Nodes) == 0 {
		errs = append(errs, errors.New("topology has no nodes"))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return t, errors.Join(errs...)
}

func roleOf(n *Node) Role {
	if r, ok := n.Labels[RoleLabel]; ok {
		switch Role(r) {
		case RoleHost, RoleFRR, RoleBIRD, RoleAnycastd, RoleEtcd:
			return Role(r)
		}
		return ""
	}
	img := strings.ToLower(n.Image)
	switch {
	case strings.Contains(img, "frr"):
		return RoleFRR
	case strings.Contains(img, "bird"):
		return RoleBIRD
	case strings.Contains(img, "etcd"):
		return RoleEtcd
	case strings.Contains(img, "anycastd"):
		return RoleAnycastd
	}
	return RoleHost
}

// NodeNames returns the node names, sorted.
func (t *Topology) NodeNames() []string {
	names := make([]string, 0, len(t.Nodes))
	for n := range t.Nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SetFile replaces the content of a node's bind whose target has the given
// base name (e.g. "anycastd.toml", "frr.conf") for labs started from t. The
// file on disk is not touched.
func (t *Topology) SetFile(node, base string, content []byte) error {
	n := t.Nodes[node]
	if n == nil {
		return fmt.Errorf("no node %s", node)
	}
	if _, ok := n.bindByBase(base); !ok {
		return fmt.Errorf("node %s has no bind of %s", node, base)
	}
	if n.files == nil {
		n.files = map[string][]byte{}
	}
	n.files[base] = slices.Clone(content)
	return nil
}

// File returns the content of a node's bind with the given target base
// name, with any SetFile override applied.
func (n *Node) File(base string) ([]byte, error) {
	if data, ok := n.files[base]; ok {
		return data, nil
	}
	b, ok := n.bindByBase(base)
	if !ok {
		return nil, fmt.Errorf("node %s has no bind of %s", n.Name, base)
	}
	return os.ReadFile(b.Source)
}

func (n *Node) bindByBase(base string) (Bind, bool) {
	for _, b := range n.Binds {
		if filepath.Base(b.Target) == base {
			return b, true
		}
	}
	return Bind{}, false
}

// HasFile reports whether the node binds a file with that target base name.
func (n *Node) HasFile(base string) bool {
	_, ok := n.bindByBase(base)
	return ok
}
