package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/anycastd/anycastd/config"
)

// maxInflight bounds the decisions a node takes at once.
const maxInflight = 16

// releaseSettle is how long the view must show enough other sites
// announcing before a guarded VIP is decided again (and may be withdrawn):
// when a fleet recovers at once, a guarded site whose own checks rise a
// moment after the others' would otherwise be withdrawn and announced again
// within milliseconds. It is announced degraded meanwhile.
const releaseSettle = time.Second

// engagement is an engaged VIP, as Run sees it.
type engagement struct {
	seq     uint64
	min     int
	has     bool   // a verdict was delivered for seq
	guarded bool   // the last verdict's
	reason  string // the last verdict's
	lost    string // on_coordinator_lost of the last verdict when taken without the store
	queued  bool
	// releaseAt: when this guarded VIP is decided again, the view having
	// shown enough other sites announcing for releaseSettle (zero: not
	// waiting).
	releaseAt time.Time
	// failedTook: how long the decision that found the store lost took
	// (its lost verdict and metric say so).
	failedTook time.Duration
}

// drainState is this node's drain slot, as Run sees it.
type drainState struct {
	want        bool
	reason      string
	since       time.Time
	held        bool // the slot's key is in the store (or on its way)
	dirty       bool // the slot's key must be written (held) or deleted
	busy, again bool
	told        *DrainSlotEvent
}

type connectResult struct {
	sess Session
	kvs  []KV
	rev  int64
	err  error
}

type flushResult struct {
	gen  int
	vips []string
	slot bool
	err  error
}

// runner is Run's state: only Run's goroutine touches it.
type runner struct {
	g          *Guard
	ctx        context.Context
	k          keys
	site, node string
	quit       chan struct{}

	sess Session
	// olds are the lost sessions: revoked once the new one holds this
	// node's keys, so their lock keys (a decision cut short) block no one.
	// Until then (revoking) no lock is taken.
	olds       []Session
	revoking   bool
	revokeBusy bool
	revoked    chan int
	gen        int // bumped on every session change
	wcancel    context.CancelFunc
	vipsW      <-chan []KV
	drainsW    <-chan []KV
	connecting bool
	tried      bool // a first connection attempt concluded
	connected  chan connectResult
	retryC     <-chan time.Time
	backoff    time.Duration
	warned     bool

	own      map[string]*Entry // this node's entries; nil: to delete
	dirty    map[string]bool
	flushing bool
	flushed  chan flushResult

	engaged  map[string]*engagement
	todo     []string
	busy     map[string]bool // a decision in flight
	again    map[string]bool // the view changed while it was
	inflight int
	results  chan decision
	settleC  <-chan time.Time // fires at the earliest releaseAt
	settleAt time.Time

	drain   drainState
	drained chan drainAttempt
}

func newRunner(g *Guard, ctx context.Context) *runner {
	return &runner{g: g, ctx: ctx, k: keys{prefix: prefixOf(g.cfg)}, site: g.cfg.Site, node: g.cfg.Node,
		quit:      make(chan struct{}),
		connected: make(chan connectResult),
		own:       map[string]*Entry{},
		dirty:     map[string]bool{},
		flushed:   make(chan flushResult),
		engaged:   map[string]*engagement{},
		busy:      map[string]bool{},
		again:     map[string]bool{},
		results:   make(chan decision),
		revoked:   make(chan int),
		drained:   make(chan drainAttempt),
	}
}

func (r *runner) loop() error {
	defer close(r.quit)
	r.connect()
	for {
		var done <-chan struct{}
		if r.sess != nil {
			done = r.sess.Done()
		}
		select {
		case <-r.ctx.Done():
			r.shutdown()
			return nil
		case <-r.g.wake:
			r.takeRequests()
		case c := <-r.connected:
			r.onConnected(c)
		case <-r.retryC:
			r.retryC = nil
			r.connect()
		case <-done:
			r.lost(errors.New("the etcd lease was lost, or etcd stopped answering"))
		case b, ok := <-r.vipsW:
			r.onEvents(b, ok)
		case b, ok := <-r.drainsW:
			r.onEvents(b, ok)
		case d := <-r.results:
			r.onDecision(d)
		case f := <-r.flushed:
			r.onFlushed(f)
		case a := <-r.drained:
			r.onDrainAttempt(a)
		case <-r.settleC:
			r.settleC, r.settleAt = nil, time.Time{}
			r.settled(time.Now())
		case gen := <-r.revoked:
			r.revokeBusy = false
			if gen == r.gen {
				r.revoking = false
				r.drainEval()
			}
		}
		r.pump()
	}
}

