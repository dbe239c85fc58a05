// Command bench is `make bench`: it measures how fast anycastd withdraws a
// failed site and how many VIPs and checks one edge carries, against FRR in
// network namespaces, and prints a report (see package integration/bench).
//
//	bench [-anycastd PATH] [-baseline PATH] [-quick] [-only withdraw,failover,scale] [-peers 1,2,8]
//	      [-families ipv4,ipv6] [-keep] [-perf DIR]
//
// It needs root, iproute2 and FRR (Debian's frr package). Environment:
// BENCH_QUICK=1 (the ~2 minute version), BENCH_STEADY (how long the scale
// runs measure CPU and memory, default 60s, quick 10s), BENCH_REPS
// (withdrawal repetitions, default 100), BENCH_FAILOVER_REPS (default 50),
// BENCH_VIPS (scale VIPs, default 10000), BENCH_PEERS (default 1,2,8),
// BENCH_ONLY, BENCH_FAMILIES (the scale runs' address families, default
// ipv4,ipv6), BENCH_BASELINE (as -baseline: every scale run is also done
// with this anycastd binary, and the report puts the two side by side;
// `BENCH_BASELINE=prev make bench` builds the previous commit's),
// BENCH_METHOD (address or local-route: the scale runs have anycastd manage
// the VIPs on lo with `[interface] method` set to it; unset, the VIPs are on
// no interface and the key is not written), BENCH_PERF (as -perf),
// ANYCASTD_BIN (a built anycastd instead of building one).
//
// Every lab is torn down on every way out, SIGINT and SIGTERM included;
// labs of a bench that was SIGKILLed are removed by the next run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/anycastd/anycastd/integration/bench"
	"github.com/anycastd/anycastd/integration/lab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "listeners" {
		os.Exit(bench.ListenersMain(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	opts := bench.DefaultOptions()
	if err := opts.FromEnv(os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 2
	}
	anycastdBin := flag.String("anycastd", os.Getenv("ANYCASTD_BIN"), "anycastd `binary` to run (default: build ./cmd/anycastd)")
	quick := flag.Bool("quick", opts.Quick, "the short version (as BENCH_QUICK=1)")
	only := flag.String("only", strings.Join(opts.Only, ","), "runs: withdraw, failover, scale")
	peers := flag.String("peers", joinInts(opts.Peers), "BGP session counts for the withdrawal and scale runs")
	families := flag.String("families", strings.Join(opts.Families, ","), "address families of the scale runs: ipv4, ipv6")
	baseline := flag.String("baseline", opts.Baseline, "also do every scale run with this anycastd `binary`, side by side")
	keep := flag.Bool("keep", false, "keep the labs' work directories (logs, configs)")
	perfDir := flag.String("perf", os.Getenv("BENCH_PERF"), "record perf profiles of anycastd per scale phase into `dir`")
	flag.Parse()
	if *quick && !opts.Quick {
		opts.SetQuick()
	}
	if err := opts.SetOnly(*only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -only: %v\n", err)
		return 2
	}
	if err := opts.SetPeers(*peers); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -peers: %v\n", err)
		return 2
	}
	if err := opts.SetFamilies(*families); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -families: %v\n", err)
		return 2
	}
	if err := opts.SetBaseline(*baseline); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -baseline: %v\n", err)
		return 2
	}
	if opts.Baseline != "" {
		p, err := filepath.Abs(opts.Baseline)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: baseline binary: %v\n", err)
			return 2
		}
		opts.Baseline = p
	}

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (network namespaces); nothing measured")
		return 1
	}
	if missing := lab.Tools(lab.RoleFRR); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "bench: missing %s: install Debian's frr package (scripts/demo.sh does that)\n", strings.Join(missing, ", "))
		return 1
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	if deleted, err := lab.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: sweeping old labs: %v\n", err)
	} else if len(deleted) > 0 {
		fmt.Fprintf(os.Stderr, "bench: deleted namespaces left by earlier runs: %s\n", strings.Join(deleted, " "))
	}
	dir, err := os.MkdirTemp("", "anycastd-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	stop := lab.HandleSignals(func(sig os.Signal) {
		fmt.Fprintf(os.Stderr, "\nbench: %v: tearing down the labs\n", sig)
		os.RemoveAll(dir) // the handler exits without running defers
	})
	defer stop()
	defer lab.CloseAll()

	progs, err := buildPrograms(root, dir, *anycastdBin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	env := &bench.Env{Root: root, Programs: progs, Progress: os.Stderr, Keep: *keep, PerfDir: *perfDir}
	ctx := context.Background()
	if err := bench.Run(ctx, env, opts, os.Stdout); err != nil {
		if lab.Interrupted() {
			select {} // the signal handler tears down and exits
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// buildPrograms builds anycastd (unless given) and siteweb into dir; the
// edge's listener process is this program.
func buildPrograms(root, dir, anycastdBin string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	progs := map[string]string{
		"anycastd":    filepath.Join(dir, "anycastd"),
		"siteweb":     filepath.Join(dir, "siteweb"),
		"benchlisten": self,
	}
	pkgs := map[string]string{"anycastd": "./cmd/anycastd", "siteweb": "./integration/cmd/siteweb"}
	if anycastdBin != "" {
		p, err := filepath.Abs(anycastdBin)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("anycastd binary: %w", err)
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

// repoRoot finds the repository root from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/anycastd/anycastd\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run it inside the anycastd repository (no go.mod of github.com/anycastd/anycastd above the working directory)")
		}
		dir = parent
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
