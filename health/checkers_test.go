package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
)

func mustChecker(t *testing.T, c config.Check) Checker {
	t.Helper()
	ch, err := NewChecker(c)
	if err != nil {
		t.Fatalf("NewChecker: %v", err)
	}
	return ch
}

func checkWithin(t *testing.T, ch Checker, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ch.Check(ctx)
}

// checkPreamble makes one [[check]] table named "test" a configuration.
const checkPreamble = `
[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000

[[check]]
name = "test"
`

// parseCheck returns the check that config.Parse builds from keys, the
// keys of a [[check]] table but its name formatted with args (strings
// quoted with %q): the check as the daemon hands it to NewChecker.
func parseCheck(t testing.TB, keys string, args ...any) config.Check {
	t.Helper()
	cfg, err := config.Parse([]byte(checkPreamble + fmt.Sprintf(keys, args...)))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg.Checks[0]
}

// Every check config accepts builds a checker: NewChecker relies on config
// and checks nothing again.
func TestNewCheckerFromConfig(t *testing.T) {
	t.Chdir("../config") // the file names ca_file and dir relative to it
	cfg, err := config.Load("testdata/valid-checks.toml")
	if err != nil {
		t.Fatal(err)
	}
	types := map[config.CheckType]bool{}
	for _, c := range cfg.Checks {
		ch, err := NewChecker(c)
		if err != nil {
			t.Errorf("check %q: %v", c.Name, err)
			continue
		}
		types[c.Type] = true
		if cl, ok := ch.(io.Closer); ok {
			cl.Close()
		}
	}
	if len(types) != 9 {
		t.Errorf("covered %d check types, want all 9: %v", len(types), types)
	}
}

func TestNewCheckerErrors(t *testing.T) {
	if _, err := NewChecker(config.Check{Type: "icmp"}); err == nil || err.Error() != `unknown check type "icmp"` {
		t.Errorf("unknown type: err = %v", err)
	}
	// A file config read at load has gone since.
	pki := newTestPKI(t)
	c := parseCheck(t, "type = 'tcp'\naddress = '127.0.0.1:1'\ntls = true\nca_file = %q", pki.caFile)
	if err := os.Remove(pki.caFile); err != nil {
		t.Fatal(err)
	}
	_, err := NewChecker(c)
	if !errors.Is(err, ErrCannotRun) || !strings.HasPrefix(err.Error(), "cannot run: ca_file: open "+pki.caFile) {
		t.Errorf("missing ca_file: err = %v, want ErrCannotRun", err)
	}
}

func TestTCPChecker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ch := mustChecker(t, parseCheck(t, "type = 'tcp'\naddress = %q", addr))

	if err := checkWithin(t, ch, time.Second); err != nil {
		t.Fatalf("open port: %v", err)
	}
	ln.Close()
	err = checkWithin(t, ch, time.Second)
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("closed port: err = %v, want connection refused", err)
	}
}

func TestHTTPChecker(t *testing.T) {
	methods := make(chan string, 100)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		methods <- r.Method
		w.Write([]byte("fine"))
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1<<20))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		name    string
		path    string
		keys    string // more keys
		wantErr string // "" for pass
	}{
		{name: "200", path: "/ok"},
		{name: "503", path: "/fail", wantErr: "status 503, want 200-299"},
		{name: "redirect not followed", path: "/redirect", wantErr: "status 302, want 200-299"},
		{name: "redirect expected", path: "/redirect", keys: `expect_status = ["300-399"]`},
		{name: "single codes", path: "/teapot", keys: `expect_status = [200, 418]`},
		{name: "single codes miss", path: "/fail", keys: `expect_status = [200, "404"]`,
			wantErr: "status 503, want 200,404"},
		{name: "200 not in 500-599", path: "/ok", keys: `expect_status = ["500-599"]`,
			wantErr: "status 200, want 500-599"},
		{name: "head", path: "/ok", keys: `method = "HEAD"`},
		{name: "big body", path: "/big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := mustChecker(t, parseCheck(t, "type = 'http'\nurl = %q\n"+tc.keys, srv.URL+tc.path))
			err := checkWithin(t, ch, 2*time.Second)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("Check error = %v, want %q", err, tc.wantErr)
			}
		})
	}
	select {
	case m := <-methods:
		if m != http.MethodGet {
			t.Errorf("default method = %s, want GET", m)
		}
	default:
		t.Error("/ok never requested")
	}

	t.Run("timeout", func(t *testing.T) {
		ch := mustChecker(t, parseCheck(t, "type = 'http'\nurl = %q", srv.URL+"/hang"))
		start := time.Now()
		if err := checkWithin(t, ch, 100*time.Millisecond); err == nil {
			t.Fatal("hanging server passed")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Check took %v after a 100ms deadline", d)
		}
	})

	t.Run("transport error", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/"
		ln.Close()
		ch := mustChecker(t, parseCheck(t, "type = 'http'\nurl = %q", url))
		err = checkWithin(t, ch, time.Second)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Check error = %v, want connection refused", err)
		}
	})
}

