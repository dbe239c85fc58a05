package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const birdSvc = "[DEFAULT]\ncheck_disabled = false\n\n[daemon]\nipv6 = true\n\n[web]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.10\n"

// convertBIRDText converts bird.conf = conf with the service file birdSvc.
func convertBIRDText(t *testing.T, conf string) (*Result, error) {
	t.Helper()
	return Convert("anycast-healthchecker", []Input{{Name: "bird.conf", Data: []byte(conf)}, {Name: "svc.conf", Data: []byte(birdSvc)}}, Options{})
}

func TestBIRDSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"open block", "router id 198.18.0.2;\nprotocol bgp a {\n  neighbor 198.18.0.1 as 65000;\n", "bird.conf:2: '{' not closed by the end of the file"},
		{"open comment", "/* a\n\n", "bird.conf:1: comment /* not closed"},
		{"bad router id", "router id 2001:db8::2;\n", "bird.conf:1: router id \"2001:db8::2\": want an IPv4 address"},
		{"bad neighbor", "protocol bgp a {\n  local as 65001;\n  neighbor core1 as 65000;\n}\n", "bird.conf:3: neighbor \"core1\": not an IP address"},
		{"bad AS", "protocol bgp a {\n  local as 65001;\n  neighbor 198.18.0.1 as 4294967296;\n}\n", "bird.conf:3: neighbor as \"4294967296\": want an AS number 1..4294967295"},
		{"bad local AS", "protocol bgp a {\n\n  local 198.18.0.2 as x;\n}\n", "bird.conf:3: local as \"x\": want an AS number 1..4294967295"},
		{"bad hold time", "protocol bgp a {\n  hold time 9s;\n}\n", "bird.conf:2: time 9s: \"9s\" is not a whole number in 0..65535"},
		{"bad switch", "protocol bgp a {\n  neighbor 198.18.0.1 as 65000;\n  passive maybe;\n}\n", "bird.conf:3: \"maybe\": want on or off"},
		{"no template", "protocol bgp a from base {\n  neighbor 198.18.0.1 as 65000;\n}\n", "bird.conf:1: template \"base\" is not defined"},
		{"template loop", "template bgp t1 from t2 { }\ntemplate bgp t2 from t1 { }\nprotocol bgp a from t1 { }\n", "bird.conf:1: templates inherit from each other in a loop"},
		{"bad next hop", "protocol bgp a {\n  neighbor 198.18.0.1 as 65000;\n  ipv6 {\n    export all;\n    next hop address self6;\n  };\n}\n", "bird.conf:5: next hop address \"self6\": not an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertBIRDText(t, tc.conf)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SyntaxError %q", err, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got  %q\nwant %q", err.Error(), tc.want)
			}
		})
	}
}

// TestBIRDTemplates checks inheritance (a protocol's statements after its
// template's, channels merged), defines, link-local neighbors, internal
// sessions and the peers left out.
func TestBIRDTemplates(t *testing.T) {
	conf := `
define MY_AS = 65001;
template bgp base {
	local as MY_AS;
	hold time 30;
	ipv4 { import none; export where net ~ ACAST_PS_ADVERTISE; };
}
protocol bgp a from base {
	neighbor 198.18.0.1 as 65000;
	hold time 15;
	local 198.18.0.2;
	ipv4 { next hop address 198.18.0.2; };
	ipv6 { import none; export all; next hop address 2001:db8::2; };
}
protocol bgp ll from base {
	neighbor fe80::1 as 65000;
	interface "eth0";
}
protocol bgp ibgp from base {
	neighbor 198.18.0.9 internal;
}
protocol bgp quiet {
	local as MY_AS;
	neighbor 198.18.0.5 as 65000;
	ipv4 { import none; };
}
protocol bgp off from base {
	neighbor 198.18.0.6 as 65000;
	disabled;
}
`
	res, err := convertBIRDText(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Invalid != nil || len(res.Issues) > 0 {
		t.Fatalf("invalid %v, issues %v:\n%s", res.Invalid, res.Issues, res.TOML)
	}
	out := string(res.TOML)
	for _, want := range []string{
		"asn = 65001                          # local as 65001",
		`router_id = "198.18.0.2"             # the local address of protocol bgp a: BIRD's file sets no router id`,
		`hold_time = "15s"                    # hold time 15`,
		`families = ["ipv4", "ipv6"]          # channels ipv4, ipv6`,
		`next_hop_ipv4 = "198.18.0.2"         # next hop address 198.18.0.2`,
		`address = "fe80::1%eth0"             # neighbor fe80::1, interface "eth0"`,
		`hold_time = "30s"                    # hold time 30`,
		"asn = 65001                          # neighbor … internal",
		"# protocol bgp quiet (bird.conf:22) exports nothing (BIRD's default is export none): left out, as anycastd would send it every VIP.",
		"# protocol bgp off (bird.conf:27) is disabled (or a neighbor range): left out.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"198.18.0.5"`) || strings.Contains(out, `"198.18.0.6"`) {
		t.Errorf("a peer left out is in the output:\n%s", out)
	}
}

// TestBIRDExportFilters: communities added at a filter's top level go to
// the peer; a changed attribute anywhere else, or in a called function, is
// an issue at its line.
func TestBIRDExportFilters(t *testing.T) {
	conf := `router id 198.18.0.2;
function tag() {
	bgp_path.prepend(65001);
	return true;
}
filter out {
	bgp_large_community.add((65001, 1, 2));
	if net ~ [ 203.0.113.0/24+ ] then accept;
	reject;
}
protocol bgp a {
	local as 65001;
	neighbor 198.18.0.1 as 65000;
	ipv4 { import none; export filter out; };
}
protocol bgp b {
	local as 65001;
	neighbor 198.18.0.3 as 65000;
	ipv4 { import none; export where tag(); };
}
`
	res, err := convertBIRDText(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.TOML), `large_communities = ["65001:1:2"]    # bgp_large_community.add in the export filter`) {
		t.Errorf("no large community:\n%s", res.TOML)
	}
	got := issueLines(res)
	want := []string{"bird.conf:3: protocol bgp b: the export filter changes bgp_path: set med, prepend or communities on the [[vip]] (or communities on the [[bgp.peer]]) by hand"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzBIRD converts arbitrary bytes as BIRD's file: no panic, and any
// error a *SyntaxError with a line.
func FuzzBIRD(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/anycast-healthchecker-*/bird*.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("template bgp t { local 198.18.0.2 as 1; bfd on; multihop; ttl security; }\nprotocol bfd { interval 20 ms; }\nprotocol bgp from t { neighbor fe80::1%eth0 port 1179 internal; ipv6; }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert("anycast-healthchecker", []Input{{Name: "bird.conf", Data: data}, {Name: "svc.conf", Data: []byte(birdSvc)}}, Options{})
		checkFuzzResult(t, res, err)
	})
}

// TestBIRDIPv6OverIPv4 is an issue without next hop address: anycastd
// needs next_hop_ipv6 to send IPv6 routes over an IPv4 session.
func TestBIRDIPv6OverIPv4(t *testing.T) {
	res, err := convertBIRDText(t, "router id 198.18.0.2;\nprotocol bgp a {\n  local as 65001;\n  neighbor 198.18.0.1 as 65000;\n  ipv4 { export all; };\n  ipv6 { export all; };\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "bird.conf:2: protocol bgp a: its ipv6 channel over an IPv4 session has no next hop address: anycastd needs next_hop_ipv6 for it"
	if len(res.Issues) != 1 || res.Issues[0].String() != want {
		t.Errorf("issues %v, want %s", res.Issues, want)
	}
}
