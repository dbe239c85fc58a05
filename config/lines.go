package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml does not export the positions of keys, so lineIndex is built
// by a small scanner over the source. It is only run on documents the TOML
// parser accepted (and checkLimits before it), but it never panics or loops
// on any input.
//
// The index is a tree mirroring the document: a node per key, table and
// array element (array of tables, or value in an array), each holding only
// its own name, so that it costs memory in proportion to the document,
// however deep or long its keys. A [[header]] reaches into the last element
// of its array of tables, as in TOML.

// position is where a key, header or array element starts: its 1-based
// line (0 if unknown) and byte offset.
type position struct {
	line, off int
}

// node is a key, table or array element of the document. The methods of a
// nil *node return nothing, so lookups chain.
type node struct {
	at    position
	keys  map[string]*node
	elems []*node
	aot   bool // an array of tables: headers reach into its last element
}

// pos returns where n starts, the zero position for nil.
func (n *node) pos() position {
	if n == nil {
		return position{}
	}
	return n.at
}

// key returns the child named k, nil if none.
func (n *node) key(k string) *node {
	if n == nil {
		return nil
	}
	return n.keys[k]
}

// elem returns element i (0-based), nil if none.
func (n *node) elem(i int) *node {
	if n == nil || i < 0 || i >= len(n.elems) {
		return nil
	}
	return n.elems[i]
}

// child returns the child named k, created at at if new: a key keeps the
// position of its first mention.
func (n *node) child(k string, at position) *node {
	if c, ok := n.keys[k]; ok {
		return c
	}
	if n.keys == nil {
		n.keys = map[string]*node{}
	}
	c := &node{at: at}
	n.keys[k] = c
	return c
}

// element returns element i, created at at if new.
func (n *node) element(i int, at position) *node {
	if i < len(n.elems) {
		return n.elems[i]
	}
	e := &node{at: at}
	n.elems = append(n.elems, e)
	return e
}

// last returns the last element of an array of tables, else n itself.
func (n *node) last() *node {
	if n.aot && len(n.elems) > 0 {
		return n.elems[len(n.elems)-1]
	}
	return n
}

// lineIndex locates the keys of a document.
type lineIndex struct {
	root *node
}

func scanLines(src []byte) *lineIndex {
	root := &node{at: position{}}
	s := &lineScanner{src: src, line: 1, root: root, ctx: root}
	s.run()
	return &lineIndex{root: root}
}

type lineScanner struct {
	src  []byte
	pos  int
	line int
	root *node
	ctx  *node // the current table
}

func (s *lineScanner) run() {
	if strings.HasPrefix(string(s.src), "\uFEFF") {
		s.pos = len("\uFEFF")
	}
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.pos
		if s.peek(0) == '[' {
			s.header()
		} else {
			s.keyValue()
		}
		if s.pos == start {
			s.advance()
		}
	}
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

// peek returns the byte at offset off from the current position, 0 past the end.
func (s *lineScanner) peek(off int) byte {
	if s.pos+off < len(s.src) {
		return s.src[s.pos+off]
	}
	return 0
}

