package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml does not export the positions of keys, so lineIndex is built
// by a small scanner over the source. It is only run on documents the TOML
// parser accepted, but it never panics or loops on any input.
//
// Paths are the keys' pieces joined with ".", where every array element
// (array of tables, or value in an array) carries its 0-based index:
// "bgp.peer[1].address", "vip[0]", "vip[0].prefixes[2]".

// position is where a key, header or array element starts: its 1-based
// line (0 if unknown) and byte offset.
type position struct {
	line, off int
}

// lineIndex maps paths to where they are defined.
type lineIndex struct {
	lines map[string]position
}

// get returns the position of path, the zero position if unknown.
func (x *lineIndex) get(path string) position {
	if x == nil {
		return position{}
	}
	return x.lines[path]
}

func scanLines(src []byte) *lineIndex {
	s := &lineScanner{src: src, line: 1, lines: map[string]position{}, aot: map[string]int{}}
	s.run()
	return &lineIndex{lines: s.lines}
}

type lineScanner struct {
	src   []byte
	pos   int
	line  int
	ctx   string              // path of the current table
	lines map[string]position // result
	aot   map[string]int      // path of an array of tables → index of its last element
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

func (s *lineScanner) set(path string, at position) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = at
	}
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

// resolve turns key pieces into a path, indexing arrays of tables by their
// current (last) element.
func (s *lineScanner) resolve(pieces []string) string {
	cur := ""
	for _, p := range pieces {
		cur = join(cur, p)
		if i, ok := s.aot[cur]; ok {
			cur += "[" + strconv.Itoa(i) + "]"
		}
	}
	return cur
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
	for i := 1; i < len(pieces); i++ {
		s.set(s.resolve(pieces[:i]), at)
	}
	var path string
	if array {
		base := join(s.resolve(pieces[:len(pieces)-1]), pieces[len(pieces)-1])
		i := 0
		if last, ok := s.aot[base]; ok {
			i = last + 1
		}
		s.aot[base] = i
		s.set(base, at)
		path = base + "[" + strconv.Itoa(i) + "]"
	} else {
		path = s.resolve(pieces)
	}
	s.set(path, at)
	s.ctx = path
}

// keyValue scans `key = value` in the current table.
func (s *lineScanner) keyValue() {
	s.pair(s.ctx)
}

// pair scans `key = value` under path parent.
func (s *lineScanner) pair(parent string) {
	at := s.here()
	pieces := s.keyPieces()
	if len(pieces) == 0 {
		return
	}
	path := parent
	for _, p := range pieces {
		path = join(path, p)
		s.set(path, at)
	}
	s.skipSpace(false)
	if s.peek(0) != '=' {
		return
	}
	s.advance()
	s.skipSpace(false)
	s.value(path)
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
func (s *lineScanner) value(path string) {
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
			elem := path + "[" + strconv.Itoa(i) + "]"
			s.set(elem, s.here())
			start := s.pos
			s.value(elem)
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
			s.pair(path)
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
