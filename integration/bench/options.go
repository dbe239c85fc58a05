package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options say what to run and how long.
type Options struct {
	Quick bool
	Only  []string // runs: withdraw, failover, scale
	Peers []int    // session counts for the withdrawal and scale runs

	WithdrawReps int           // repetitions per session count
	FailoverReps int           // service kills
	VIPs         int           // scale VIPs (and checks)
	Steady       time.Duration // how long the scale runs measure CPU and memory

	// Families of the scale runs' VIPs and sessions: "ipv4", "ipv6".
	Families []string
	// Baseline, when set, is a second anycastd binary every scale run is
	// also done with (before the one under test), for a side-by-side
	// report.
	Baseline string
	// Method, when set, manages the VIPs on the edge's lo and writes
	// `[interface] method = Method` ("address" or "local-route") into the
	// generated edge configurations; unset, the key is not written.
	Method string
}

// Families are the address families the scale runs can use.
var Families = []string{"ipv4", "ipv6"}

// Methods are the values BENCH_METHOD takes.
var Methods = []string{"address", "local-route"}

// Runs are the runs a benchmark can do, in the order they run.
var Runs = []string{"withdraw", "failover", "scale"}

// DefaultOptions are `make bench`'s: about 10 minutes on 2 cores.
func DefaultOptions() Options {
	return Options{
		Only:         slices.Clone(Runs),
		Peers:        []int{1, 2, 8},
		WithdrawReps: 100,
		FailoverReps: 50,
		VIPs:         10_000,
		Steady:       60 * time.Second,
		Families:     slices.Clone(Families),
	}
}

// SetQuick switches to the quick version (1-2 minutes): fewer repetitions,
// a 10 s steady window, and one scale run (the first session count).
func (o *Options) SetQuick() {
	o.Quick = true
	o.WithdrawReps = 30
	o.FailoverReps = 15
	o.Steady = 10 * time.Second
}

// FromEnv applies BENCH_QUICK, BENCH_REPS, BENCH_FAILOVER_REPS, BENCH_VIPS,
// BENCH_STEADY, BENCH_PEERS, BENCH_ONLY, BENCH_FAMILIES, BENCH_BASELINE and
// BENCH_METHOD (quick first, then the others override it).
func (o *Options) FromEnv(getenv func(string) string) error {
	if v := getenv("BENCH_QUICK"); v != "" && v != "0" {
		o.SetQuick()
	}
	for _, e := range []struct {
		name string
		dst  *int
	}{{"BENCH_REPS", &o.WithdrawReps}, {"BENCH_FAILOVER_REPS", &o.FailoverReps}, {"BENCH_VIPS", &o.VIPs}} {
		if v := getenv(e.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("%s=%q: want a positive number", e.name, v)
			}
			*e.dst = n
		}
	}
	if v := getenv("BENCH_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("BENCH_STEADY=%q: want a duration of at least 1s", v)
		}
		o.Steady = d
	}
	if v := getenv("BENCH_PEERS"); v != "" {
		if err := o.SetPeers(v); err != nil {
			return fmt.Errorf("BENCH_PEERS: %w", err)
		}
	}
	if v := getenv("BENCH_ONLY"); v != "" {
		if err := o.SetOnly(v); err != nil {
			return fmt.Errorf("BENCH_ONLY: %w", err)
		}
	}
	if v := getenv("BENCH_FAMILIES"); v != "" {
		if err := o.SetFamilies(v); err != nil {
			return fmt.Errorf("BENCH_FAMILIES: %w", err)
		}
	}
	if v := getenv("BENCH_BASELINE"); v != "" {
		if err := o.SetBaseline(v); err != nil {
			return fmt.Errorf("BENCH_BASELINE: %w", err)
		}
	}
	if v := getenv("BENCH_METHOD"); v != "" {
		if !slices.Contains(Methods, v) {
			return fmt.Errorf("BENCH_METHOD=%q: want %s", v, strings.Join(Methods, " or "))
		}
		o.Method = v
	}
	return nil
}

// SetFamilies parses a list like "ipv4,ipv6".
func (o *Options) SetFamilies(s string) error {
	var fams []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if !slices.Contains(Families, f) {
			return fmt.Errorf("%q: want ipv4, ipv6 or both, comma-separated", s)
		}
		if !slices.Contains(fams, f) {
			fams = append(fams, f)
		}
	}
	o.Families = fams
	return nil
}

// SetBaseline sets the baseline binary. "prev" (the previous commit) is
// built by `make bench`, not here.
func (o *Options) SetBaseline(s string) error {
	if s == "prev" {
		return errors.New(`"prev" is built by make bench (BENCH_BASELINE=prev make bench); give the program a binary`)
	}
	o.Baseline = s
	return nil
}

// SetPeers parses a list like "1,2,8".
func (o *Options) SetPeers(s string) error {
	var peers []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 50 {
			return fmt.Errorf("%q: want session counts from 1 to 50, comma-separated", s)
		}
		peers = append(peers, n)
	}
	o.Peers = peers
	return nil
}

// SetOnly parses a list of runs like "withdraw,scale".
func (o *Options) SetOnly(s string) error {
	var only []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(Runs, f) {
			return fmt.Errorf("%q: want some of %s", f, strings.Join(Runs, ", "))
		}
		only = append(only, f)
	}
	o.Only = only
	return nil
}

func (o *Options) runs(name string) bool { return slices.Contains(o.Only, name) }
