package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/testutil"
)

// The tests run the anycastd binary as users do, with its API on a unix
// socket, an in-process GoBGP router as its upstream, and anycastctl's
// run() as the command line.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const wait = 15 * time.Second

var (
	binary     string
	edgeAddr   = netip.MustParseAddr("127.0.0.1")
	routerAddr = netip.MustParseAddr("127.0.0.2")
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "anycastctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "anycastd")
	out, err := exec.Command("go", "build", "-race", "-o", binary, "../anycastd").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building anycastd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const daemonConfig = `
[bgp]
asn = 65001
router_id = "198.18.1.2"
listen_port = 0

[[bgp.peer]]
address = "%s"
port = %d
asn = %d
description = "test router"
hold_time = "9s"
connect_retry = "1s"
local_address = "%s"
families = ["ipv4", "ipv6"]
next_hop_ipv6 = "2001:db8::2"

[node]
drain_time = "500ms"

[interface]
manage = false

[api]
listen = "unix://%s"
tcp_listen = "127.0.0.1:%d"

[metrics]
listen = ""

[[check]]
name = "svc"
type = "tcp"
address = "%s"
interval = "100ms"
timeout = "50ms"
rise = 2
fall = 2

[[check]]
name = "batch"
type = "ttl"
ttl = "10m"
rise = 1

[[vip]]
name = "web"
prefixes = ["203.0.113.42/32", "2001:db8:42::1/128"]
checks = ["svc"]
communities = ["65001:100"]
large_communities = ["65001:1:2"]
med = 10

[[vip]]
name = "jobs"
prefixes = ["203.0.113.43/32"]
checks = ["batch"]
`

// env is a running anycastd, its router and its checked service.
type env struct {
	router  *bgptest.Router
	svc     net.Listener
	svcAddr string
	socket  string
	tcp     string // the read-only TCP listener
	logs    *testutil.SyncBuffer
}

func start(t *testing.T) *env {
	t.Helper()
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	dir, err := os.MkdirTemp("", "actl") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{svc: svc, svcAddr: svc.Addr().String(), socket: filepath.Join(dir, "api.sock"), logs: &testutil.SyncBuffer{}}
	e.router = bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	e.router.AddPeer(t, edgeAddr, 65001)
	port := bgptest.FreePort(t, edgeAddr)
	e.tcp = fmt.Sprintf("127.0.0.1:%d", port)

	path := filepath.Join(dir, "anycastd.toml")
	cfg := fmt.Sprintf(daemonConfig, e.router.Addr, e.router.Port, e.router.ASN, edgeAddr, e.socket, port, e.svcAddr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-config", path, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("anycastd logs:\n%s", e.logs)
		}
	})
	bgptest.Eventually(t, wait, func() bool { _, err := os.Stat(e.socket); return err == nil }, "the API socket", nil)
	return e
}

// ctl runs anycastctl with args against the daemon's socket.
func (e *env) ctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return ctl(t, context.Background(), append([]string{"--socket", e.socket}, args...)...)
}

func ctl(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustCtl runs anycastctl and fails the test unless it exits 0.
func (e *env) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.ctl(t, args...)
	if code != 0 {
		t.Fatalf("anycastctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// until polls anycastctl args until its output contains want.
func (e *env) until(t *testing.T, want string, args ...string) string {
	t.Helper()
	var out string
	bgptest.Eventually(t, wait, func() bool {
		out, _, _ = e.ctl(t, args...)
		return strings.Contains(out, want)
	}, fmt.Sprintf("anycastctl %s to say %q", strings.Join(args, " "), want), func() string { return out })
	return out
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// normalize makes output comparable across runs: in each table (a block of
// lines whose first line is an upper-case header) the cells of the volatile
// columns become "*"; in each block of "key  value" lines the values of the
// volatile keys do; subst rewrites what remains (ports, versions). The
// blocks are aligned again afterwards.
func normalize(out string, volatile []string, subst ...string) string {
	vol := map[string]bool{}
	for _, v := range volatile {
		vol[v] = true
	}
	var b strings.Builder
	for i, block := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		lines := strings.Split(block, "\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if header.MatchString(lines[0]) {
			offs := columnStarts(lines[0])
			names := cells(lines[0], offs)
			for j, l := range lines {
				cs := cells(l, offs)
				for k := range cs {
					if j > 0 && k < len(names) && vol[names[k]] {
						cs[k] = "*"
					}
					cs[k] = rewrite(cs[k], subst)
				}
				fmt.Fprintln(tw, strings.Join(cs, "\t"))
			}
		} else {
			for _, l := range lines {
				k, v, _ := strings.Cut(l, "  ")
				v = strings.TrimSpace(v)
				if vol[k] {
					v = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\n", k, rewrite(v, subst))
			}
		}
		tw.Flush()
	}
	return b.String()
}

var header = regexp.MustCompile(`^[A-Z][A-Z/ ]*[A-Z](  +[A-Z][A-Z/ ]*[A-Z])+$`)

// columnStarts returns where each column of an aligned header starts.
func columnStarts(h string) []int {
	offs := []int{0}
	for i := 2; i < len(h); i++ {
		if h[i] != ' ' && h[i-1] == ' ' && h[i-2] == ' ' {
			offs = append(offs, i)
		}
	}
	return offs
}

func cells(line string, offs []int) []string {
	var out []string
	for i, o := range offs {
		if o >= len(line) {
			out = append(out, "")
			continue
		}
		end := len(line)
		if i+1 < len(offs) && offs[i+1] < end {
			end = offs[i+1]
		}
		out = append(out, strings.TrimSpace(line[o:end]))
	}
	return out
}

// rewrite applies subst, pairs of a regexp and its replacement.
func rewrite(s string, subst []string) string {
	for i := 0; i+1 < len(subst); i += 2 {
		s = regexp.MustCompile(subst[i]).ReplaceAllString(s, subst[i+1])
	}
	return s
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-version"}, &out, &errOut); code != exitOK {
		t.Fatalf("anycastctl -version: exit %d, stderr %q", code, errOut.String())
	}
	if got, want := out.String(), "anycastctl "+version+"\n"; got != want {
		t.Errorf("anycastctl -version printed %q, want %q", got, want)
	}
}
