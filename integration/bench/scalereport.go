package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"
)

// The binaries a scale run is done with: the baseline (when set) first,
// then the one under test.
const (
	thisTree = "this tree"
	baseline = "baseline"
)

// runScales does the scale runs opts asks for and prints each, then the
// summary table. Per family and session count: sessions enabled once all
// is announced (steady window, SIGTERM), then sessions up from the start;
// each with the baseline first when there is one. Then one run of listen
// checks (the first family and session count).
func runScales(ctx context.Context, env *Env, opts Options, out io.Writer, fail func(string, error)) {
	fmt.Fprintf(out, scaleHeader, opts.VIPs, opts.Steady)
	bins := map[string]*Env{thisTree: env}
	order := []string{thisTree}
	if opts.Baseline != "" {
		b := *env
		b.Programs = maps.Clone(env.Programs)
		b.Programs["anycastd"] = opts.Baseline
		bins[baseline] = &b
		order = []string{baseline, thisTree}
	}
	peers := opts.Peers
	if opts.Quick {
		peers = peers[:1] // the quick version: one session count
	}
	tab := &scaleTable{vips: opts.VIPs, bins: order, res: map[scaleKey]*ScaleResult{}, failed: map[scaleKey]bool{}}
	one := func(c scaleCase) {
		env.logf("scale: %v", c)
		r, err := runScale(ctx, bins[c.Binary], c)
		k := keyOf(c)
		if err != nil {
			tab.failed[k] = true
			fail(fmt.Sprintf("scale (%v)", c), err)
			return
		}
		tab.res[k] = r
		r.print(out)
	}
	for _, fam := range opts.Families {
		for _, p := range peers {
			tab.cols = append(tab.cols, scaleCol{p, fam})
			for _, open := range []bool{false, true} {
				for _, b := range order {
					c := scaleCase{Binary: b, Peers: p, VIPs: opts.VIPs, V6: fam == "ipv6", Check: "tcp",
						Open: open, Method: opts.Method}
					if !open {
						c.Steady, c.Term = opts.Steady, true
					}
					one(c)
				}
			}
		}
	}
	if len(opts.Families) > 0 && len(peers) > 0 {
		for _, b := range order {
			one(scaleCase{Binary: b, Peers: peers[0], VIPs: opts.VIPs, V6: opts.Families[0] == "ipv6",
				Check: "listen", Open: true, Steady: opts.Steady, Method: opts.Method})
		}
	}
	tab.print(out)
}

const scaleHeader = `
3. Scale: %d VIPs (IPv6 /128s in 2001:db8:1000::/64 over IPv6 sessions,
   IPv4 /32s in 198.19.0.0/16 over IPv4 sessions), each with its own check
   at 1 s, rise 1: tcp against 16 local listeners (a separate process), or
   listen on the same ports (one run). Per family and session count, one run
   with the router's neighbors shut until anycastd announced everything
   (session up → all at the router; then a steady window of %v and SIGTERM)
   and one with the sessions up from the start (process start → all at the
   router). The table at the end sums up; the process start is the lab's
   exec of anycastd (ms precision).
`

func (r *ScaleResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n   %v\n", r.scaleCase)
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "   %-56s %s\n", name, fmt.Sprintf(format, args...))
	}
	line("process start → \"anycastd starting\" (config loaded)", "%s", dur(r.ExecToLog))
	line("process start → every VIP announced (rise 1 at 1 s)", "%s", dur(r.AllUp))
	if r.AnnErr != "" {
		line("", "INCOMPLETE: %s", r.AnnErr)
	}
	if r.Open {
		line("process start → router holds all (slowest session)", "%s", dur(r.StartToRIB))
		line("process start → all in the router's kernel FIB", "%s", dur(r.StartToFIB))
	} else {
		line("session established → router holds all (slowest)", "%s", dur(r.SessionToRIB))
		line("first session up → all in the router's kernel FIB", "%s", dur(r.FirstUpToFIB))
	}
	if r.UpErr != "" {
		line("", "INCOMPLETE: %s", r.UpErr)
	}
	if !r.Open {
		line("  meanwhile: check state changes; sessions lost", "%d; %d", r.UpFlaps, r.UpResets)
		line(fmt.Sprintf("  CPU meanwhile (%s wall)", dur(r.UpWall)), "anycastd %s, bgpd %s, zebra %s, listener %s",
			dur(r.UpCPU["anycastd"]), dur(r.UpCPU["bgpd"]), dur(r.UpCPU["zebra"]), dur(r.UpCPU["listener"]))
	}
	if r.Steady > 0 {
		line("steady: anycastd CPU (one core = 100 %)", "%s", pct(r.CPU))
		line("steady: anycastd RSS mean / max / peak (VmHWM)", "%s / %s / %s", mb(r.RSSMean), mb(r.RSSMax), mb(r.HWM))
		probes := fmt.Sprintf("%.0f", r.ProbesPerSec)
		if r.Check != "tcp" {
			probes = "-" // listen checks open no connection
		}
		line("steady: probes answered per second; check changes", "%s; %d", probes, r.Flaps)
		line("steady: CPU of the listener process, bgpd, zebra", "%s, %s, %s", pct(r.ListenerCPU), pct(r.BgpdCPU), pct(r.ZebraCPU))
		line("steady: other load", "%v", r.SteadyLoad)
	}
	if !r.Term {
		return
	}
	line("SIGTERM → RIB empty / FIB empty / anycastd exited", "%s / %s / %s", dur(r.TermRIB), dur(r.TermFIB), dur(r.TermExit))
	switch {
	case r.TermErr != "":
		line("", "INCOMPLETE: %s (anycastd had logged %d withdrawals)", r.TermErr, r.TermWithdrawn)
	case r.ByUpdates:
		line("", "by withdrawals: every session was still up")
	default:
		line("", "partly by the sessions closing")
	}
	if r.FlushWarn {
		line("", "anycastd's flush timeout expired")
	}
}

