package health

import (
	"math"
	"time"
)

// historySize is how many recent Results a Runner keeps: 16.
const historySize = 16

// maxHistoryTexts bounds history.texts before it is compacted: the live
// records refer to at most 2×(historySize-1) texts when a new one is added.
const maxHistoryTexts = 2 * historySize

// history is a ring of the last historySize Results of a check, kept
// compact: 16 bytes a probe instead of a Result's 80. A probe's time is kept
// as Unix nanoseconds, its latency in microseconds, and its error and output
// as indexes into texts, a table of the distinct strings the records refer
// to, so that a check failing with the same error keeps it once. A check
// that passes without output keeps no text at all.
//
// What comes back out (results) equals what went in as the Runner makes
// Results: a Time without a monotonic clock reading, in time.Local, and a
// Latency truncated to the microsecond (below 35 minutes).
type history struct {
	ring  [historySize]record
	next  int      // index in ring of the next record
	count int      // records in ring
	texts []string // referred to by records as index+1; nil until needed
}

// record is one Result in a history.
type record struct {
	unixNano int64
	latency  uint32 // µs, saturated at math.MaxUint32
	kind     Kind
	definite bool
	err, out uint8 // index+1 in history.texts; 0: ""
}

// add records res, replacing the oldest record when the ring is full.
func (h *history) add(res Result) {
	us := res.Latency / time.Microsecond
	if us > math.MaxUint32 {
		us = math.MaxUint32
	} else if us < 0 {
		us = 0
	}
	// The record replaced is cleared first (its texts may go in a
	// compaction), and each index is stored before the next intern (which
	// may compact, renumbering the stored ones).
	rec := &h.ring[h.next]
	*rec = record{unixNano: res.Time.UnixNano(), latency: uint32(us), kind: res.Kind, definite: res.Definite}
	rec.err = h.intern(res.Err)
	rec.out = h.intern(res.Output)
	h.next = (h.next + 1) % historySize
	h.count = min(h.count+1, historySize)
}

// intern returns the index+1 of s in h.texts, adding it if needed; 0 for "".
func (h *history) intern(s string) uint8 {
	if s == "" {
		return 0
	}
	for i := len(h.texts) - 1; i >= 0; i-- {
		if h.texts[i] == s {
			return uint8(i + 1)
		}
	}
	if len(h.texts) >= maxHistoryTexts {
		h.compact()
	}
	h.texts = append(h.texts, s)
	return uint8(len(h.texts))
}

// compact drops the texts no record refers to.
func (h *history) compact() {
	var used [maxHistoryTexts + 1]bool
	for _, rec := range h.ring {
		used[rec.err], used[rec.out] = true, true
	}
	var remap [maxHistoryTexts + 1]uint8
	texts := make([]string, 0, maxHistoryTexts)
	for i, s := range h.texts {
		if used[i+1] {
			texts = append(texts, s)
			remap[i+1] = uint8(len(texts))
		}
	}
	for i := range h.ring {
		h.ring[i].err, h.ring[i].out = remap[h.ring[i].err], remap[h.ring[i].out]
	}
	h.texts = texts
}

// text returns the text of index+1 i.
func (h *history) text(i uint8) string {
	if i == 0 {
		return ""
	}
	return h.texts[i-1]
}

// results returns the recorded Results, oldest first.
func (h *history) results() []Result {
	out := make([]Result, 0, h.count)
	for i := range h.count {
		rec := &h.ring[(h.next-h.count+i+historySize)%historySize]
		out = append(out, Result{
			Time:     time.Unix(0, rec.unixNano),
			Latency:  time.Duration(rec.latency) * time.Microsecond,
			Err:      h.text(rec.err),
			Kind:     rec.kind,
			Output:   h.text(rec.out),
			Definite: rec.definite,
		})
	}
	return out
}
