package migrate

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

// kaOpts is the BGP side the tests give, as the golden cases do.
var kaOpts = Options{ASN: 65001, RouterID: "198.18.5.2", Peers: []string{"198.18.5.1", "2001:db8:ffff::1"}, PeerASN: 65000}

// kaConvert converts one keepalived.conf and parses the output as
// anycastd would, failing the test on issues or an invalid output.
func kaConvert(t *testing.T, conf string) *config.Config {
	t.Helper()
	res, err := Convert("keepalived", []Input{{Name: "keepalived.conf", Data: []byte(conf)}}, kaOpts)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if len(res.Issues) > 0 || res.Invalid != nil {
		t.Fatalf("issues %v, invalid %v:\n%s", res.Issues, res.Invalid, res.TOML)
	}
	c, err := config.Parse(res.TOML)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return c
}

func kaVIP(t *testing.T, c *config.Config, name string) config.VIP {
	t.Helper()
	for _, v := range c.VIPs {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no VIP %s", name)
	return config.VIP{}
}

// TestKeepalivedElection converts the two nodes of a VRRP pair and checks
// that the routers would prefer the node VRRP made master, and the backup
// once the master's weighted script fails, as VRRP did.
func TestKeepalivedElection(t *testing.T) {
	node := func(state string, prio int) string {
		return `vrrp_script chk_web {
    script "/usr/bin/curl -sf http://127.0.0.1:8080/healthz"
    weight -60
}
vrrp_instance VI_1 {
    state ` + state + `
    priority ` + itoa(prio) + `
    virtual_ipaddress {
        203.0.113.10/24 dev eth0
    }
    track_script {
        chk_web
    }
}
`
	}
	master := kaVIP(t, kaConvert(t, node("MASTER", 150)), "VI_1")
	backup := kaVIP(t, kaConvert(t, node("BACKUP", 100)), "VI_1")
	if master.MED == nil || backup.MED == nil || master.Degraded == nil || master.Degraded.MED == nil {
		t.Fatalf("want MEDs on both and a degraded MED: master %+v, backup %+v", master, backup)
	}
	if !(*master.MED < *backup.MED && *backup.MED < *master.Degraded.MED) {
		t.Errorf("MEDs: master %d, backup %d, master degraded %d: want master < backup < master degraded",
			*master.MED, *backup.MED, *master.Degraded.MED)
	}
	if master.OnFailure != config.OnFailureDegrade {
		t.Errorf("on_failure %q: a weighted script should degrade", master.OnFailure)
	}
	if got := master.Prefixes[0].String(); got != "203.0.113.10/32" {
		t.Errorf("prefix %s, want the host route 203.0.113.10/32", got)
	}
}

// TestKeepalivedFault checks that a script without weight withdraws (the
// instance went FAULT) and keeps keepalived's timing.
func TestKeepalivedFault(t *testing.T) {
	c := kaConvert(t, `vrrp_script chk {
    script "/usr/local/bin/check.sh 'two words' x\x41"
    interval 4
    timeout 2
    fall 3
}
vrrp_instance VI_1 {
    virtual_ipaddress {
        2001:db8::10/64
    }
    track_script {
        chk
    }
}
`)
	v := kaVIP(t, c, "VI_1")
	if v.OnFailure == config.OnFailureDegrade || v.Require != 1 || !slices.Equal(v.Checks, []string{"chk"}) {
		t.Errorf("VIP %+v: want checks [chk], withdrawn on failure", v)
	}
	ch := c.Checks[0]
	if ch.Interval != 4*time.Second || ch.Timeout != 2*time.Second || ch.Rise != 1 || ch.Fall != 3 {
		t.Errorf("check timing interval %s timeout %s rise %d fall %d; want 4s 2s 1 3", ch.Interval, ch.Timeout, ch.Rise, ch.Fall)
	}
	if ch.Exec == nil || !slices.Equal(ch.Exec.Command, []string{"/usr/local/bin/check.sh", "two words", "xA"}) {
		t.Errorf("exec %+v: want keepalived's own word splitting", ch.Exec)
	}
}

// TestKeepalivedSplit checks the command splitting against keepalived's
// rules (keepalived.conf(5), "Quoted strings").
func TestKeepalivedSplit(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  []string
		shell bool
	}{
		{`script "killall -0 nginx"`, []string{"killall", "-0", "nginx"}, false},
		// \" is a plain '"' at the second level: it does not quote.
		{`script "/bin/x 'a b' \"c d\""`, []string{"/bin/x", "a b", `"c`, `d"`}, false},
		{`script "/bin/x \x41\101\t"`, []string{"/bin/x", "AA\t"}, false},
		{`script "</dev/tcp/127.0.0.1/80"`, []string{"</dev/tcp/127.0.0.1/80"}, true},
		{`script "< /dev/tcp/127.0.0.1/80"`, []string{"<", "/dev/tcp/127.0.0.1/80"}, false},
		{`script /bin/check arg`, []string{"/bin/check"}, false},
	} {
		ss, err := parseBlocks("k", []byte(tc.in), syntax{bang: true})
		if err != nil {
			t.Fatal(err)
		}
		argv, shell, _, err := kaCommand("k", ss[0])
		if err != nil || !slices.Equal(argv, tc.want) || shell != tc.shell {
			t.Errorf("%s: got %q shell %v err %v, want %q shell %v", tc.in, argv, shell, err, tc.want, tc.shell)
		}
	}
}

