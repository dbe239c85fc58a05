//go:build integration

package integration

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

var (
	// skipAll, when set, is why no lab test can run here.
	skipAll string
	// programs are the binaries the labs run (anycastd, siteweb).
	programs map[string]string

	labIDsMu sync.Mutex
	labIDs   []string // every lab started, checked for leftovers at the end
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipAll = "not root: the integration tests create network namespaces; run them as root"
		return m.Run()
	}
	if deleted, err := lab.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "sweeping old labs: %v\n", err)
	} else if len(deleted) > 0 {
		fmt.Fprintf(os.Stderr, "deleted namespaces left by earlier runs: %s\n", strings.Join(deleted, " "))
	}
	dir, err := os.MkdirTemp("", "anycastd-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	programs, err = buildPrograms(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := lab.HandleSignals(func(sig os.Signal) {
		fmt.Fprintf(os.Stderr, "\n%v: tearing down the labs\n", sig)
		os.RemoveAll(dir) // the handler exits without running defers
	})
	code := m.Run()
	stop()
	lab.CloseAll()
	if err := checkLeftovers(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// buildPrograms builds anycastd and siteweb into dir. ANYCASTD_BIN uses an
// already built anycastd instead.
func buildPrograms(dir string) (map[string]string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	progs := map[string]string{
		"anycastd": filepath.Join(dir, "anycastd"),
		"siteweb":  filepath.Join(dir, "siteweb"),
	}
	pkgs := map[string]string{"anycastd": "./cmd/anycastd", "siteweb": "./integration/cmd/siteweb"}
	if p := os.Getenv("ANYCASTD_BIN"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p) // relative to the repository root
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("ANYCASTD_BIN: %w", err)
		}
		progs["anycastd"] = p
		delete(pkgs, "anycastd")
	}
	for name, pkg := range pkgs {
		cmd := exec.Command("go", "build", "-o", progs[name], pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	return progs, nil
}

// checkLeftovers fails the run if a lab left a namespace or a process.
func checkLeftovers() error {
	labIDsMu.Lock()
	defer labIDsMu.Unlock()
	var errs []error
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return err
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, id := range labIDs {
		if strings.Contains(string(out), "acd-"+id+"-") {
			errs = append(errs, fmt.Errorf("lab %s left namespaces behind:\n%s", id, out))
		}
		for _, p := range procs {
			cmdline, _ := os.ReadFile(p)
			if strings.Contains(string(cmdline), "anycastd-lab-"+id) {
				errs = append(errs, fmt.Errorf("lab %s left a process behind: %s %q", id, filepath.Dir(p), cmdline))
			}
		}
	}
	return errors.Join(errs...)
}

// needLab skips the test unless the lab can run here with the given
// routers.
func needLab(t *testing.T, roles ...lab.Role) {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
	if missing := lab.Tools(roles...); len(missing) > 0 {
		t.Skipf("missing %s: install Debian's frr and bird2 packages (scripts/demo.sh does that)", strings.Join(missing, ", "))
	}
}

// startLab starts the topology in file (relative to the repository root),
// after applying edit to it. The lab is torn down when the test ends; if the
// test failed, the routers' views and the anycastd logs are logged first.
func startLab(t *testing.T, file string, edit func(*lab.Topology)) *lab.Lab {
	t.Helper()
	topo, err := lab.Load(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(topo)
	}
	start := time.Now()
	opts := lab.Options{Programs: programs, Logf: func(string, ...any) {}}
	if lv := os.Getenv("ANYCASTD_LOG_LEVEL"); lv != "" {
		opts.AnycastdArgs = []string{"-log-level", lv}
	}
	l := lab.StartTB(t, topo, opts)
	labIDsMu.Lock()
	labIDs = append(labIDs, l.ID)
	labIDsMu.Unlock()
	t.Logf("lab %s (%s) up in %v", topo.Name, l.ID, time.Since(start).Round(time.Millisecond))
	return l
}

// eventually polls cond every interval until it returns nil, and fails the
// test if that takes longer than timeout. It returns how long it took.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	took, err := lab.WaitFor(timeout, interval, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return took
}

// never polls cond every interval for the whole window and fails the test
// as soon as it returns an error.
func never(t *testing.T, window, interval time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(window)
	for {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(interval)
	}
}

// watch polls cond in the background from start on; Wait returns how long
// after start cond first held.
type watch struct {
	done chan struct{}
	took time.Duration
	err  error
}

func watchFrom(start time.Time, timeout, interval time.Duration, cond func() error) *watch {
	w := &watch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_, w.err = lab.WaitFor(timeout-time.Since(start), interval, cond)
		w.took = time.Since(start)
	}()
	return w
}

func (w *watch) wait(t *testing.T, what string) time.Duration {
	t.Helper()
	<-w.done
	if w.err != nil {
		t.Fatalf("%s: %v", what, w.err)
	}
	return w.took
}

// answeredBy returns a condition: a GET of url from node answers site.
func answeredBy(l *lab.Lab, node, url, site string) func() error {
	return func() error {
		got, err := get(l, node, url)
		if err != nil {
			return err
		}
		if got != site {
			return fmt.Errorf("answered by %s, want %s", got, site)
		}
		return nil
	}
}

// get fetches url from node and returns the trimmed body.
func get(l *lab.Lab, node, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	status, body, err := l.HTTPGet(ctx, node, url)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("status %d", status)
	}
	return strings.TrimSpace(body), nil
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