// connect opens a session and reads the fleet, in the background.
func (r *runner) connect() {
	if r.connecting || r.sess != nil {
		return
	}
	r.connecting = true
	_, _, timeout := r.g.live()
	ttl := r.g.cfg.LeaseTTL
	if ttl <= 0 {
		ttl = config.DefaultFleetLeaseTTL
	}
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		defer cancel()
		var c connectResult
		c.sess, c.err = r.g.store.Open(ctx, ttl)
		if c.err == nil {
			c.kvs, c.rev, c.err = r.g.store.Get(ctx, r.k.vips(), r.k.drains())
			if c.err != nil {
				c.sess.Close()
				c.sess = nil
			}
		}
		select {
		case r.connected <- c:
		case <-r.quit:
			if c.sess != nil {
				c.sess.Close()
			}
		}
	}()
}

func (r *runner) onConnected(c connectResult) {
	r.connecting = false
	r.tried = true
	if c.err != nil {
		r.lost(c.err)
		return
	}
	r.backoff = 0
	r.gen++
	r.sess = c.sess
	r.revoking = len(r.olds) > 0
	wctx, cancel := context.WithCancel(r.ctx)
	r.wcancel = cancel
	r.vipsW = r.g.store.Watch(wctx, r.k.vips(), c.rev+1)
	r.drainsW = r.g.store.Watch(wctx, r.k.drains(), c.rev+1)
	entries, slots := map[string]map[string]Entry{}, map[string]Slot{}
	r.k.applyAll(entries, slots, c.kvs)
	g := r.g
	g.mu.Lock()
	g.entries, g.slots, g.snap = entries, slots, nil
	g.notifyLocked()
	g.mu.Unlock()
	if g.setCoordinator(true, "") {
		msg := "fleet coordinator (etcd) reached"
		if r.warned {
			msg = "fleet coordinator (etcd) reached again: decisions are taken anew"
		}
		g.log.Info(msg, "site", r.site, "node", r.node)
	}
	r.warned = false
	for vip := range r.own {
		r.dirty[vip] = true
	}
	if r.drain.held {
		r.drain.dirty = true
	}
	for vip, e := range r.engaged {
		r.queueDecide(vip, e)
	}
	r.drainEval()
}

// lost marks the coordinator lost: the session is dropped, every engaged
// VIP gets the on_coordinator_lost verdict, and a reconnection is due.
func (r *runner) lost(err error) {
	if r.sess != nil {
		r.wcancel()
		r.vipsW, r.drainsW = nil, nil
		r.sess.Close()
		r.olds = append(r.olds, r.sess)
		r.sess = nil
		r.gen++
	}
	r.tried = true
	r.g.setCoordinator(false, err.Error())
	if !r.warned {
		r.warned = true
		r.g.log.Warn("fleet coordinator (etcd) cannot be reached", "site", r.site, "node", r.node, "err", err.Error())
	}
	for _, vip := range r.todo {
		if e := r.engaged[vip]; e != nil {
			e.queued = false
		}
	}
	r.todo = nil
	r.lostVerdicts()
	r.drainEval()
	if !r.connecting && r.retryC == nil {
		r.backoff = min(max(2*r.backoff, 250*time.Millisecond), 2*time.Second)
		r.retryC = time.After(r.backoff)
	}
}

func (r *runner) lostVerdicts() {
	_, mode, _ := r.g.live()
	for vip, e := range r.engaged {
		r.lostVerdict(vip, e, mode)
	}
}

// lostVerdict answers vip without the store. In "hold" a VIP already
// withdrawn with the store's permit stays withdrawn: losing the coordinator
// suspends withdrawals, it announces nothing that was not announced.
func (r *runner) lostVerdict(vip string, e *engagement, mode string) {
	if e.has && e.lost == mode || e.min <= 0 {
		return
	}
	if mode != config.CoordinatorLostLocal && e.has && !e.guarded {
		return
	}
	guarded := mode != config.CoordinatorLostLocal
	took := e.failedTook
	e.failedTook = 0
	r.deliver(e, Verdict{VIP: vip, Seq: e.seq, Guarded: guarded, Reason: lostReason(mode), Others: -1, Took: took}, false)
	e.lost = mode
	if r.g.o.Observe != nil {
		r.g.o.Observe("coordinator_lost", took)
	}
}

