package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Entry is one log line with its own timestamp: anycastd's (slog JSON,
// nanoseconds, taken when the line is logged) or FRR's (microseconds with
// `log timestamp precision 6`). Both read the same wall clock as the FIB
// watcher.
type Entry struct {
	Time time.Time
	Msg  string
	// anycastd's attributes (strings only; others are left out).
	Attrs map[string]string
}

// Attr returns an attribute of an anycastd line ("" if absent).
func (e Entry) Attr(k string) string { return e.Attrs[k] }

// Log follows a log file as it grows and keeps its parsed lines. Callers
// take a Mark and look for lines from it on, so that a line logged before
// they started looking is still found.
type Log struct {
	path  string
	parse func(line []byte) (Entry, bool)

	mu      sync.Mutex
	off     int64
	partial []byte
	entries []Entry
}

// AnycastdLog follows anycastd's JSON log (-log-format json).
func AnycastdLog(path string) *Log { return &Log{path: path, parse: parseSlogJSON} }

// FRRLog follows an FRR daemon's log (--log stdout).
func FRRLog(path string) *Log { return &Log{path: path, parse: parseFRRLine} }

// sync reads what was appended since the last call.
func (l *Log) sync() {
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	data, _ := io.ReadAll(f)
	l.off += int64(len(data))
	data = append(l.partial, data...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if e, ok := l.parse(data[:i]); ok {
			l.entries = append(l.entries, e)
		}
		data = data[i+1:]
	}
	l.partial = append([]byte(nil), data...)
}

// Mark returns the position after every line logged so far.
func (l *Log) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sync()
	return len(l.entries)
}

// Since returns the lines from mark on (reading the file first).
func (l *Log) Since(mark int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sync()
	if mark > len(l.entries) {
		return nil
	}
	return append([]Entry(nil), l.entries[mark:]...)
}

// Wait polls the file until a line from mark on satisfies match.
func (l *Log) Wait(ctx context.Context, mark int, match func(Entry) bool) (Entry, error) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		l.mu.Lock()
		l.sync()
		for i := mark; i < len(l.entries); i++ {
			if match(l.entries[i]) {
				e := l.entries[i]
				l.mu.Unlock()
				return e, nil
			}
		}
		mark = max(mark, len(l.entries))
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case <-t.C:
		}
	}
}

// Count returns how many lines from mark on satisfy match.
func (l *Log) Count(mark int, match func(Entry) bool) int {
	n := 0
	for _, e := range l.Since(mark) {
		if match(e) {
			n++
		}
	}
	return n
}

// msg matches lines with message m and the given attribute pairs.
func msg(m string, kv ...string) func(Entry) bool {
	return func(e Entry) bool {
		if e.Msg != m {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if e.Attrs[kv[i]] != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// contains matches FRR lines containing every one of parts.
func contains(parts ...string) func(Entry) bool {
	return func(e Entry) bool {
		for _, p := range parts {
			if !strings.Contains(e.Msg, p) {
				return false
			}
		}
		return true
	}
}

func parseSlogJSON(line []byte) (Entry, bool) {
	if len(line) == 0 || line[0] != '{' {
		return Entry{}, false // the lab's own "=== lab: ..." lines
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return Entry{}, false
	}
	ts, _ := m["time"].(string)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Entry{}, false
	}
	e := Entry{Time: t, Attrs: map[string]string{}}
	e.Msg, _ = m["msg"].(string)
	for k, v := range m {
		if s, ok := v.(string); ok {
			e.Attrs[k] = s
		}
	}
	return e, true
}

// An FRR log line: "2006/01/02 15:04:05.000000 BGP: [XXXXX-XXXXX] text".
var frrLine = regexp.MustCompile(`^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?) \S+: (?:\[[A-Z0-9]{5}-[A-Z0-9]{5}\] )?(.*)$`)

func parseFRRLine(line []byte) (Entry, bool) {
	m := frrLine.FindSubmatch(line)
	if m == nil {
		return Entry{}, false
	}
	// FRR writes local time.
	t, err := time.ParseInLocation("2006/01/02 15:04:05.999999999", string(m[1]), time.Local)
	if err != nil {
		return Entry{}, false
	}
	return Entry{Time: t, Msg: string(m[2])}, true
}
