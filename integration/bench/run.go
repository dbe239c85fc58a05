package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Run runs the benchmarks opts selects and writes the report to out, each
// part as soon as it is measured. A run that fails is reported and the
// others still run; the error joins the failures.
func Run(ctx context.Context, env *Env, opts Options, out io.Writer) error {
	began := time.Now()
	fmt.Fprintf(out, "anycastd benchmark, %s\n%s\n", began.UTC().Format("2006-01-02 15:04 UTC"), machine(env))
	mode := "full"
	if opts.Quick {
		mode = "quick"
	}
	fmt.Fprintf(out, "mode: %s (withdrawal: %d repetitions; failover: %d; scale: %d VIPs, %s, steady window %v; sessions %s%s)\n",
		mode, opts.WithdrawReps, opts.FailoverReps, opts.VIPs, strings.Join(opts.Families, " and "), opts.Steady,
		intList(opts.Peers), map[bool]string{true: ", scale with the first only"}[opts.Quick])
	if opts.Baseline != "" {
		fmt.Fprintf(out, "baseline (scale runs): %s: %s\n", opts.Baseline, firstLine(exec.Command(opts.Baseline, "-version")))
	}
	if opts.Method != "" {
		fmt.Fprintf(out, "scale runs: anycastd manages the VIPs on lo, [interface] method = %q\n", opts.Method)
	}
	var errs []error
	fail := func(what string, err error) {
		fmt.Fprintf(out, "\n%s: FAILED: %v\n", what, err)
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}

	if opts.runs("withdraw") {
		fmt.Fprint(out, withdrawHeader)
		for _, p := range opts.Peers {
			env.logf("withdrawal, %d session(s), %d repetitions", p, opts.WithdrawReps)
			r, err := runWithdraw(ctx, env, p, opts.WithdrawReps)
			if err != nil {
				fail(fmt.Sprintf("withdrawal with %d sessions", p), err)
				continue
			}
			r.print(out)
		}
	}
	if opts.runs("failover") {
		env.logf("failover, %d repetitions", opts.FailoverReps)
		r, err := runFailover(ctx, env, opts.FailoverReps)
		if err != nil {
			fail("failover", err)
		} else {
			r.print(out)
		}
	}
	if opts.runs("scale") {
		runScales(ctx, env, opts, out, fail)
	}
	fmt.Fprint(out, notes)
	fmt.Fprintf(out, "\ntotal time %s\n", time.Since(began).Round(time.Second))
	return errors.Join(errs...)
}

// machine describes where the figures come from.
func machine(env *Env) string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	frr := firstLine(exec.Command("/usr/lib/frr/bgpd", "--version"))
	acd := firstLine(exec.Command(env.Programs["anycastd"], "-version"))
	return fmt.Sprintf("machine: %d cores (%s), Linux %s; %s; FRR %s; %s",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version(),
		strings.TrimPrefix(frr, "bgpd version "), acd)
}

func firstLine(cmd *exec.Cmd) string {
	out, err := cmd.Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

const withdrawHeader = `
1. Withdrawal overhead: the check that crosses fall completes → the route
   is gone at the router (FRR). Target: p99 ≤ 10 ms. Per session count;
   every time from the check's completion (anycastd's log line):
`

func (r *WithdrawResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n   %d session(s), %d repetitions               p50       p99       max\n", r.Peers, r.Reps)
	rows := []struct {
		name string
		s    Sample
	}{
		{"anycastd logged \"withdrawn\"", r.Logged},
		{"UPDATE on the link (first session)", r.Wire1},
		{"UPDATE on the link (every session)", r.WireAll},
		{"bgpd parsed it (every session)", r.Parsed},
		{"RIB: route gone (bgpd log)", r.RIB},
		{"RIB: route gone (vty poll, +1 ms)", r.RIBPoll},
		{"FIB: route gone (kernel)", r.FIB},
		{"  of which: link → bgpd parsed", r.WireToParsed},
		{"  of which: parsed → RIB (bgpd)", r.ParsedToRIB},
		{"  of which: RIB → FIB (zebra)", r.RIBToFIB},
		{"way back: check passed → FIB", r.UpFIB},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "   %-38s %s\n", row.name, row.s.row())
	}
	fmt.Fprintf(w, "   (%v)\n", r.Load)
}

func (r *FailoverResult) print(w io.Writer) {
	fmt.Fprintf(w, `
2. End to end: the service process is SIGKILLed → its route is gone at the
   router, and back (http check, interval 100ms, fall 3, rise 3; 1 session).
   Target: gone within 350 ms at p99. %d repetitions, killed at random
   phases of the check period.
                                           p50       p99       max
`, r.Reps)
	rows := []struct {
		name string
		s    Sample
	}{
		{"killed → check crossed fall", r.Detect},
		{"killed → RIB: route gone", r.RIB},
		{"killed → FIB: route gone", r.FIB},
		{"  check crossed fall → FIB gone", r.Overhead},
		{"restarted → check crossed rise", r.UpDetect},
		{"restarted → FIB: route back", r.UpFIB},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "   %-38s %s\n", row.name, row.s.row())
	}
	fmt.Fprintf(w, "   (%v)\n", r.Load)
}

const notes = `
How the times are taken (one wall clock for all; error of each):
  - check: anycastd's JSON log line "health check changed state", time.Now()
    when the probe's result is recorded (µs after the probe returned).
  - link: AF_PACKET capture on the router's interface, the kernel's receive
    timestamp (SO_TIMESTAMPNS) of the segment carrying the UPDATE.
  - bgpd: FRR's own debug log lines (debug bgp updates in: "rcvd UPDATE ...
    withdrawn"; debug bgp zebra: "Tx route delete"), timestamped by bgpd at
    µs precision when it logs them; the debug logging adds a few µs.
  - vty poll: "show bgp ... <prefix> json" over bgpd's vty socket every
    1 ms; late by up to the period plus one query (~0.3 ms).
  - FIB: an rtnetlink listener in the router's namespace, stamped when its
    thread wakes (tens of µs; more when both cores are busy).
  - session → router holds all, SIGTERM → RIB empty: vty polls every 10 ms
    and 5 ms; CPU from /proc/PID/stat (10 ms ticks), RSS from
    /proc/PID/status sampled every second.
`
