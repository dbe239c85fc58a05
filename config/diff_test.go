package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const diffBase = `
[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000

[[bgp.peer]]
address = "198.18.1.5"
asn = 65000

[[check]]
name = "web"
type = "tcp"
address = "127.0.0.1:80"

[[check]]
name = "db"
type = "tcp"
address = "127.0.0.1:5432"

[[vip]]
name = "web"
prefixes = ["203.0.113.42/32"]
checks = ["web"]
communities = ["65001:100"]

[[vip]]
name = "old"
prefixes = ["203.0.113.7/32"]
checks = ["db"]
`

func mustParse(t *testing.T, s string) *Config {
	t.Helper()
	c, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompare(t *testing.T) {
	old := mustParse(t, diffBase)
	edited := strings.NewReplacer(
		`communities = ["65001:100"]`, `communities = ["65001:200"]`,
		`address = "127.0.0.1:5432"`, `address = "127.0.0.1:5433"`,
		"[[bgp.peer]]\naddress = \"198.18.1.5\"\nasn = 65000\n", "[[bgp.peer]]\naddress = \"198.18.1.9\"\nasn = 65000\nhold_time = \"3s\"\n",
		`name = "old"`+"\n"+`prefixes = ["203.0.113.7/32"]`, `name = "new"`+"\n"+`prefixes = ["203.0.113.8/32"]`,
		`asn = 65001`, `asn = 65009`,
	).Replace(diffBase)
	got := Compare(old, mustParse(t, edited)).String()
	want := `! bgp.asn: 65001 -> 65009 needs a restart; a reload is refused
+ bgp.peer "198.18.1.9": AS 65000: a new session starts
- bgp.peer "198.18.1.5": AS 65000: this session closes (the router withdraws this node's routes)
~ check "db": address 127.0.0.1:5432 -> 127.0.0.1:5433: only this check restarts (its VIPs keep their state until it decides)
~ vip "web": communities [65001:100] -> [65001:200]: an announced route is replaced in place (one UPDATE, no withdrawal)
+ vip "new": 203.0.113.8/32: announced once its checks rise
- vip "old": 203.0.113.7/32: withdrawn`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Compare (-want +got):\n%s", d)
	}
	if n := len(Compare(old, old).Changes); n != 0 {
		t.Errorf("comparing a config with itself: %d changes", n)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"HoldTime": "hold_time", "MED": "med", "NextHopIPv6": "next_hop_ipv6",
		"ASN": "asn", "RouterID": "router_id", "LocalPref": "local_pref", "LargeCommunities": "large_communities"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// A compiled regular expression and a parsed URL compare by their text: two
// loads of one file are equal, and a change names the key as written.
func TestCompareCompiledValues(t *testing.T) {
	const base = `
[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000

[[check]]
name = "api"
type = "http"
url = "http://127.0.0.1:8080/health"
expect_body_regex = '^\{"status":\s*"up"'

[[vip]]
name = "api"
prefixes = ["203.0.113.42/32"]
checks = ["api"]
`
	a, b := mustParse(t, base), mustParse(t, base)
	if a.Checks[0].HTTP.ExpectBodyRegex == b.Checks[0].HTTP.ExpectBodyRegex || a.Checks[0].HTTP.ParsedURL == b.Checks[0].HTTP.ParsedURL {
		t.Fatal("two loads share their compiled values: the test proves nothing")
	}
	if d := Compare(a, b); !d.Empty() {
		t.Errorf("two loads of one file differ:\n%s", d)
	}
	restart := ": only this check restarts (its VIPs keep their state until it decides)"
	for _, tc := range []struct{ from, to, want string }{
		{`'^\{"status":\s*"up"'`, `'^\{"status":\s*"ok"'`,
			`~ check "api": expect_body_regex ^\{"status":\s*"up" -> ^\{"status":\s*"ok"` + restart},
		{`"http://127.0.0.1:8080/health"`, `"http://127.0.0.1:8080/healthz"`,
			`~ check "api": url http://127.0.0.1:8080/health -> http://127.0.0.1:8080/healthz` + restart},
	} {
		edited := mustParse(t, strings.Replace(base, tc.from, tc.to, 1))
		if got := Compare(a, edited).String(); got != tc.want {
			t.Errorf("%s -> %s:\ngot  %s\nwant %s", tc.from, tc.to, got, tc.want)
		}
	}
}

// A changed table that needs a restart names its keys, not a Go struct.
func TestCompareRestartTablesNameTheirKeys(t *testing.T) {
	old := mustParse(t, diffBase+"\n[interface]\nname = \"lo\"\n\n[metrics]\nlisten = \"127.0.0.1:9479\"\n")
	edited := mustParse(t, diffBase+"\n[interface]\nname = \"anyc0\"\n\n[metrics]\nlisten = \"127.0.0.1:9480\"\n")
	got := Compare(old, edited).String()
	want := `! interface: name lo -> anyc0 needs a restart; a reload is refused
! metrics: listen 127.0.0.1:9479 -> 127.0.0.1:9480 needs a restart; a reload is refused`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Compare (-want +got):\n%s", d)
	}
}

// [interface] method needs a restart: the host entries of one method are
// not turned into the other's by a reload.
func TestCompareInterfaceMethodNeedsRestart(t *testing.T) {
	old := mustParse(t, diffBase)
	edited := mustParse(t, diffBase+"\n[interface]\nmethod = \"local-route\"\n")
	if edited.Interface.Method != InterfaceMethodLocalRoute || old.Interface.Method != InterfaceMethodAddress {
		t.Fatalf("method = %q (default %q), want %q (default %q)", edited.Interface.Method, old.Interface.Method,
			InterfaceMethodLocalRoute, InterfaceMethodAddress)
	}
	d := Compare(old, edited)
	want := `! interface: method address -> local-route needs a restart; a reload is refused`
	if got := d.String(); got != want {
		t.Errorf("Compare:\ngot  %s\nwant %s", got, want)
	}
	if len(d.Refused()) != 1 {
		t.Errorf("refused = %v, want the method change", d.Refused())
	}
}

// A change inside [vip.degraded] names its keys as degraded.KEY; a table
// added or removed shows its keys and values (never Go internals such as
// a pointer's address); a change that does not touch the attributes does
// not claim to replace the route.
func TestCompareDegradedAndNotes(t *testing.T) {
	degraded := strings.Replace(diffBase, `communities = ["65001:100"]`,
		"communities = [\"65001:100\"]\non_failure = \"degrade\"\n\n[vip.degraded]\nmed = 1000\ncommunities = [\"65001:666\"]\n", 1)
	cases := []struct {
		name, old, new, want string
	}{
		{"degraded med", degraded, strings.Replace(degraded, "med = 1000", "med = 2000", 1),
			`~ vip "web": degraded.med 1000 -> 2000: a degraded announcement is replaced in place (one UPDATE, no withdrawal); a VIP that is up is not touched`},
		{"degraded removed", strings.Replace(degraded, "on_failure = \"degrade\"\n", "", 1), diffBase,
			`~ vip "web": degraded {med 1000, communities [65001:666]} -> -: a degraded announcement is replaced in place (one UPDATE, no withdrawal); a VIP that is up is not touched`},
		{"maintenance file", diffBase, strings.Replace(diffBase, `communities = ["65001:100"]`, "communities = [\"65001:100\"]\nmaintenance_file = \"/etc/anycastd/web.down\"", 1),
			`~ vip "web": maintenance_file  -> /etc/anycastd/web.down: its state is computed again at once; an UPDATE goes out only if the state changes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Compare(mustParse(t, tc.old), mustParse(t, tc.new))
			var got []string
			for _, c := range d.Changes {
				got = append(got, c.String())
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// A change of only [bgp.peer.bfd] keeps the BGP session.
func TestCompareBFDOnly(t *testing.T) {
	withBFD := strings.Replace(diffBase, "address = \"198.18.1.1\"\nasn = 65000\n",
		"address = \"198.18.1.1\"\nasn = 65000\n[bgp.peer.bfd]\nmin_tx = \"100ms\"\n", 1)
	d := Compare(mustParse(t, withBFD), mustParse(t, strings.Replace(withBFD, `min_tx = "100ms"`, `min_tx = "50ms"`, 1)))
	want := `~ bgp.peer "198.18.1.1": bfd.min_tx 100ms -> 50ms: the BFD session takes the new timers with a Poll sequence (RFC 5880 §6.8.3): no session reset`
	if len(d.Changes) != 1 || d.Changes[0].String() != want {
		t.Errorf("changes %v, want %q", d.Changes, want)
	}
}
