package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// migrateRun runs the anycastd binary with args and returns its stdout,
// stderr and exit status.
func migrateRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

// keepalivedConf is a small keepalived.conf: one script guarding one
// instance's address, no BGP side.
const keepalivedConf = `vrrp_script chk_web {
    script "curl -sf --max-time 1 http://127.0.0.1:8080/healthz"
    interval 2
    fall 2
    rise 2
}

vrrp_instance web {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        203.0.113.10/32
    }
    track_script {
        chk_web
    }
}
`

// TestMigrateCommandLine runs anycastd migrate as a user does: the TOML
// on stdout passes -check-config, and the exit status says whether
// everything was converted.
func TestMigrateCommandLine(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf), 0o644); err != nil {
		t.Fatal(err)
	}

	// The BGP side from the flags, given after the file: converted, exit 0,
	// and anycastd accepts the result.
	out, errOut, code := migrateRun(t, "migrate", "keepalived", conf, "--asn", "65001", "--router-id", "198.18.1.2",
		"--peer", "198.18.1.1", "--peer", "2001:db8:1::1", "--peer-asn", "65000")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	for _, want := range []string{`asn = 65001`, `address = "2001:db8:1::1"`, `prefixes = ["203.0.113.10/32"]`, `type = "http"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	converted := filepath.Join(dir, "anycastd.toml")
	if err := os.WriteFile(converted, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(binary, "-check-config", converted).CombinedOutput(); err != nil {
		t.Errorf("-check-config on the converted file: %v\n%s", err, res)
	}

	// A timeout cut below the source's is a warning on stderr, not a
	// failure.
	slow := filepath.Join(dir, "slow.conf")
	slowConf := strings.Replace(keepalivedConf, "    fall 2\n", "    fall 2\n    timeout 5\n", 1)
	slowConf = strings.Replace(slowConf, "curl -sf --max-time 1 http://127.0.0.1:8080/healthz", "/usr/local/bin/check-web", 1)
	os.WriteFile(slow, []byte(slowConf), 0o644)
	_, errOut, code = migrateRun(t, "migrate", "keepalived", slow, "--asn", "65001", "--router-id", "198.18.1.2",
		"--peer", "198.18.1.1", "--peer-asn", "65000")
	if code != 0 || !strings.Contains(errOut, "check chk_web: timeout 1.8s instead of the source's 5s") {
		t.Errorf("a timeout above the interval: exit %d, want 0 with a warning on stderr:\n%s", code, errOut)
	}

	// No BGP side: the TOML is still printed, what is missing is listed at
	// its end and on stderr, and the exit status is 1 ...
	out, errOut, code = migrateRun(t, "migrate", "keepalived", conf)
	if code != 1 || !strings.Contains(out, "# NOT CONVERTED:") || !strings.Contains(errOut, "give --asn") {
		t.Errorf("without the BGP flags: exit %d, want 1, with the missing BGP side listed; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	// ... unless --partial.
	if _, errOut, code = migrateRun(t, "migrate", "--partial", "keepalived", conf); code != 0 || !strings.Contains(errOut, "give --asn") {
		t.Errorf("--partial: exit %d, want 0 with the issues still on stderr:\n%s", code, errOut)
	}

	// A malformed file: exit 2, the error names the file and line, nothing
	// on stdout.
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("vrrp_script chk {\n  script \"x\"\n\nvrrp_instance v {\n}\n"), 0o644)
	out, errOut, code = migrateRun(t, "migrate", "keepalived", bad)
	if code != 2 || out != "" || !strings.Contains(errOut, bad+":1:") {
		t.Errorf("a malformed file: exit %d, want 2 naming %s:1; stdout %q, stderr:\n%s", code, bad, out, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no source", []string{"migrate"}, "want a source"},
		{"no file", []string{"migrate", "keepalived"}, "want a source"},
		{"unknown source", []string{"migrate", "bird", conf}, `unknown source "bird"`},
		{"unknown source, missing file", []string{"migrate", "bird", filepath.Join(dir, "none.conf")}, `unknown source "bird"`},
		{"missing file", []string{"migrate", "keepalived", filepath.Join(dir, "none.conf")}, "no such file"},
		{"a directory", []string{"migrate", "keepalived", dir}, "not a regular file"},
		{"bad flag", []string{"migrate", "--bogus", "keepalived", conf}, "flag provided but not defined: -bogus"},
		{"bad asn", []string{"migrate", "--asn", "x", "keepalived", conf}, "want an AS number"},
		{"bad router ID", []string{"migrate", "--router-id", "2001:db8::1", "keepalived", conf}, "--router-id"},
		{"bad peer", []string{"migrate", "--peer", "router1", "keepalived", conf}, `--peer "router1"`},
	} {
		if out, errOut, code := migrateRun(t, tc.args...); code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want 2 with %q on stderr and nothing on stdout; stdout %q, stderr:\n%s", tc.name, code, tc.want, out, errOut)
		}
	}

	// -h prints the usage on stdout and exits 0.
	if out, _, code := migrateRun(t, "migrate", "-h"); code != 0 || !strings.Contains(out, "Usage: anycastd migrate exabgp|anycast-healthchecker|keepalived") {
		t.Errorf("migrate -h: exit %d, want 0 with the usage on stdout:\n%s", code, out)
	}
	if out, _, code := migrateRun(t, "-h"); code != 0 || !strings.Contains(out, "anycastd migrate") {
		t.Errorf("-h: exit %d; the usage does not mention migrate:\n%s", code, out)
	}
}
