package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hcOpts supplies the BGP side, so that the tests below see only what the
// INI files give.
var hcOpts = Options{ASN: 65001, RouterID: "198.18.0.2", Peers: []string{"198.18.0.1", "2001:db8::1"}, PeerASN: 65000}

const hcMain = "[DEFAULT]\ncheck_disabled = false\n\n[daemon]\nipv6 = true\n"

// convertHC converts the main file hcMain and the service file svc.
func convertHC(t *testing.T, svc string) (*Result, error) {
	t.Helper()
	return Convert("anycast-healthchecker", []Input{{Name: "main.conf", Data: []byte(hcMain)}, {Name: "svc.conf", Data: []byte(svc)}}, hcOpts)
}

func TestHealthcheckerSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, svc, want string
	}{
		{"key before a section", "# services\ncheck_cmd = /bin/true\n[a]\n", "svc.conf:2: \"check_cmd = /bin/true\" before any [section] header"},
		{"no delimiter", "[a]\ncheck_cmd = /bin/true\nip_prefix 203.0.113.1\n", "svc.conf:3: \"ip_prefix 203.0.113.1\" is not \"key = value\" nor a [section] header"},
		{"empty key", "[a]\n= x\n", "svc.conf:2: a value without a key"},
		{"section twice", "[a]\nip_prefix = 203.0.113.1\n\n[b]\n[a]\n", "svc.conf:5: section [a] is already at line 1 (configparser refuses a section twice in one file)"},
		{"key twice, in another case", "[a]\ncheck_cmd = /bin/true\nCHECK_CMD = /bin/false\n", "svc.conf:3: check_cmd is already set at line 2 in [a] (configparser refuses a key twice in one section)"},
		{"bad interval", "[a]\ncheck_cmd = /bin/true\ncheck_interval = 5s\nip_prefix = 203.0.113.1\n", "svc.conf:3: [a] check_interval: \"5s\" is not a number of seconds"},
		{"bad rise", "[a]\ncheck_cmd = /bin/true\ncheck_rise = two\nip_prefix = 203.0.113.1\n", "svc.conf:3: [a] check_rise: \"two\" is not a whole number"},
		{"bad boolean", "[a]\ncheck_cmd = /bin/true\ncheck_disabled = nope\nip_prefix = 203.0.113.1\n", "svc.conf:3: [a] check_disabled: \"nope\" is not a boolean"},
		{"bad on_disabled", "[a]\ncheck_cmd = /bin/true\non_disabled = drain\nip_prefix = 203.0.113.1\n", "svc.conf:3: [a] on_disabled: \"drain\": want withdraw or advertise"},
		{"host bits", "[a]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.1/24\n", "svc.conf:3: [a] ip_prefix: \"203.0.113.1/24\" has host bits set (ipaddress.ip_network refuses it)"},
		{"bad prefix", "[a]\ncheck_cmd = /bin/true\n\nip_prefix = web\n", "svc.conf:4: [a] ip_prefix: \"web\" is not an IP prefix"},
		{"no check_cmd", "\n[a]\nip_prefix = 203.0.113.1\n", "svc.conf:2: [a] has no check_cmd (anycast-healthchecker refuses it)"},
		{"open quote", "[a]\ncheck_cmd = /bin/echo 'x\nip_prefix = 203.0.113.1\n", "svc.conf:2: [a] check_cmd: a ' is not closed (shlex.split refuses it)"},
		{"lone percent", "[a]\ncheck_cmd = /bin/check --max 90%\nip_prefix = 203.0.113.1\n", "svc.conf:2: check_cmd: '%' must be followed by '%' or '(' (configparser's interpolation; write %% for a %)"},
		{"missing reference", "[a]\ncheck_cmd = %(dir)s/check\nip_prefix = 203.0.113.1\n", "svc.conf:2: check_cmd: %(dir)s names no key of [a]"},
		{"interpolation loop", "[a]\nx = %(y)s\ny = %(x)s\ncheck_cmd = %(x)s\nip_prefix = 203.0.113.1\n", "svc.conf:4: check_cmd: interpolation nested more than 10 deep"},
		{"NUL", "[a]\ncheck_cmd = /bin/true\x00\n", "svc.conf:2: NUL byte"},
		{"bad UTF-8", "[a]\n\ncheck_cmd = /bin/\xff\n", "svc.conf:3: not valid UTF-8"},
		{"unclosed backquote", "[a]\ncheck_cmd = `/bin/true\nip_prefix = 203.0.113.1\n", "svc.conf:2: a key or value starting with a quote is not read alike by configparser and gopkg.in/ini.v1: quote it otherwise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertHC(t, tc.svc)
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

// TestHealthcheckerPythonRules checks that values are read as configparser
// reads them.
func TestHealthcheckerPythonRules(t *testing.T) {
	svc := `[DEFAULT]
check_interval = 7

[foo.example.net]
check_cmd = /usr/local/bin/check ; not a comment # nor this
ip_prefix = 203.0.113.1

[foo.example.net.extra]
  ip_prefix = 203.0.113.2
  check_cmd = /usr/local/bin/check
    --flag

    # a comment inside the value is skipped; the blank line above too
    "--quoted arg"
      check_rise = 5
  check_timeout: 1
`
	res, err := convertHC(t, svc)
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.TOML)
	for _, want := range []string{
		`command = ["/usr/local/bin/check", ";", "not", "a", "comment", "#", "nor", "this"]`,
		`command = ["/usr/local/bin/check", "--flag", "--quoted arg", "check_rise", "=", "5"]`,
		`rise = 2                             # anycast-healthchecker's default check_rise`,
		`interval = "7s"                      # check_interval in [DEFAULT]`,
		`timeout = "1s"                       # check_timeout`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestHealthcheckerNoChildInheritance: a [foo.example.net.extra] section must not see
// [foo.example.net]'s keys (ini.v1's child sections).
func TestHealthcheckerNoChildInheritance(t *testing.T) {
	_, err := convertHC(t, "[foo.example.net]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.1\n\n[foo.example.net.v2]\nip_prefix = 203.0.113.2\n")
	if err == nil || err.Error() != "svc.conf:5: [foo.example.net.v2] has no check_cmd (anycast-healthchecker refuses it)" {
		t.Errorf("got %v", err)
	}
}

// TestHealthcheckerLaterFileOverrides: a [DEFAULT] in a later file
// overrides the main file's for every section, as configparser's reading
// of several files does.
func TestHealthcheckerLaterFileOverrides(t *testing.T) {
	res, err := convertHC(t, "[DEFAULT]\ncheck_rise = 4\n\n[a]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.1\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.TOML), "rise = 4                             # check_rise in [DEFAULT]") {
		t.Errorf("rise not from the later [DEFAULT]:\n%s", res.TOML)
	}
}

func TestIsINI(t *testing.T) {
	for data, want := range map[string]bool{
		"; comment\n\n[DEFAULT]\n":         true,
		"check_cmd = /bin/true\n[a]\n":     true,
		"# bird\nrouter id 198.18.0.1;\n":  false,
		"/* bird */\nprotocol device {}\n": false,
		"define AS = 65001;\n":             false,
		"":                                 false,
		"log \"/var/log/bird.log\" all;\n": false,
	} {
		if got := isINI([]byte(data)); got != want {
			t.Errorf("isINI(%q) = %v, want %v", data, got, want)
		}
	}
}

// FuzzHealthchecker converts arbitrary bytes as a service file: no panic,
// and any error a *SyntaxError with a line.
func FuzzHealthchecker(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/anycast-healthchecker-*/*.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[a]\ncheck_cmd = %(b)s\nb = %%(c)s\nip_prefix = ::1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert("anycast-healthchecker", []Input{{Name: "main.conf", Data: []byte(hcMain)}, {Name: "svc.conf", Data: data}}, hcOpts)
		checkFuzzResult(t, res, err)
	})
}

// checkFuzzResult asserts a fuzzed conversion's outcome: an error is a
// *SyntaxError with a line, else a Result with output.
func checkFuzzResult(t *testing.T, res *Result, err error) {
	t.Helper()
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line < 1 {
			t.Fatalf("error %v (%T) is not a *SyntaxError with a line", err, err)
		}
		return
	}
	if res == nil || len(res.TOML) == 0 {
		t.Fatal("no error and no output")
	}
}

// TestHealthcheckerInterpolationBomb: a value that expands exponentially
// is refused, quickly.
func TestHealthcheckerInterpolationBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("[a]\n")
	for i := 0; i < 9; i++ {
		b.WriteString("v" + string(rune('0'+i)) + " = " + strings.Repeat("%(v"+string(rune('1'+i))+")s", 50) + "\n")
	}
	b.WriteString("v9 = x\ncheck_cmd = %(v0)s\nip_prefix = 203.0.113.1\n")
	_, err := convertHC(t, b.String())
	if err == nil || !strings.Contains(err.Error(), "svc.conf:12: check_cmd: interpolation expands to more than") {
		t.Errorf("got %v", err)
	}
}

// TestHealthcheckerPrefixIssues: what anycast-healthchecker or anycastd
// refuse in ip_prefix is an issue at its line.
func TestHealthcheckerPrefixIssues(t *testing.T) {
	res, err := convertHC(t, "[a]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.1\n[b]\ncheck_cmd = /bin/true\nip_prefix = 203.0.113.1/32\n[c]\ncheck_cmd = /bin/true\nip_prefix = 127.0.0.2\n")
	if err != nil {
		t.Fatal(err)
	}
	got := issueLines(res)
	want := []string{
		"svc.conf:6: [b] ip_prefix 203.0.113.1/32 is [a]'s too: anycast-healthchecker refuses a prefix in two services, anycastd in two VIPs",
		"svc.conf:9: [c] ip_prefix 127.0.0.2/32: anycastd announces no unspecified, loopback, multicast, link-local or broadcast prefix",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
