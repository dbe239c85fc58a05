// Package containerlab holds the lab topologies (*.clab.yml) and the router
// and anycastd configs they bind. This test checks them without root: the
// topology files against containerlab's JSON schema, the anycastd configs
// with anycastd's own config loader, and the address plan. The integration
// tests (package integration) run them for real.
package containerlab

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/integration/lab"
)

// schemaPath is containerlab's schema, kept next to the repository
// (override with CLAB_SCHEMA).
const schemaPath = "../../shared/containerlab/clab.schema.json"

// topologies returns every lab topology: the user-facing ones here and the
// test-only ones of the integration tests.
func topologies(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*/*.clab.yml", "../integration/testdata/*/*.clab.yml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, want := range []string{"anycast-2site/anycast-2site.clab.yml", "anycast-bird/anycast-bird.clab.yml"} {
		if !slices.Contains(files, want) {
			t.Errorf("topology %s is missing", want)
		}
	}
	return files
}

func TestTopologiesMatchSchema(t *testing.T) {
	path := schemaPath
	if p := os.Getenv("CLAB_SCHEMA"); p != "" {
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("containerlab schema not available (%v); set CLAB_SCHEMA", err)
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatalf("reading schema %s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("clab.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("clab.schema.json")
	if err != nil {
		t.Fatalf("compiling schema: %v", err)
	}
	for _, file := range topologies(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var y any
			if err := yaml.Unmarshal(data, &y); err != nil {
				t.Fatalf("YAML: %v", err)
			}
			// Through JSON, so the validator sees JSON types only.
			j, err := json.Marshal(y)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err != nil {
				t.Errorf("%s does not match the containerlab schema:\n%v", file, err)
			}
		})
	}
}

var devWord = regexp.MustCompile(`\bdev (\S+)`)

// TestTopologiesAreRunnable checks what the namespace lab relies on: the
// file parses, every bind exists, every node role has the configs it needs,
// anycastd configs load, and exec lines name only interfaces the node has.
func TestTopologiesAreRunnable(t *testing.T) {
	for _, file := range topologies(t) {
		t.Run(file, func(t *testing.T) {
			topo, err := lab.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(filepath.Base(file), ".clab.yml"); topo.Name != want {
				t.Errorf("name %q, want %q (the file name)", topo.Name, want)
			}
			ifaces := map[string][]string{}
			for _, l := range topo.Links {
				ifaces[l.A.Node] = append(ifaces[l.A.Node], l.A.Iface)
				ifaces[l.B.Node] = append(ifaces[l.B.Node], l.B.Iface)
			}
			for _, name := range topo.NodeNames() {
				n := topo.Nodes[name]
				for _, b := range n.Binds {
					if _, err := os.Stat(b.Source); err != nil {
						t.Errorf("node %s: bind %s: %v", name, b.Target, err)
					}
				}
				need := map[lab.Role][]string{
					lab.RoleFRR:      {"frr.conf", "daemons"},
					lab.RoleBIRD:     {"bird.conf"},
					lab.RoleAnycastd: {"anycastd.toml"},
				}[n.Role]
				for _, f := range need {
					if !n.HasFile(f) {
						t.Errorf("node %s (%s) binds no %s", name, n.Role, f)
					}
				}
				if n.Role == lab.RoleAnycastd {
					checkAnycastdConfig(t, name, n)
				}
				for _, line := range n.Exec {
					for _, m := range devWord.FindAllStringSubmatch(line, -1) {
						if m[1] != "lo" && !slices.Contains(ifaces[name], m[1]) {
							t.Errorf("node %s: exec %q: no link gives it interface %s", name, line, m[1])
						}
					}
				}
			}
		})
	}
}

func checkAnycastdConfig(t *testing.T, node string, n *lab.Node) {
	t.Helper()
	for _, b := range n.Binds {
		if filepath.Base(b.Target) != "anycastd.toml" {
			continue
		}
		cfg, err := config.Load(b.Source)
		if err != nil {
			t.Errorf("node %s: %v", node, err)
			continue
		}
		if cfg.BGP.ListenPort != 0 {
			t.Errorf("node %s: listen_port %d: lab sites connect out only (0)", node, cfg.BGP.ListenPort)
		}
		if cfg.Interface.Manage {
			t.Errorf("node %s: [interface] manage must be false: the exec lines put the VIPs on lo", node)
		}
		for _, p := range cfg.BGP.Peers {
			if p.HoldTime != 3*time.Second {
				t.Errorf("node %s: peer %s: hold_time %v, the lab uses 3s", node, p.Address, p.HoldTime)
			}
		}
	}
}

var (
	ipv4Word = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}\b`)
	ipv6Word = regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}`)
	allowed  = []netip.Prefix{
		netip.MustParsePrefix("198.18.0.0/15"),  // links
		netip.MustParsePrefix("203.0.113.0/24"), // VIPs
		netip.MustParsePrefix("2001:db8::/32"),  // VIPs and links
		netip.MustParsePrefix("127.0.0.0/8"),    // loopback
		netip.MustParsePrefix("0.0.0.0/32"),     // unspecified
		netip.MustParsePrefix("::/128"),         // unspecified
		netip.MustParsePrefix("::1/128"),        // loopback
		netip.MustParsePrefix("fe80::/10"),      // link-local peering: never leaves its link
	}
)

// TestAddressPlan: every address in every lab file (topologies and the
// configs they bind) is a link address in 198.18.0.0/15, a VIP in
// 203.0.113.0/24 or 2001:db8::/32, loopback, or link-local (which no
// router forwards).
func TestAddressPlan(t *testing.T) {
	var files []string
	for _, dir := range []string{".", "../integration/testdata"} {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".go") {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) == 0 {
		t.Fatal("no lab files found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			var words []string
			words = append(words, ipv4Word.FindAllString(line, -1)...)
			words = append(words, ipv6Word.FindAllString(line, -1)...)
			for _, w := range words {
				a, err := netip.ParseAddr(w)
				if err != nil {
					continue // not an address (a time, a community, ...)
				}
				if !slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(a) }) {
					t.Errorf("%s:%d: address %s is outside the lab's ranges", f, i+1, a)
				}
			}
		}
	}
}