// TestKeepalivedErrors checks that malformed files give the file and line.
func TestKeepalivedErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vrrp_instance V {\n  virtual_ipaddress {\n    203.0.113.300/32\n  }\n}\n", "k.conf:3: virtual_ipaddress: "},
		{"vrrp_instance V {\n  priority 300\n}\n", "k.conf:2: priority: \"300\" is not a whole number in 1..255"},
		{"vrrp_script s {\n  script /bin/true\n  interval abc\n}\n", "k.conf:3: interval: "},
		{"vrrp_script s {\n  script /bin/true\n  weight 999\n}\n", "k.conf:3: weight: "},
		{"vrrp_script s {\n  interval 2\n}\n", "k.conf:1: vrrp_script s has no script"},
		{"vrrp_script s {\n  script /bin/true\n  bogus 1\n}\n", "k.conf:3: vrrp_script s: unknown keyword \"bogus\""},
		{"vrrp_instance V {\n  state LEADER\n}\n", "k.conf:2: state: want MASTER or BACKUP"},
		{"vrrp_script s {\n  script /bin/true\n}\nvrrp_instance V {\n  track_script {\n    s weight\n  }\n}\n", "k.conf:6: track_script: "},
		{"virtual_server 203.0.113.1 80 {\n  real_server 198.18.1.999 80 {\n  }\n}\n", "k.conf:2: real_server: "},
		{"virtual_server 203.0.113.1 80 {\n real_server 198.18.1.9 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 999\n   }\n  }\n }\n}\n", "k.conf:6: status_code: "},
		{"virtual_server 203.0.113.1 80 {\n  delay_loop -1\n}\n", "k.conf:2: delay_loop: "},
		{"virtual_server 203.0.113.1 99999 {\n}\n", "k.conf:1: virtual_server: port "},
		{"vrrp_instance V {\n  virtual_ipaddress {\n", "k.conf:2: '{' not closed"},
		{"vrrp_script s {\n  script \"/bin/x\n}\n", "k.conf:2: string not closed"},
	} {
		_, err := Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(tc.in)}}, kaOpts)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want a *SyntaxError starting %q", tc.in, err, tc.want)
		}
	}
}

// TestKeepalivedIssues checks that what cannot be converted is an issue
// with its line, not a silent omission.
func TestKeepalivedIssues(t *testing.T) {
	res, err := Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(
		"include /etc/keepalived/other.conf\n" +
			"vrrp_instance V {\n  virtual_ipaddress {\n    203.0.113.5\n  }\n  track_script {\n    missing\n  }\n}\n" +
			// A converted VIP, so that the only issues are the two above.
			"vrrp_script ok {\n  script /usr/local/bin/ok\n}\nvrrp_instance W {\n  virtual_ipaddress {\n    203.0.113.6\n  }\n  track_script {\n    ok\n  }\n}\n")}}, kaOpts)
	if err != nil {
		t.Fatal(err)
	}
	got := issueLines(res)
	want := []string{
		"k.conf:1: include /etc/keepalived/other.conf: not followed; pass the included files to anycastd migrate after this one",
		"k.conf:7: vrrp_instance V: track_script missing: no vrrp_script of that name",
	}
	if !slices.Equal(got, want) {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzKeepalived: no input panics; an error is a *SyntaxError with a line.
func FuzzKeepalived(f *testing.F) {
	for _, dir := range []string{"full", "noflags", "unconvertible"} {
		if b, err := os.ReadFile("testdata/golden/keepalived-" + dir + "/keepalived.conf"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("vrrp_script a {\n script \"x 'y\"\n}\nvrrp_instance b {\n virtual_ipaddress {\n ::1 dev\n }\n track_script {\n a weight 3 reverse\n }\n}\n"))
	f.Add([]byte("virtual_server ::1 {\n real_server ::2 1 {\n MISC_CHECK {\n misc_path \"\\\\\"\n }\n }\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert("keepalived", []Input{{Name: "f.conf", Data: data}}, kaOpts)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("error %v (%T): want a *SyntaxError with a line", err, err)
			}
			return
		}
		if len(res.TOML) == 0 {
			t.Fatal("no output")
		}
	})
}

