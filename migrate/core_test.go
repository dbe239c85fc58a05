package migrate

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitShell(t *testing.T) {
	for _, tc := range []struct {
		in    string
		argv  []string
		shell bool
	}{
		{`curl -sf http://127.0.0.1/`, []string{"curl", "-sf", "http://127.0.0.1/"}, false},
		{`check 'a b' "c \"d\"" e\ f`, []string{"check", "a b", `c "d"`, "e f"}, false},
		{`pidof nginx | grep -q .`, []string{"pidof", "nginx", "|", "grep", "-q", "."}, true},
		{`test -f /run/x && exit 0`, []string{"test", "-f", "/run/x", "&&", "exit", "0"}, true},
		{`echo "$HOME"`, []string{"echo", "$HOME"}, true},
		{`echo '$HOME'`, []string{"echo", "$HOME"}, false},
		{`LANG=C dig x`, []string{"LANG=C", "dig", "x"}, true},
		{`/usr/bin/check --opt=a`, []string{"/usr/bin/check", "--opt=a"}, false},
		{`ls ~/x`, []string{"ls", "~/x"}, true},
		{`ls /run/*.pid`, []string{"ls", "/run/*.pid"}, true},
		{`curl http://[2001:db8::1]/?a=b`, []string{"curl", "http://[2001:db8::1]/?a=b"}, false},
		{`a ""`, []string{"a", ""}, false},
	} {
		argv, shell, err := splitShell(tc.in)
		if err != nil || !reflect.DeepEqual(argv, tc.argv) || shell != tc.shell {
			t.Errorf("splitShell(%q) = %q, %v, %v; want %q, %v", tc.in, argv, shell, err, tc.argv, tc.shell)
		}
	}
	for _, in := range []string{`a 'b`, `a "b`} {
		if _, _, err := splitShell(in); err == nil {
			t.Errorf("splitShell(%q): no error", in)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.5": 500 * time.Millisecond, " 2 ": 2 * time.Second, "0": 0} {
		if d, err := seconds(in); err != nil || time.Duration(d) != want {
			t.Errorf("seconds(%q) = %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{"", "5s", "-1", "NaN", "1e9", "x"} {
		if _, err := seconds(in); err == nil {
			t.Errorf("seconds(%q): no error", in)
		}
	}
}

func TestHostPrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"203.0.113.10", "203.0.113.10/32", false},
		{"203.0.113.10/32", "203.0.113.10/32", false},
		{"203.0.113.10/24", "203.0.113.10/32", true},
		{"2001:db8::1", "2001:db8::1/128", false},
		{"2001:db8::1/64", "2001:db8::1/128", true},
	} {
		got, changed, err := hostPrefix(tc.in)
		if err != nil || got != tc.want || changed != tc.changed {
			t.Errorf("hostPrefix(%q) = %q, %v, %v; want %q, %v", tc.in, got, changed, err, tc.want, tc.changed)
		}
	}
	for _, in := range []string{"", "eth0", "fe80::1%eth0", "203.0.113.1/33"} {
		if _, _, err := hostPrefix(in); err == nil {
			t.Errorf("hostPrefix(%q): no error", in)
		}
	}
}

