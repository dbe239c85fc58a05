package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// The per-check and per-VIP event series (anycastd_check_results_total,
// anycastd_check_duration_seconds, anycastd_vip_transitions_total) are
// kept here as plain counters, not as client_golang vectors: a vector's
// series costs its label pairs, a hash map entry and a created timestamp:
// at 10,000 checks and VIPs with one probe and one transition each, the
// vectors held 1,690 bytes a check and VIP (2,520 with the histogram),
// these 250 (360); BenchmarkLiveHeap. They are turned into const metrics
// at scrape time, with the names, types, help and labels the vectors had:
// the text exposition is the same, the protobuf one has no created
// timestamps. The price is paid at each scrape: more garbage (the label
// pairs are built anew; BenchmarkGather).

var (
	descVIPTransitions = prometheus.NewDesc(namespace+"_vip_transitions_total",
		"VIP state transitions, by the state entered.", []string{"vip", "to"}, nil)
	descCheckResults = prometheus.NewDesc(namespace+"_check_results_total",
		"Health probe results, by outcome: pass, fail, timeout, error (could not run).", []string{"check", "type", "outcome"}, nil)
	descCheckDurationSummary = prometheus.NewDesc(namespace+"_check_duration_seconds",
		"How long health probes took (sum and count; [metrics] check_duration_histogram = true for buckets).", []string{"check", "type"}, nil)
	descCheckDurationHistogram = prometheus.NewDesc(namespace+"_check_duration_seconds",
		"How long health probes took.", []string{"check", "type"}, nil)
)

// outcomes are the outcome label values, indexed by outcomeIndex.
var outcomes = [...]string{"pass", "fail", "timeout", "error"}

// outcomeIndex is the index in outcomes of r.Outcome(), without comparing
// strings. A Kind health does not define counts as "error".
func outcomeIndex(r health.Result) int {
	switch r.Kind {
	case 0:
		if r.Passed() {
			return 0
		}
		return 1
	case health.KindPass:
		return 0
	case health.KindFail:
		return 1
	case health.KindTimeout:
		return 2
	}
	return 3
}

// checkKey names a check's series. A reload may change a check's type: the
// series of both types then exist, as with the vectors.
type checkKey struct {
	name string
	typ  config.CheckType
}

// checkSeries are one check's results and durations.
type checkSeries struct {
	mu      sync.Mutex
	results [len(outcomes)]uint64 // probes by outcome; their sum is the duration count
	sum     float64               // seconds, summed as the summary and histogram did
	// buckets counts probes by the first checkDurationBuckets bound their
	// latency is under or at (not cumulative; beyond the last: the count
	// minus their sum). Nil in summary mode.
	buckets *[len(checkDurationBuckets)]uint64
	// born is the scrape generation at creation, seen the last one whose
	// health.Manager states listed the check (see sweepChecks).
	born uint32
	seen atomic.Uint32
}

// vipSeries are one VIP's transition counts, indexed like vipStates.
type vipSeries struct {
	to   [len(vipStates)]uint64
	born uint32
	seen uint32
}

// vipStates are the "to" label values of VIP transitions: routes.States
// and routes.StateRemoved. Others (none exist today) are kept in
// series.vipOther.
var vipStates = [...]routes.State{routes.StateUp, routes.StateDegraded, routes.StateDown,
	routes.StateHeld, routes.StateDraining, routes.StateDisabled, routes.StateRemoved}

type vipOtherKey struct {
	vip string
	to  routes.State
}

// series holds the per-check and per-VIP event counts.
type series struct {
	histogram bool

	checksMu sync.RWMutex // guards checks (the map; each entry has its own lock)
	checks   map[checkKey]*checkSeries

	vipsMu   sync.Mutex // guards vips, vipOther and their entries
	vips     map[string]*vipSeries
	vipOther map[vipOtherKey]uint64

	// gen counts scrapes that swept removed checks and VIPs; sweepMu
	// lets one scrape at a time sweep.
	gen     atomic.Uint32
	sweepMu sync.Mutex
}

func newSeries(histogram bool) *series {
	return &series{
		histogram: histogram,
		checks:    map[checkKey]*checkSeries{},
		vips:      map[string]*vipSeries{},
		vipOther:  map[vipOtherKey]uint64{},
	}
}

// probe records one probe: no allocation once the check has its entry.
func (s *series) probe(check string, typ config.CheckType, r health.Result) {
	k := checkKey{check, typ}
	s.checksMu.RLock()
	e := s.checks[k]
	s.checksMu.RUnlock()
	if e == nil {
		e = s.newCheck(k)
	}
	v := r.Latency.Seconds()
	o := outcomeIndex(r)
	e.mu.Lock()
	e.results[o]++
	e.sum += v
	if e.buckets != nil {
		// As client_golang: the first bound v is under or at.
		for i, bound := range checkDurationBuckets {
			if v <= bound {
				e.buckets[i]++
				break
			}
		}
	}
	e.mu.Unlock()
}

func (s *series) newCheck(k checkKey) *checkSeries {
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	if e := s.checks[k]; e != nil {
		return e
	}
	e := &checkSeries{born: s.gen.Load()}
	if s.histogram {
		e.buckets = new([len(checkDurationBuckets)]uint64)
	}
	s.checks[k] = e
	return e
}