// TestKeepalivedDigest checks that a url digest, which keepalived checked
// and anycastd does not, is an issue at its line, and that the check is
// still written (status only) for --partial.
func TestKeepalivedDigest(t *testing.T) {
	res, err := Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(
		"virtual_server 203.0.113.80 443 {\n" +
			"  real_server 198.18.30.1 443 {\n" +
			"    SSL_GET {\n" +
			"      url {\n" +
			"        path /index.html\n" +
			"        digest 9b3a0c85a887a256d6939da88aabd8cd\n" +
			"      }\n" +
			"    }\n" +
			"  }\n" +
			"}\n")}}, kaOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issues) != 1 {
		t.Fatalf("issues %v, want one at k.conf:6", res.Issues)
	}
	got := res.Issues[0].String()
	for _, want := range []string{"k.conf:6: ", "digest", "expect_status", "expect_body", "expect_body_regex"} {
		if !strings.Contains(got, want) {
			t.Errorf("issue %q does not contain %q", got, want)
		}
	}
	out := string(res.TOML)
	for _, want := range []string{`url = "https://198.18.30.1:443/index.html"`, `expect_status = ["200-299"]`, "# digest 9b3a0c85a887a256d6939da88aabd8cd: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestKeepalivedMiscTimeout checks that a MISC_CHECK without misc_timeout
// says the timeout is keepalived's default (delay_loop), not the source's
// misc_timeout.
func TestKeepalivedMiscTimeout(t *testing.T) {
	conf := func(extra string) string {
		return "virtual_server 203.0.113.81 1358 {\n" +
			"  delay_loop 6\n" +
			"  real_server 198.18.30.6 1358 {\n" +
			"    MISC_CHECK {\n" +
			"      misc_path \"/usr/local/bin/script.sh 198.18.30.6\"\n" +
			extra +
			"    }\n" +
			"  }\n" +
			"}\n"
	}
	timeoutLine := func(toml string) string {
		for l := range strings.Lines(toml) {
			if strings.HasPrefix(l, "timeout = ") {
				return strings.TrimSpace(l)
			}
		}
		return ""
	}
	c := kaConvert(t, conf(""))
	if len(c.Checks) != 1 || time.Duration(c.Checks[0].Timeout) >= 6*time.Second {
		t.Fatalf("checks %+v: want one check with a timeout below 6s", c.Checks)
	}
	res, err := Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(conf(""))}}, kaOpts)
	if err != nil {
		t.Fatal(err)
	}
	l := timeoutLine(string(res.TOML))
	if strings.Contains(l, "misc_timeout 6") || !strings.Contains(l, "keepalived's default misc_timeout = delay_loop (6s)") {
		t.Errorf("without misc_timeout: %q, want keepalived's default misc_timeout = delay_loop (6s)", l)
	}
	res, err = Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(conf("      misc_timeout 4\n"))}}, kaOpts)
	if err != nil {
		t.Fatal(err)
	}
	if l := timeoutLine(string(res.TOML)); !strings.HasSuffix(l, "# misc_timeout 4") || strings.Contains(l, "default") {
		t.Errorf("with misc_timeout 4: %q, want a comment \"# misc_timeout 4\"", l)
	}
}

// TestKeepalivedDefaultWeight checks that the require comment quotes
// weight 0 only when the source gave it, and else names it as keepalived's
// default.
func TestKeepalivedDefaultWeight(t *testing.T) {
	for _, tc := range []struct{ script, track, want string }{
		{"", "", `# no weight (keepalived's default 0): a failing script`},
		{"    weight 0\n", "", "# weight 0: a failing script"},
		{"", " weight 0", "# weight 0: a failing script"},
	} {
		conf := "vrrp_script chk {\n    script /usr/local/bin/chk\n" + tc.script + "}\n" +
			"vrrp_instance V {\n    virtual_ipaddress {\n        203.0.113.90\n    }\n    track_script {\n        chk" + tc.track + "\n    }\n}\n"
		kaConvert(t, conf)
		res, err := Convert("keepalived", []Input{{Name: "k.conf", Data: []byte(conf)}}, kaOpts)
		if err != nil {
			t.Fatal(err)
		}
		var line string
		for l := range strings.Lines(string(res.TOML)) {
			if strings.HasPrefix(l, "require = ") {
				line = l
			}
		}
		if !strings.Contains(line, tc.want) {
			t.Errorf("script %q track %q: require line %q, want %q", tc.script, tc.track, line, tc.want)
		}
	}
}