// deliver tells a verdict unless it repeats the last one.
func (r *runner) deliver(e *engagement, v Verdict, connected bool) {
	if e.has && e.guarded == v.Guarded && e.reason == v.Reason && e.lost == "" && connected {
		return
	}
	changed := !e.has || e.guarded != v.Guarded
	e.has, e.guarded, e.reason, e.lost = true, v.Guarded, v.Reason, ""
	// The announcer logs each verdict that changes a VIP (it owns the VIP's
	// state); here only at debug level.
	if changed && connected {
		if v.Guarded {
			r.g.log.Debug("fleet guard: withdrawal refused, VIP guarded", "vip", v.VIP, "reason", v.Reason, "took", v.Took)
		} else {
			r.g.log.Debug("fleet guard: withdrawal permitted", "vip", v.VIP, "reason", v.Reason, "took", v.Took)
		}
	}
	r.g.o.OnVerdict(v)
}

func (r *runner) takeRequests() {
	g := r.g
	g.mu.Lock()
	reqs, reports := g.reqs, g.reports
	g.reqs = nil
	if len(reports) > 0 {
		g.reports = map[string]*Entry{}
	} else {
		reports = nil // g's own, empty: not to be read unlocked
	}
	g.mu.Unlock()
	for vip, e := range reports {
		r.own[vip] = e
		r.dirty[vip] = true
	}
	for _, q := range reqs {
		switch q.kind {
		case reqEngage:
			e := r.engaged[q.vip]
			if e == nil {
				e = &engagement{}
				r.engaged[q.vip] = e
			}
			e.seq, e.min, e.has, e.lost, e.releaseAt = q.seq, q.min, false, "", time.Time{}
			switch {
			case q.min <= 0:
				r.deliver(e, Verdict{VIP: q.vip, Seq: q.seq, Reason: "min_sites 0: no floor", Others: r.viewOthers(q.vip)}, true)
			case r.sess == nil && r.tried:
				_, mode, _ := g.live()
				r.lostVerdict(q.vip, e, mode)
			default:
				r.queueDecide(q.vip, e)
			}
		case reqDisengage:
			delete(r.engaged, q.vip)
		case reqDrain:
			if r.drain.want {
				continue
			}
			r.drain.want, r.drain.reason, r.drain.told = true, q.reason, nil
			r.drainEval()
		case reqRelease:
			r.drain.want, r.drain.told = false, nil
			if r.drain.held {
				r.drain.held, r.drain.dirty = false, true
			}
		case reqBGP:
			for vip, e := range r.own {
				if e != nil {
					r.dirty[vip] = true
				}
			}
		case reqConfig:
			if r.sess == nil && r.tried {
				r.lostVerdicts()
			}
			r.drainEval()
		}
	}
}

// queueDecide queues a decision on vip (once).
func (r *runner) queueDecide(vip string, e *engagement) {
	if r.busy[vip] {
		r.again[vip] = true
		return
	}
	if !e.queued && e.min > 0 {
		e.queued = true
		r.todo = append(r.todo, vip)
	}
}

// pump starts queued decisions and writes.
func (r *runner) pump() {
	if r.sess == nil {
		return
	}
	if !r.flushing && (len(r.dirty) > 0 || r.drain.dirty) {
		r.flush()
	}
	if r.revoking {
		if !r.flushing && !r.revokeBusy && len(r.dirty) == 0 && !r.drain.dirty {
			r.revokeOlds()
		}
		return
	}
	for len(r.todo) > 0 && r.inflight < maxInflight {
		vip := r.todo[0]
		r.todo = r.todo[1:]
		e := r.engaged[vip]
		if e == nil || !e.queued {
			continue
		}
		e.queued = false
		if r.busy[vip] {
			r.again[vip] = true
			continue
		}
		r.dispatch(vip, e)
	}
	if len(r.todo) == 0 {
		r.todo = nil
	}
}

// revokeOlds revokes the lost sessions' leases, in the background.
func (r *runner) revokeOlds() {
	olds, gen := r.olds, r.gen
	r.olds, r.revokeBusy = nil, true
	_, _, timeout := r.g.live()
	go func() {
		for _, s := range olds {
			ctx, cancel := context.WithTimeout(r.ctx, timeout)
			if err := s.Revoke(ctx); err != nil {
				r.g.log.Debug("fleet: revoking a lost lease", "err", err.Error())
			}
			cancel()
		}
		select {
		case r.revoked <- gen:
		case <-r.quit:
		}
	}()
}