func mb(b int64) string    { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
func pct(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) }
func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmtDur(d)
}

// scaleKey names one scale run.
type scaleKey struct {
	bin   string
	col   scaleCol
	check string
	open  bool
}

// scaleCol is a column of the summary table.
type scaleCol struct {
	peers int
	fam   string
}

func keyOf(c scaleCase) scaleKey {
	return scaleKey{c.Binary, scaleCol{c.Peers, c.family()}, c.Check, c.Open}
}

// scaleTable is the summary of the scale runs: a row per figure of issue
// #18 with its goal, a column per session count and family, split into
// baseline and this tree when there is a baseline.
type scaleTable struct {
	vips   int
	bins   []string
	cols   []scaleCol
	res    map[scaleKey]*ScaleResult
	failed map[scaleKey]bool
}

// scaleRow is a row of the summary: which run it reads and the cell.
type scaleRow struct {
	name, goal string
	check      string
	open       bool
	cell       func(*ScaleResult) string
}

func (t *scaleTable) rows() []scaleRow {
	n := thousands(t.vips)
	upErr := func(r *ScaleResult, d time.Duration) string {
		if r.UpErr != "" {
			return "timeout"
		}
		return short(d)
	}
	return []scaleRow{
		{"session up → all " + n + " at the router", "≤ 0.5 s", "tcp", false,
			func(r *ScaleResult) string { return upErr(r, r.SessionToRIB) }},
		{"  sessions up first: process start → all there", "", "tcp", true,
			func(r *ScaleResult) string { return upErr(r, r.StartToRIB) }},
		{"process start → all announced (rise = 1)", "≤ 3 s", "tcp", false,
			func(r *ScaleResult) string {
				if r.AnnErr != "" {
					return "timeout"
				}
				return short(r.AllUp)
			}},
		{"steady CPU, " + n + " tcp probes/s", "≤ 20 %", "tcp", false,
			func(r *ScaleResult) string { return fmt.Sprintf("%.1f%%", 100*r.CPU) }},
		{"steady CPU, " + n + " listen checks", "≤ 5 %", "listen", true,
			func(r *ScaleResult) string { return fmt.Sprintf("%.1f%%", 100*r.CPU) }},
		{"RSS, tcp checks (steady max)", "≤ 120 MB", "tcp", false,
			func(r *ScaleResult) string { return fmt.Sprintf("%.0fMB", float64(r.RSSMax)/(1<<20)) }},
		{"RSS, listen checks (steady max)", "≤ 120 MB", "listen", true,
			func(r *ScaleResult) string { return fmt.Sprintf("%.0fMB", float64(r.RSSMax)/(1<<20)) }},
		{"check changes in the steady window (tcp)", "0", "tcp", false,
			func(r *ScaleResult) string { return fmt.Sprint(r.Flaps) }},
		{"machine busy, steady (cores / outside lab)", "", "tcp", false,
			func(r *ScaleResult) string {
				return fmt.Sprintf("%.2f/%.2f", r.SteadyLoad.Machine, r.SteadyLoad.Others)
			}},
	}
}

const (
	rowWidth  = 48
	goalWidth = 9
	cellWidth = 10
)

// print writes the table; with a baseline, one table per family keeps the
// lines short.
func (t *scaleTable) print(w io.Writer) {
	if len(t.cols) == 0 {
		return
	}
	fmt.Fprintf(w, "\n   Summary (issue #18 goals; \"failed\": the run failed, see above):\n")
	groups := [][]scaleCol{t.cols}
	if len(t.bins) > 1 {
		groups = nil
		for _, c := range t.cols {
			if len(groups) == 0 || groups[len(groups)-1][0].fam != c.fam {
				groups = append(groups, nil)
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], c)
		}
	}
	for _, cols := range groups {
		t.printGroup(w, cols)
	}
}

func (t *scaleTable) printGroup(w io.Writer, cols []scaleCol) {
	span := cellWidth * len(t.bins)
	var b strings.Builder
	fmt.Fprintf(&b, "\n   %-*s %-*s", rowWidth, "", goalWidth, "goal")
	for _, c := range cols {
		fmt.Fprintf(&b, "%*s", span, fmt.Sprintf("%d × %s", c.peers, famName(c.fam)))
	}
	b.WriteString("\n")
	if len(t.bins) > 1 {
		fmt.Fprintf(&b, "   %-*s %-*s", rowWidth, "", goalWidth, "")
		for range cols {
			for _, bin := range t.bins {
				fmt.Fprintf(&b, "%*s", cellWidth, bin)
			}
		}
		b.WriteString("\n")
	}
	for _, row := range t.rows() {
		fmt.Fprintf(&b, "   %-*s %-*s", rowWidth, row.name, goalWidth, row.goal)
		for _, c := range cols {
			for _, bin := range t.bins {
				fmt.Fprintf(&b, "%*s", cellWidth, t.cell(row, scaleKey{bin, c, row.check, row.open}))
			}
		}
		b.WriteString("\n")
	}
	// fmt pads by runes: the arrows and "≤" take one column each.
	fmt.Fprint(w, b.String())
}

func (t *scaleTable) cell(row scaleRow, k scaleKey) string {
	if r, ok := t.res[k]; ok {
		return row.cell(r)
	}
	if t.failed[k] {
		return "failed"
	}
	return ""
}

func famName(f string) string {
	if f == "ipv6" {
		return "IPv6"
	}
	return "IPv4"
}

// short formats a duration for a table cell.
func short(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	if d < time.Second {
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// thousands formats n with commas: 10000 → "10,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
