package announcer

import (
	"time"

	"github.com/anycastd/anycastd/fleet"
)

// The fleet's drain budget ([fleet] max_drained): a voluntary drain (API,
// maintenance file, stop) takes one of the fleet's drain slots first. A
// drain that finds none waits, the VIPs staying in service; a stop waits at
// most the drain time, then drains anyway.

// slotState is the loop's drain slot.
type slotState struct {
	requested bool   // asked the guard (and not released since)
	answered  bool   // the guard said granted or waiting since the request
	granted   bool   // the node holds a slot
	waiting   string // why not, while requested and not granted
	// replies are drain requests answered once the guard has answered
	// (so the API can say "waiting for a drain slot"), at the latest at
	// replyBy.
	replies []controlReq
	replyBy time.Time
}

// slotTimeout bounds how long a drain request waits for the guard's first
// word on the slot before it is answered anyway.
const slotTimeout = 3 * time.Second

// needsSlot reports whether voluntary drains take a fleet drain slot.
func (l *loop) needsSlot() bool {
	return l.opts.Fleet != nil && l.cfg.Fleet != nil && l.cfg.Fleet.MaxDrained > 0
}

// syncSlot asks for a drain slot when a drain wants one, and gives it back
// when no drain is left.
func (l *loop) syncSlot(now time.Time) {
	want, reason := false, ""
	for _, srcs := range l.drains {
		for _, e := range srcs {
			if e.waiting || l.slot.requested {
				want, reason = true, e.reason
			}
		}
	}
	want = want && l.needsSlot()
	switch {
	case want && !l.slot.requested:
		l.slot.requested, l.slot.answered, l.slot.granted = true, false, false
		l.slot.waiting = "waiting for a drain slot"
		l.slot.replyBy = now.Add(slotTimeout)
		l.opts.Fleet.RequestDrainSlot(reason)
	case !want && l.slot.requested:
		if l.slot.granted {
			l.log.Info("drain slot given back to the fleet")
		}
		l.slot = slotState{replies: l.slot.replies}
		if l.opts.Fleet != nil {
			l.opts.Fleet.ReleaseDrainSlot()
		}
		l.activateDrains(now) // nothing waits any more (max_drained removed)
	case !l.needsSlot():
		l.activateDrains(now)
	}
}

// inEffect reports whether drain e applies now: it holds the slot (or needs
// none), or it is a stop's drain whose wait for a slot is over.
func (l *loop) inEffect(e drainEntry, now time.Time) bool {
	return !e.waiting || (!e.forceAt.IsZero() && !now.Before(e.forceAt))
}

// activateDrains puts every waiting drain in effect, its drain time
// running from now.
func (l *loop) activateDrains(now time.Time) {
	for key, srcs := range l.drains {
		for src, e := range srcs {
			if e.waiting {
				e.waiting, e.since = false, now
				srcs[src] = e
				l.markAll()
				l.log.Info("draining: announcing with GRACEFUL_SHUTDOWN, then withdrawing", "vip", key, "reason", e.reason)
			}
		}
	}
}

// forceDrains puts in effect the stop's drains whose wait for a slot is
// over: a stop waits for a slot at most the drain time. It reports whether
// any was.
func (l *loop) forceDrains(now time.Time) bool {
	forced := false
	for key, srcs := range l.drains {
		for src, e := range srcs {
			if e.waiting && !e.forceAt.IsZero() && !now.Before(e.forceAt) {
				e.waiting, e.since = false, e.forceAt
				srcs[src] = e
				forced = true
				l.log.Warn("no fleet drain slot within the drain time: draining anyway", "vip", key, "reason", e.reason,
					"waited_for", l.slot.waiting)
			}
		}
	}
	return forced
}

// drainSlot takes the guard's word on the drain slot into the loop.
func (l *loop) drainSlot(ev fleet.DrainSlotEvent, now time.Time) {
	if !l.slot.requested {
		return // released meanwhile
	}
	l.slot.answered = true
	was := l.slot.granted
	l.slot.granted = ev.Granted
	l.slot.waiting = ""
	if !ev.Granted {
		l.slot.waiting = ev.Detail
		if l.slot.waiting == "" {
			l.slot.waiting = "waiting for a drain slot"
		}
		l.log.Warn("drain waits for a fleet drain slot; the VIPs stay in service meanwhile", "detail", l.slot.waiting)
		return
	}
	if !was {
		l.log.Info("fleet drain slot granted")
	}
	l.activateDrains(now)
}

// slotReplies returns the drain requests to answer now: all of them once
// the guard has answered, or when replyBy is past.
func (l *loop) slotReplies(now time.Time) []controlReq {
	if len(l.slot.replies) == 0 || (!l.slot.answered && l.slot.requested && now.Before(l.slot.replyBy)) {
		return nil
	}
	out := l.slot.replies
	l.slot.replies = nil
	return out
}

// awaitsSlotAnswer reports whether a drain request just made must wait for
// the guard's first word before it is answered.
func (l *loop) awaitsSlotAnswer() bool { return l.slot.requested && !l.slot.answered }

// drainWaiting is Snapshot.DrainWaiting: why a drain is not in effect
// yet, or "".
func (l *loop) drainWaiting() string {
	for _, srcs := range l.drains {
		for _, e := range srcs {
			if e.waiting {
				return l.slot.waiting
			}
		}
	}
	return ""
}
