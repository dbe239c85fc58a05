package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Path names the table the problem is in: "bgp", `bgp.peer "198.18.1.1"`,
	// "bgp.peer[2]", `check "web"`, "check[3]", `vip "web"`, "vip[1]",
	// "interface", "api", "metrics", "log". Indexes are 1-based, in file
	// order. Empty for unknown keys and syntax errors.
	Path string
	// Line is the 1-based line of the offending key (else of its table
	// header), 0 if unknown.
	Line int
	// Msg describes the problem; it starts with the key when one is at fault.
	Msg string
}

// String formats p as `<path>: <msg> (line N)`; the path and the line are
// left out when empty or unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// Error lists every problem found in a configuration, ordered by line.
// Parse and Load return it as a *Error.
type Error struct {
	Problems []Problem
}

// Error returns one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems while a configuration is decoded and validated.
type collector struct {
	lines    *lineIndex
	problems []Problem
	offsets  []int // byte offset of each problem, to order those on a line
	// failed holds the display keys of tables whose shape was wrong (for
	// example `bgp = 1`), so that their absence is not reported again.
	failed map[string]bool
}

func newCollector(lines *lineIndex) *collector {
	return &collector{lines: lines, failed: map[string]bool{}}
}

func (c *collector) add(path string, at position, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Line: at.line, Msg: fmt.Sprintf(format, args...)})
	c.offsets = append(c.offsets, at.off)
}

// err returns the collected problems as an *Error, in file order, or nil.
// Problems without a line come first.
func (c *collector) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	order := make([]int, len(c.problems))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := c.problems[a], c.problems[b]
		if pa.Line != pb.Line {
			return pa.Line - pb.Line
		}
		return c.offsets[a] - c.offsets[b]
	})
	ps := make([]Problem, len(order))
	for i, j := range order {
		ps[i] = c.problems[j]
	}
	return &Error{Problems: ps}
}

// scope is a table being validated: problems found in it are reported under
// its display path, at the line of the key concerned or of its header.
type scope struct {
	c    *collector
	path string   // display path, e.g. `vip "web"`
	node *node    // in the lineIndex
	hdr  position // of the header
}

// posOf returns the position of key, a key of the table that may carry
// element indexes, as in "prefixes[2]": that of the element, else of the
// key, else of the header.
func (s scope) posOf(key string) position {
	name, idx, _ := strings.Cut(key, "[")
	n := s.node.key(name)
	at := n.pos()
	if key == "" || at.line == 0 {
		return s.hdr
	}
	for idx != "" {
		d, rest, _ := strings.Cut(idx, "]")
		i, err := strconv.Atoi(d)
		if err != nil {
			break
		}
		if n = n.elem(i); n.pos().line == 0 {
			break
		}
		at = n.pos()
		idx = strings.TrimPrefix(rest, "[")
	}
	return at
}

// at reports a problem at the line of key (or of the header if key is "").
func (s scope) at(key, format string, args ...any) {
	s.c.add(s.path, s.posOf(key), format, args...)
}

// keyErr reports a problem with the value of key; the message starts with
// the key's name.
func (s scope) keyErr(key, format string, args ...any) {
	s.c.add(s.path, s.posOf(key), key+": "+format, args...)
}

// elemErr reports a problem with element i (0-based) of the array in key.
func (s scope) elemErr(key string, i int, format string, args ...any) {
	s.c.add(s.path, s.posOf(fmt.Sprintf("%s[%d]", key, i)), key+": "+format, args...)
}

// missing reports a required key that is not set.
func (s scope) missing(key string) {
	s.c.add(s.path, s.hdr, "%s is required", key)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