func newExec(t *testing.T, argv ...string) *execChecker {
	t.Helper()
	return mustChecker(t, config.Check{Type: config.CheckExec, Exec: &config.ExecCheck{Command: argv}}).(*execChecker)
}

func TestExecChecker(t *testing.T) {
	if err := checkWithin(t, newExec(t, "/bin/true"), 5*time.Second); err != nil {
		t.Errorf("/bin/true: %v", err)
	}
	if err := checkWithin(t, newExec(t, "/bin/false"), 5*time.Second); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("/bin/false: err = %v, want exit status 1", err)
	}
	err := checkWithin(t, newExec(t, "/nonexistent/anycastd-test"), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), `cannot run "/nonexistent/anycastd-test"`) ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing binary: err = %v", err)
	}
	err = checkWithin(t, newExec(t, "anycastd-no-such-binary"), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("binary not in PATH: err = %v", err)
	}
}

func TestExecCheckerOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	out, err := newExec(t, "/bin/sh", "-c", "echo hello; echo oops >&2; exit 3").CheckOutput(ctx)
	if err == nil || err.Error() != "exit status 3: hello\noops" {
		t.Errorf("err = %q, want exit status and output", err)
	}
	if out != "hello\noops\n" {
		t.Errorf("output = %q", out)
	}

	out, err = newExec(t, "/bin/sh", "-c", "head -c 10000 /dev/zero | tr '\\0' a; exit 1").CheckOutput(ctx)
	if len(out) != maxExecOutput || strings.Trim(out, "a") != "" {
		t.Errorf("output: %d bytes, want %d of 'a'", len(out), maxExecOutput)
	}
	if want := "exit status 1: " + strings.Repeat("a", maxExecErrOutput) + "..."; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// processGone reports whether pid no longer runs. A zombie counts as gone:
// killed orphans are reparented to pid 1, which in a container may never
// reap them.
func processGone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// readPids waits until file holds n pids, one a line, and returns them.
func readPids(t *testing.T, file string, n int) []int {
	t.Helper()
	var pids []int
	waitFor(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(file)
		fields := strings.Fields(string(b))
		if len(fields) < n || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pids = pids[:0]
		for _, f := range fields {
			p, err := strconv.Atoi(f)
			if err != nil {
				return false
			}
			pids = append(pids, p)
		}
		return true
	})
	return pids
}

func TestExecCheckerKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	// The shell starts a background child, records its pid and its own, and
	// then waits on a foreground child.
	ch := newExec(t, "/bin/sh", "-c", `sleep 30 & echo $! > "$1"; echo $$ >> "$1"; sleep 30`, "sh", pidFile)

	// The deadline leaves the shell ample time to write the pids, even on a
	// loaded machine.
	start := time.Now()
	err := checkWithin(t, ch, time.Second)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Check took %v after a 1s deadline", d)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("err = %v, want killed", err)
	}
	pids := readPids(t, pidFile, 2)
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

// waitGone waits until process pid is gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Fatalf("process %d still there after 5s: %s %q", pid, stat, cmdline)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestExecCheckerKillsStragglers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	// The background child keeps stdout open; the command itself exits 0.
	ch := newExec(t, "/bin/sh", "-c", `sleep 30 & echo $! > "$1"; exit 0`, "sh", pidFile)

	start := time.Now()
	if err := checkWithin(t, ch, 5*time.Second); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Check took %v", d)
	}
	waitGone(t, readPids(t, pidFile, 1)[0])
}