func (s *lineScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

func (s *lineScanner) here() position { return position{s.line, s.pos} }

// skipSpace skips blanks; with newlines, also line ends and comments.
func (s *lineScanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch s.peek(0) {
		case ' ', '\t', '\r':
			s.advance()
		case '\n':
			if !newlines {
				return
			}
			s.advance()
		case '#':
			if !newlines {
				return
			}
			for !s.eof() && s.peek(0) != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

// header scans [table] or [[array.of.tables]].
func (s *lineScanner) header() {
	at := s.here()
	array := s.peek(1) == '['
	s.advance()
	if array {
		s.advance()
	}
	pieces := s.keyPieces()
	for !s.eof() && s.peek(0) == ']' {
		s.advance()
	}
	if len(pieces) == 0 {
		return
	}
	// Implicitly created parents get the line of their first mention.
	n := s.root
	for _, p := range pieces[:len(pieces)-1] {
		n = n.child(p, at).last()
	}
	t := n.child(pieces[len(pieces)-1], at)
	if array {
		t.aot = true
		t = t.element(len(t.elems), at)
	} else {
		t = t.last()
	}
	s.ctx = t
}

// keyValue scans `key = value` in the current table.
func (s *lineScanner) keyValue() {
	s.pair(s.ctx)
}

// pair scans `key = value` under parent.
func (s *lineScanner) pair(parent *node) {
	at := s.here()
	pieces := s.keyPieces()
	if len(pieces) == 0 {
		return
	}
	n := parent
	for _, p := range pieces {
		n = n.child(p, at)
	}
	s.skipSpace(false)
	if s.peek(0) != '=' {
		return
	}
	s.advance()
	s.skipSpace(false)
	s.value(n)
}

// keyPieces scans a possibly dotted, possibly quoted key.
func (s *lineScanner) keyPieces() []string {
	var pieces []string
	for {
		s.skipSpace(false)
		if s.eof() {
			return pieces
		}
		switch c := s.peek(0); c {
		case '"', '\'':
			pieces = append(pieces, s.str())
		default:
			start := s.pos
			for !s.eof() && !strings.ContainsRune(" \t\r\n.=[]\"'#,{}", rune(s.peek(0))) {
				s.advance()
			}
			if s.pos == start {
				return pieces
			}
			pieces = append(pieces, string(s.src[start:s.pos]))
		}
		s.skipSpace(false)
		if s.peek(0) != '.' {
			return pieces
		}
		s.advance()
	}
}

// value scans one value; arrays and inline tables record their elements.
func (s *lineScanner) value(n *node) {
	switch s.peek(0) {
	case '"', '\'':
		s.str()
	case '[':
		s.advance()
		for i := 0; ; {
			s.skipSpace(true)
			switch s.peek(0) {
			case 0:
				if s.eof() {
					return
				}
			case ']':
				s.advance()
				return
			case ',':
				s.advance()
				continue
			}
			start := s.pos
			s.value(n.element(i, s.here()))
			if s.pos == start {
				s.advance()
			}
			i++
		}
	case '{':
		s.advance()
		for {
			s.skipSpace(true)
			switch s.peek(0) {
			case 0:
				if s.eof() {
					return
				}
			case '}':
				s.advance()
				return
			case ',':
				s.advance()
				continue
			}
			start := s.pos
			s.pair(n)
			if s.pos == start {
				s.advance()
			}
		}
	default:
		// Numbers, booleans and datetimes (which may contain a space) end
		// at a separator, a comment or the end of the line.
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek(0))) {
			s.advance()
		}
	}
}

// str scans a string of any of the four kinds and returns its content, with
// escapes resolved for basic strings.
func (s *lineScanner) str() string {
	q := s.peek(0)
	if s.peek(1) == q && s.peek(2) == q {
		// Multi-line; up to two quotes may precede the closing delimiter.
		s.pos += 3
		start := s.pos
		for !s.eof() {
			c := s.peek(0)
			if c == '\\' && q == '"' {
				s.advance()
				s.advance()
				continue
			}
			if c == q && s.peek(1) == q && s.peek(2) == q {
				n := 3
				for n < 5 && s.peek(n) == q {
					n++
				}
				content := string(s.src[start : s.pos+n-3])
				s.pos += n
				return content
			}
			s.advance()
		}
		return string(s.src[start:])
	}
	s.advance()
	start := s.pos
	for !s.eof() {
		c := s.peek(0)
		switch {
		case c == q:
			content := string(s.src[start:s.pos])
			s.advance()
			if q == '"' {
				return unescape(content)
			}
			return content
		case c == '\n':
			return string(s.src[start:s.pos])
		case c == '\\' && q == '"':
			s.advance()
			if s.peek(0) == '\n' {
				return string(s.src[start:s.pos])
			}
		}
		s.advance()
	}
	return string(s.src[start:])
}

// unescape resolves the escapes of a TOML basic string; unknown or malformed
// escapes are kept as they are.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		digits := 0 // of a \xHH, \uHHHH or \UHHHHHHHH escape
		switch c := s[i+1]; c {
		case '"', '\\':
			b.WriteByte(c)
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x':
			digits = 2
		case 'u':
			digits = 4
		case 'U':
			digits = 8
		default:
			b.WriteByte(s[i])
			continue
		}
		if digits == 0 {
			i++
			continue
		}
		if i+2+digits > len(s) {
			b.WriteByte(s[i])
			continue
		}
		v, err := strconv.ParseUint(s[i+2:i+2+digits], 16, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			b.WriteByte(s[i])
			continue
		}
		b.WriteRune(rune(v))
		i += 1 + digits
	}
	return b.String()
}