func (r *runner) dispatch(vip string, e *engagement) {
	r.busy[vip] = true
	r.inflight++
	_, _, timeout := r.g.live()
	sess, gen, seq, minSites := r.sess, r.gen, e.seq, e.min
	var reported Entry
	if own := r.own[vip]; own != nil {
		reported = *own
	}
	reported = r.g.stamp(reported)
	go func() {
		d := decide(r.ctx, r.g.store, sess, r.k, vip, r.site, r.node, minSites, timeout, reported)
		d.seq, d.gen = seq, gen
		select {
		case r.results <- d:
		case <-r.quit:
		}
	}()
}

func (r *runner) onDecision(d decision) {
	r.inflight--
	delete(r.busy, d.vip)
	again := r.again[d.vip]
	delete(r.again, d.vip)
	e := r.engaged[d.vip]
	if d.gen != r.gen {
		if e != nil && r.sess != nil {
			r.queueDecide(d.vip, e)
		}
		return
	}
	if d.err != nil {
		if e != nil && e.seq == d.seq {
			e.failedTook = d.took
		}
		r.lost(d.err)
		return
	}
	if old, ok := r.own[d.vip]; !r.dirty[d.vip] && (!ok || old != nil) {
		ent := d.entry
		r.own[d.vip] = &ent
	}
	if r.g.o.Observe != nil {
		outcome := "permitted"
		if d.guarded {
			outcome = "guarded"
		}
		r.g.o.Observe(outcome, d.took)
	}
	if e == nil {
		return
	}
	if e.seq != d.seq {
		r.queueDecide(d.vip, e)
		return
	}
	r.deliver(e, Verdict{VIP: d.vip, Seq: d.seq, Guarded: d.guarded, Reason: d.reason, Others: d.others, Took: d.took}, true)
	if again {
		r.recheck(d.vip, e)
	}
}

// recheck decides vip again when the view says the answer may change.
func (r *runner) recheck(vip string, e *engagement) {
	if !e.has || e.lost != "" || r.sess == nil || e.min <= 0 {
		return
	}
	n := r.viewOthers(vip)
	switch {
	case e.guarded && n >= e.min:
		if e.releaseAt.IsZero() {
			e.releaseAt = time.Now().Add(releaseSettle)
			r.armSettle(e.releaseAt)
		}
	case !e.guarded && n < e.min:
		e.releaseAt = time.Time{}
		r.queueDecide(vip, e)
	default:
		e.releaseAt = time.Time{}
	}
}

// armSettle makes the run loop call settled at t (or earlier).
func (r *runner) armSettle(t time.Time) {
	if r.settleC != nil && !r.settleAt.After(t) {
		return
	}
	r.settleAt = t
	r.settleC = time.After(time.Until(t))
}

// settled decides again the guarded VIPs whose view has shown enough other
// sites for releaseSettle, if it still does.
func (r *runner) settled(now time.Time) {
	for vip, e := range r.engaged {
		if e.releaseAt.IsZero() {
			continue
		}
		if now.Before(e.releaseAt) {
			r.armSettle(e.releaseAt)
			continue
		}
		e.releaseAt = time.Time{}
		if e.has && e.guarded && e.lost == "" && r.sess != nil && r.viewOthers(vip) >= e.min {
			r.queueDecide(vip, e)
		}
	}
}

// viewOthers counts the other sites announcing vip in the view.
func (r *runner) viewOthers(vip string) int {
	g := r.g
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(otherSites(slices.Collect(maps.Values(g.entries[vip])), r.site, r.node))
}

func (r *runner) onEvents(batch []KV, ok bool) {
	if !ok {
		if r.ctx.Err() == nil {
			r.lost(errors.New("the etcd watch ended"))
		}
		return
	}
	g := r.g
	changed, slots := map[string]bool{}, false
	g.mu.Lock()
	for _, kv := range batch {
		vip := r.k.apply(g.entries, g.slots, kv)
		if vip == "" {
			slots = true
			continue
		}
		if _, site, node, _ := r.k.parseEntry(kv.Key); site != r.site || node != r.node {
			changed[vip] = true
		}
	}
	g.snap = nil
	g.notifyLocked()
	g.mu.Unlock()
	for vip := range changed {
		e := r.engaged[vip]
		switch {
		case e == nil:
		case r.busy[vip]:
			r.again[vip] = true
		default:
			r.recheck(vip, e)
		}
	}
	if slots {
		r.drainEval()
	}
}

