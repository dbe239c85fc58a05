package health

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler drives many Runners from one goroutine and one timer: a heap of
// due times. A due probe goes to the most recently idle worker (a LIFO stack
// of idle workers), or to a new one when none is idle. So only as many
// workers stay busy as the probes' concurrency needs; the others stay at the
// bottom of the stack, and the scheduler ends those idle for workerIdle. An
// idle check costs no goroutine and no timer, a worker no timer either, and
// the warm workers' stacks stay grown between probes, so 10,000 checks cost
// little more than their probes.
//
// Timing, per runner: the first probe is due after a random jitter in
// [0, min(Interval, 1s)) (Runner.firstDue); each later one is due one period
// after the previous one was due, so lateness does not accumulate; the
// period is FastInterval while a state change is in doubt, else Interval
// (Runner.nextDue, hysteresis.period). Periods that pass while a probe is
// still running are skipped.
//
// Each runner's entry is in exactly one place: in the heap (waiting for its
// due time), probing (its goroutine owns it), or finished. So at most one
// probe per check is in flight.
//
// A runner whose checker is a Watcher also has a goroutine running Watch.
// Its wake makes the entry due now if it is waiting in the heap, or, if it
// is probing, marks it to be probed again as soon as the probe returns; the
// schedule then continues from that probe.
type scheduler struct {
	mu    sync.Mutex
	queue dueQueue
	wake  chan struct{} // a new earliest entry; buffered 1
	// idle are the workers waiting for a probe, the most recently idle
	// last; guarded by mu.
	idle    []*worker
	stopped bool // run has returned: workers exit; guarded by mu
	wg      sync.WaitGroup
}

// workerIdle is how long a worker waits for a probe before it exits: 10s.
const workerIdle = 10 * time.Second

// worker is one goroutine that runs probes, one at a time.
type worker struct {
	work  chan *entry // the next probe, nil: exit; buffered 1
	since time.Time   // when it became idle
}

// entry is one Runner in a scheduler.
type entry struct {
	r      *Runner
	ctx    context.Context // ends the runner
	due    time.Time
	index  int           // in queue; -1 when not queued
	done   chan struct{} // closed once finished
	closed bool          // done is closed; guarded by scheduler.mu
	woken  bool          // woken while probing: due again at once; guarded by scheduler.mu
	stop   func() bool   // unregisters the AfterFunc
}

func newScheduler() *scheduler {
	return &scheduler{wake: make(chan struct{}, 1)}
}

// add schedules r until ctx ends, its first probe after the runner's jitter.
// The returned channel is closed once r has stopped: ctx has ended, no probe
// of r is in flight, its checker has been closed (if it is an io.Closer) and
// its Watch (if it is a Watcher) has returned.
func (s *scheduler) add(ctx context.Context, r *Runner) <-chan struct{} {
	e := s.addEntry(ctx, r)
	w, ok := r.checker.(Watcher)
	if !ok {
		return e.done
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.Watch(ctx, func() { s.wakeEntry(e) })
		<-e.done
	}()
	return stopped
}

// wakeEntry makes e due now: at once if it waits in the heap, right after
// its probe if it is probing.
func (s *scheduler) wakeEntry(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case e.closed:
	case e.index < 0:
		e.woken = true
	default:
		if now := time.Now(); e.due.After(now) {
			e.due = now
			heap.Fix(&s.queue, e.index)
			if e.index == 0 {
				s.signal()
			}
		}
	}
}

// addEntry queues a new entry for r; see add.
func (s *scheduler) addEntry(ctx context.Context, r *Runner) *entry {
	e := &entry{r: r, ctx: ctx, due: r.firstDue(time.Now()), index: -1, done: make(chan struct{})}
	// An entry waiting in the heap is finished as soon as its ctx ends; a
	// probing one when its probe returns.
	e.stop = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if e.index >= 0 {
			heap.Remove(&s.queue, e.index)
			s.finish(e)
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		s.finish(e) // the AfterFunc has run or will find nothing queued
	} else {
		s.push(e)
	}
	return e
}

// push queues e; s.mu must be held.
func (s *scheduler) push(e *entry) {
	heap.Push(&s.queue, e)
	if e.index == 0 {
		s.signal()
	}
}

// signal tells run that the earliest entry changed; s.mu must be held.
func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish marks e finished and closes its checker; s.mu must be held.
func (s *scheduler) finish(e *entry) {
	if !e.closed {
		e.closed = true
		e.r.closeChecker()
		close(e.done)
	}
}

// run starts the probes that are due until ctx ends, then waits for the
// workers to finish their probes. Entries are expected to end with ctx.
func (s *scheduler) run(ctx context.Context) {
	defer s.wg.Wait()
	defer s.shutdown()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		for len(s.queue) > 0 && !s.queue[0].due.After(now) {
			e := heap.Pop(&s.queue).(*entry)
			if n := len(s.idle); n > 0 {
				w := s.idle[n-1]
				s.idle[n-1] = nil
				s.idle = s.idle[:n-1]
				w.work <- e // buffered, and w waits for exactly this
			} else {
				s.wg.Add(1)
				go s.worker(&worker{work: make(chan *entry, 1)}, e)
			}
		}
		// The least recently idle workers go once idle for workerIdle.
		for len(s.idle) > 0 && now.Sub(s.idle[0].since) >= workerIdle {
			s.idle[0].work <- nil
			s.idle[0] = nil
			s.idle = s.idle[1:]
		}
		wait := time.Hour
		if len(s.queue) > 0 {
			wait = s.queue[0].due.Sub(now)
		}
		if len(s.idle) > 0 {
			wait = min(wait, s.idle[0].since.Add(workerIdle).Sub(now))
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// shutdown ends the idle workers and makes the busy ones exit after their
// probe.
func (s *scheduler) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, w := range s.idle {
		w.work <- nil
	}
	s.idle = nil
}

// worker probes e, then whatever it is handed, until it is handed nil.
func (s *scheduler) worker(w *worker, e *entry) {
	defer s.wg.Done()
	for e != nil {
		s.probe(e)
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		w.since = time.Now()
		s.idle = append(s.idle, w)
		s.mu.Unlock()
		e = <-w.work
	}
}

// probe runs one probe of e, then queues e again or finishes it.
func (s *scheduler) probe(e *entry) {
	ok := e.ctx.Err() == nil && e.r.probeOnce(e.ctx)
	var next time.Time
	if ok {
		next = e.r.nextDue(e.due, time.Now())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || e.ctx.Err() != nil {
		e.stop()
		s.finish(e)
		return
	}
	e.due = next
	if e.woken {
		e.woken = false
		e.due = time.Now()
	}
	s.push(e)
}

// dueQueue is a min-heap of entries by due time.
type dueQueue = deadlineHeap[*entry]

func (e *entry) heapDeadline() time.Time { return e.due }
func (e *entry) setHeapIndex(i int)      { e.index = i }