func TestFitTiming(t *testing.T) {
	s := func(n float64) Duration { return Duration(time.Duration(n * float64(time.Second))) }
	for _, tc := range []struct {
		name                string
		interval, fast, tmo Duration
		want                string
	}{
		{"below", s(5), s(1), s(0.5), `interval = "5s"|fast_interval = "1s"|timeout = "500ms"`},
		{"equal to fast", s(5), s(1), s(1), `interval = "5s"|fast_interval = "1s"|timeout = "900ms" # --timeout (1s): anycastd's timeout must be below fast_interval (1s)`},
		{"no fast", s(2), 0, s(2), `interval = "2s"|timeout = "1.8s" # --timeout (2s): anycastd's timeout must be below fast_interval (2s)`},
		{"fast above interval", s(1), s(2), 0, `interval = "1s"|fast_interval = "1s" # the source's fast interval 2s: anycastd's is never above interval`},
	} {
		c := &Table{}
		fitTiming(c, tc.interval, tc.fast, tc.tmo, "--timeout")
		var parts []string
		for _, f := range c.Fields {
			p := f.Key + " = " + value(f.Value)
			if f.Comment != "" {
				p += " # " + f.Comment
			}
			parts = append(parts, p)
		}
		if got := strings.Join(parts, "|"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestProbeFor(t *testing.T) {
	for _, tc := range []struct {
		cmd     string
		want    string
		timeout time.Duration
	}{
		{"curl -sf --max-time 2 http://127.0.0.1:8080/healthz",
			`type="http" url="http://127.0.0.1:8080/healthz" expect_status=["200-399"]`, 2 * time.Second},
		{"/usr/bin/curl --fail --silent -o /dev/null -k -H 'Host: www.example.net' https://127.0.0.1/",
			`type="https" url="https://127.0.0.1/" expect_status=["200-399"] host="www.example.net" insecure_skip_verify=true`, 0},
		{"curl -s -I -L http://[2001:db8::1]/",
			`type="http" url="http://[2001:db8::1]/" method="HEAD" expect_status=["100-599"] follow_redirects=true`, 0},
		{"nc -z -w 2 127.0.0.1 53", `type="tcp" address="127.0.0.1:53"`, 2 * time.Second},
		{"nc -zv 2001:db8::53 53", `type="tcp" address="[2001:db8::53]:53"`, 0},
		{"curl -sf http://a/ -d x", `type="exec" command=["curl", "-sf", "http://a/", "-d", "x"]`, 0},
		{"curl -sf http://a/ | grep ok", `type="exec" command="curl -sf http://a/ | grep ok" shell=true`, 0},
		{"nc -u -z 127.0.0.1 53", `type="exec" command=["nc", "-u", "-z", "127.0.0.1", "53"]`, 0},
		{"curl -sf ftp://a/", `type="exec" command=["curl", "-sf", "ftp://a/"]`, 0},
		{"/usr/local/bin/check-dns", `type="exec" command=["/usr/local/bin/check-dns"]`, 0},
		{"dig +time=1 +tries=1 @127.0.0.1 www.example.net A",
			`type="dns" query_name="www.example.net" query_type="A" server="127.0.0.1" expect_rcode="NOERROR"`, time.Second},
		{"dig -p 5353 +tcp +short @2001:db8::53 example.net aaaa",
			`type="dns" query_name="example.net" query_type="AAAA" server="[2001:db8::53]:5353" protocol="tcp" expect_rcode="NOERROR"`, 0},
		{"dig www.example.net", `type="exec" command=["dig", "www.example.net"]`, 0},
		{"</dev/tcp/127.0.0.1/80", `type="tcp" address="127.0.0.1:80"`, 0},
		{" < /dev/tcp/::1/53", `type="tcp" address="[::1]:53"`, 0},
		{"</dev/tcp/127.0.0.1/http", `type="exec" command="</dev/tcp/127.0.0.1/http" shell=true`, 0},
		{"</dev/udp/127.0.0.1/53", `type="exec" command="</dev/udp/127.0.0.1/53" shell=true`, 0},
		{"dig +norec @127.0.0.1 example.net", `type="exec" command=["dig", "+norec", "@127.0.0.1", "example.net"]`, 0},
	} {
		p, err := probeFor(tc.cmd)
		if err != nil {
			t.Errorf("%q: %v", tc.cmd, err)
			continue
		}
		var parts []string
		for _, f := range p.Fields {
			parts = append(parts, f.Key+"="+value(f.Value))
		}
		if got := strings.Join(parts, " "); got != tc.want || time.Duration(p.Timeout) != tc.timeout {
			t.Errorf("%q:\n got %s (timeout %v)\nwant %s (timeout %v)", tc.cmd, got, time.Duration(p.Timeout), tc.want, tc.timeout)
		}
	}
}

func TestEncode(t *testing.T) {
	d := NewDoc()
	d.Header = []string{"head"}
	d.BGP.Set("asn", uint32(65001), "local-as")
	d.BGP.Set("router_id", "198.18.1.2", "")
	p := d.AddPeer("198.18.1.1", "from f:3")
	p.Set("password", "a\"b\\c\td", "")
	c := d.AddCheck("web site")
	c.Set("env", map[string]string{"B": "2", "A": "1"}, "")
	v := d.AddVIP("web site")
	v.Set("prepend", 1, "a comment that is long enough to go past the column, which must not matter")
	v.Child("vip.degraded").Set("med", int64(1000), "")
	d.AddVIP("web site")
	d.Notef("a note")
	d.Fail("f", 7, "static route")
	want := `# head

[bgp]
asn = 65001                          # local-as
router_id = "198.18.1.2"

# from f:3
[[bgp.peer]]
address = "198.18.1.1"
password = "a\"b\\c\td"

[[check]]
name = "web-site"
env = { "A" = "1", "B" = "2" }

[[vip]]
name = "web-site"
prepend = 1                          # a comment that is long enough to go past the column, which must not matter

[vip.degraded]
med = 1000

[[vip]]
name = "web-site-2"

# a note

# NOT CONVERTED:
#   f:7: static route
`
	if got := string(d.Encode()); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestApplyOptions(t *testing.T) {
	d := NewDoc()
	d.BGP.Set("asn", uint32(65001), "local-as")
	p := d.AddPeer("198.18.1.1")
	p.Set("asn", uint32(65000), "")
	p.Set("password", "x", "")
	d.AddPeer("198.18.2.1").Set("asn", uint32(65000), "")
	d.applyOptions(Options{ASN: 65002, RouterID: "198.18.1.2", Peers: []string{"198.18.1.1", "2001:db8::1"}, PeerASN: 65010})
	d.requireBGP("test")
	got := string(d.Encode())
	for _, want := range []string{
		"asn = 65002                          # --asn; the source said 65001",
		`router_id = "198.18.1.2"             # --router-id`,
		"address = \"198.18.1.1\"\nasn = 65010                          # --peer-asn; the source said 65000\npassword = \"x\"",
		"address = \"2001:db8::1\"              # --peer\nasn = 65010                          # --peer-asn",
		"# The source's peer 198.18.2.1 is left out: --peer did not name it.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if len(d.Issues) != 0 {
		t.Errorf("issues: %v", d.Issues)
	}
	e := NewDoc()
	e.AddPeer("198.18.1.1")
	e.requireBGP("keepalived")
	if len(e.Issues) != 3 {
		t.Errorf("issues without a BGP side = %v, want local AS, router ID and the peer's AS", e.Issues)
	}
}