// flush writes up to MaxOps of this node's changed entries (and its drain
// slot) in one transaction, in the background.
func (r *runner) flush() {
	var ops []Op
	var vips []string
	for vip := range r.dirty {
		if len(ops) == MaxOps {
			break
		}
		if r.busy[vip] {
			continue // the decision writes it; the report follows
		}
		op := Op{Key: r.k.entry(vip, r.site, r.node)}
		if e := r.own[vip]; e == nil {
			op.Delete = true
		} else {
			op.Value, _ = json.Marshal(r.g.stamp(*e))
		}
		ops = append(ops, op)
		vips = append(vips, vip)
		delete(r.dirty, vip)
	}
	slot := false
	if r.drain.dirty && !r.drain.busy && len(ops) < MaxOps { // after an attempt: it may write the key
		slot, r.drain.dirty = true, false
		op := Op{Key: r.k.slot(r.site, r.node)}
		if r.drain.held {
			op.Value, _ = json.Marshal(Slot{Since: r.drain.since, Reason: r.drain.reason})
		} else {
			op.Delete = true
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return
	}
	r.flushing = true
	_, _, timeout := r.g.live()
	sess, gen := r.sess, r.gen
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		err := sess.Write(ctx, ops)
		cancel()
		select {
		case r.flushed <- flushResult{gen: gen, vips: vips, slot: slot, err: err}:
		case <-r.quit:
		}
	}()
}

func (r *runner) onFlushed(f flushResult) {
	r.flushing = false
	if f.gen != r.gen {
		return // a new session writes everything again
	}
	if f.err != nil {
		for _, v := range f.vips {
			r.dirty[v] = true
		}
		if f.slot {
			r.drain.dirty = true
		}
		r.lost(f.err)
		return
	}
	for _, v := range f.vips {
		if e, ok := r.own[v]; ok && e == nil && !r.dirty[v] {
			delete(r.own, v)
		}
	}
}

// drainEval (re)considers the drain slot this node waits for.
func (r *runner) drainEval() {
	d := &r.drain
	maxDrained, mode, timeout := r.g.live()
	if !d.want || d.held {
		return
	}
	switch {
	case maxDrained == 0:
		r.tellDrain(DrainSlotEvent{Granted: true})
		return
	case r.sess == nil && !r.tried:
		return
	case r.sess == nil && mode == config.CoordinatorLostLocal:
		r.tellDrain(DrainSlotEvent{Granted: true})
		return
	case r.sess == nil:
		r.tellDrain(DrainSlotEvent{Detail: "waiting for a drain slot: the fleet coordinator (etcd) cannot be reached"})
		return
	case r.revoking:
		return // drainEval again once revoked
	case d.busy:
		d.again = true
		return
	}
	d.busy = true
	sess, gen, reason := r.sess, r.gen, d.reason
	go func() {
		a := takeSlot(r.ctx, r.g.store, sess, r.k, r.site, r.node, reason, maxDrained, timeout)
		a.gen = gen
		select {
		case r.drained <- a:
		case <-r.quit:
		}
	}()
}

func (r *runner) onDrainAttempt(a drainAttempt) {
	d := &r.drain
	d.busy = false
	again := d.again
	d.again = false
	switch {
	case a.gen != r.gen:
		if a.granted && !d.want {
			d.dirty = true
		}
		r.drainEval()
	case a.err != nil:
		r.lost(a.err)
	case a.granted && !d.want:
		d.dirty = true // released while taking it: delete it
	case a.granted:
		d.held, d.since = true, time.Now()
		r.tellDrain(DrainSlotEvent{Granted: true})
	default:
		r.tellDrain(DrainSlotEvent{Detail: a.detail})
		if again {
			r.drainEval()
		}
	}
}

// tellDrain tells the announcer about its drain slot, once per change; a
// grant is not taken back until the slot is released.
func (r *runner) tellDrain(ev DrainSlotEvent) {
	d := &r.drain
	if d.told != nil && (*d.told == ev || d.told.Granted && !ev.Granted) {
		return
	}
	d.told = &ev
	if ev.Granted {
		r.g.log.Debug("fleet: drain slot granted", "site", r.site, "node", r.node)
	} else {
		r.g.log.Info("fleet: "+ev.Detail, "site", r.site, "node", r.node)
	}
	r.g.o.OnDrainSlot(ev)
}

// shutdown revokes the lease, so this node's keys vanish at once.
func (r *runner) shutdown() {
	if r.wcancel != nil {
		r.wcancel()
	}
	_, _, timeout := r.g.live()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range append(r.olds, r.sess) {
		if s == nil {
			continue
		}
		if err := s.Revoke(ctx); err != nil {
			r.g.log.Debug("fleet: revoking the lease", "err", err.Error())
		}
	}
	r.sess, r.olds = nil, nil
	r.g.setCoordinator(false, "stopped")
}