// transition counts one VIP transition.
func (s *series) transition(ev announcer.VIPEvent) {
	s.vipsMu.Lock()
	defer s.vipsMu.Unlock()
	e := s.vips[ev.VIP]
	if e == nil {
		e = &vipSeries{born: s.gen.Load()}
		s.vips[ev.VIP] = e
	}
	for i, st := range vipStates {
		if st == ev.To {
			e.to[i]++
			return
		}
	}
	s.vipOther[vipOtherKey{ev.VIP, ev.To}]++
}

// sweep drops the series of checks the health manager no longer runs
// (states: its current ones) and of VIPs no longer in cfg, so that a
// reload removing them frees their memory (the vectors kept them). An
// entry created during this scrape is kept until the next one: its check
// may have started after states was read. If another scrape is sweeping,
// this one does not.
func (s *series) sweep(cfg *config.Config, states func() []health.CheckState) {
	if !s.sweepMu.TryLock() {
		return
	}
	defer s.sweepMu.Unlock()
	g := s.gen.Add(1)
	// Entries created from here on are born at g and kept.
	st := states()
	s.checksMu.RLock()
	listed := 0
	for _, c := range st {
		if e := s.checks[checkKey{c.Name, c.Type}]; e != nil {
			e.seen.Store(g)
			listed++
		}
	}
	stale := listed < len(s.checks)
	s.checksMu.RUnlock()
	if stale {
		s.checksMu.Lock()
		for k, e := range s.checks {
			if e.seen.Load() != g && e.born != g {
				delete(s.checks, k)
			}
		}
		s.checksMu.Unlock()
	}

	if cfg == nil {
		return
	}
	s.vipsMu.Lock()
	defer s.vipsMu.Unlock()
	for _, v := range cfg.VIPs {
		if e := s.vips[v.Name]; e != nil {
			e.seen = g
		}
	}
	for name, e := range s.vips {
		if e.seen != g && e.born != g {
			delete(s.vips, name)
		}
	}
	for k := range s.vipOther {
		if e := s.vips[k.vip]; e == nil {
			delete(s.vipOther, k)
		}
	}
}

func (s *series) describe(ch chan<- *prometheus.Desc) {
	ch <- descVIPTransitions
	ch <- descCheckResults
	if s.histogram {
		ch <- descCheckDurationHistogram
	} else {
		ch <- descCheckDurationSummary
	}
}

// collect sends the series, as const metrics. As with the vectors, a
// series exists once something was counted in it: an outcome or a state
// never seen has none.
func (s *series) collect(ch chan<- prometheus.Metric) {
	type checkRef struct {
		k checkKey
		e *checkSeries
	}
	s.checksMu.RLock()
	refs := make([]checkRef, 0, len(s.checks))
	for k, e := range s.checks {
		refs = append(refs, checkRef{k, e})
	}
	s.checksMu.RUnlock()
	var bounds map[float64]uint64
	for _, r := range refs {
		e := r.e
		e.mu.Lock()
		results, sum := e.results, e.sum
		var buckets [len(checkDurationBuckets)]uint64
		if e.buckets != nil {
			buckets = *e.buckets
		}
		e.mu.Unlock()
		var count uint64
		for i, n := range results {
			count += n
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descCheckResults, prometheus.CounterValue, float64(n), r.k.name, string(r.k.typ), outcomes[i])
			}
		}
		if count == 0 {
			continue // created, not yet counted
		}
		if !s.histogram {
			ch <- prometheus.MustNewConstSummary(descCheckDurationSummary, count, sum, nil, r.k.name, string(r.k.typ))
			continue
		}
		// The map is read when the metric is written, after collect:
		// one a series.
		bounds = make(map[float64]uint64, len(checkDurationBuckets))
		var cum uint64
		for i, b := range checkDurationBuckets {
			cum += buckets[i]
			bounds[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descCheckDurationHistogram, count, sum, bounds, r.k.name, string(r.k.typ))
	}

	type vipCount struct {
		vip string
		to  routes.State
		n   uint64
	}
	s.vipsMu.Lock()
	counts := make([]vipCount, 0, len(s.vips)+len(s.vipOther))
	for name, e := range s.vips {
		for i, n := range e.to {
			if n > 0 {
				counts = append(counts, vipCount{name, vipStates[i], n})
			}
		}
	}
	for k, n := range s.vipOther {
		counts = append(counts, vipCount{k.vip, k.to, n})
	}
	s.vipsMu.Unlock()
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(descVIPTransitions, prometheus.CounterValue, float64(c.n), c.vip, string(c.to))
	}
}

// vipCount is the number of vip's transitions to state to (for tests).
func (s *series) vipCount(vip string, to routes.State) float64 {
	s.vipsMu.Lock()
	defer s.vipsMu.Unlock()
	if e := s.vips[vip]; e != nil {
		for i, st := range vipStates {
			if st == to {
				return float64(e.to[i])
			}
		}
	}
	return float64(s.vipOther[vipOtherKey{vip, to}])
}

// resultCount is the number of check's probes with outcome (for tests).
func (s *series) resultCount(check string, typ config.CheckType, outcome string) float64 {
	s.checksMu.RLock()
	e := s.checks[checkKey{check, typ}]
	s.checksMu.RUnlock()
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, o := range outcomes {
		if o == outcome {
			return float64(e.results[i])
		}
	}
	return 0
}
