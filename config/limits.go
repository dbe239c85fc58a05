package config

import "fmt"

// Limits on the shape of a document, checked by checkLimits before it is
// decoded. The TOML library's cost per key grows with the depth and length
// of the key's full name (table header, dotted parts and enclosing inline
// tables together), and nesting multiplies it; a real configuration keys at
// most three levels deep ("vip.degraded.communities") with short names.
const (
	// MaxNesting is how deep arrays and inline tables may nest.
	MaxNesting = 16
	// MaxKeyParts is how many parts the full name of a key or table may
	// have: those of its table header, of the keys of the inline tables it
	// is in, and its own dotted parts.
	MaxKeyParts = 16
	// MaxKeyBytes is how long the full name of a key or table may be, in
	// bytes of the source (its parts as written, quotes included).
	MaxKeyBytes = 256
)

// checkLimits scans src once, in linear time and constant memory per level
// of nesting, and returns a *Error naming the line of the first place over
// one of the limits. It understands strings (all four kinds) and comments
// well enough not to count brackets, dots or quotes inside them. It does not
// validate the syntax: a document it lets through may still be malformed,
// and on a malformed one its verdict only matters for being linear.
func checkLimits(src []byte) error {
	s := limitScanner{src: src, line: 1}
	if err := s.run(); err != nil {
		return &Error{Problems: []Problem{{Line: s.line, Msg: err.Error()}}}
	}
	return nil
}

// name is the depth and length of a key's full name.
type name struct{ parts, bytes int }

func (n name) add(m name) name { return name{n.parts + m.parts, n.bytes + m.bytes} }

type limitScanner struct {
	src   []byte
	i     int
	line  int
	table name   // of the current [table] header
	cur   name   // of the key whose value is being scanned
	stack []name // open arrays and inline tables: the full name they are the value of
	kinds []byte // '[' or '{' for each element of stack
}

func (s *limitScanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *limitScanner) run() error {
	lineStart := true
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\n':
			s.line++
			s.i++
			if len(s.stack) == 0 {
				lineStart = true
			}
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		case lineStart && c == '[':
			// A [table] or [[array of tables]] header.
			lineStart = false
			s.i++
			if s.peek(0) == '[' {
				s.i++
			}
			n := s.key()
			if err := check(n); err != nil {
				return err
			}
			s.table = n
		case lineStart:
			lineStart = false
			if err := s.keyValue(s.table); err != nil {
				return err
			}
		case c == '"' || c == '\'':
			s.str()
		case c == '[' || c == '{':
			if len(s.stack) >= MaxNesting {
				return fmt.Errorf("arrays and inline tables are nested more than %d deep", MaxNesting)
			}
			s.stack = append(s.stack, s.cur)
			s.kinds = append(s.kinds, c)
			s.i++
			if c == '{' {
				if err := s.inlineKey(); err != nil {
					return err
				}
			}
		case c == ']' || c == '}':
			s.i++
			if len(s.stack) > 0 {
				s.stack = s.stack[:len(s.stack)-1]
				s.kinds = s.kinds[:len(s.kinds)-1]
				if len(s.stack) > 0 {
					s.cur = s.stack[len(s.stack)-1]
				}
			}
		case c == ',':
			s.i++
			if len(s.kinds) > 0 && s.kinds[len(s.kinds)-1] == '{' {
				if err := s.inlineKey(); err != nil {
					return err
				}
			}
		default:
			s.i++
		}
	}
	return nil
}

// inlineKey scans the key of the next pair of an inline table, if any.
func (s *limitScanner) inlineKey() error {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case '\n':
			s.line++
			s.i++
		case ' ', '\t', '\r':
			s.i++
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		case '}', ',':
			return nil
		default:
			return s.keyValue(s.stack[len(s.stack)-1])
		}
	}
	return nil
}

// keyValue scans a key under parent, up to its '='.
func (s *limitScanner) keyValue(parent name) error {
	n := parent.add(s.key())
	if err := check(n); err != nil {
		return err
	}
	s.cur = n
	return nil
}

func check(n name) error {
	switch {
	case n.parts > MaxKeyParts:
		return fmt.Errorf("key has more than %d parts (counting those of its table header and inline tables)", MaxKeyParts)
	case n.bytes > MaxKeyBytes:
		return fmt.Errorf("key is longer than %d bytes (counting its table header and inline tables)", MaxKeyBytes)
	}
	return nil
}

// key scans a possibly dotted key and returns the number and length of its
// parts. It stops at the first byte that cannot continue the key ('=', ']',
// the end of the line...), without consuming it.
func (s *limitScanner) key() name {
	var n name
	for {
		for s.peek(0) == ' ' || s.peek(0) == '\t' {
			s.i++
		}
		start := s.i
		switch s.peek(0) {
		case '"', '\'':
			s.str()
		default:
			for s.i < len(s.src) && isBareKeyByte(s.src[s.i]) {
				s.i++
			}
		}
		if s.i == start {
			return n
		}
		n.parts++
		n.bytes += s.i - start
		for s.peek(0) == ' ' || s.peek(0) == '\t' {
			s.i++
		}
		if s.peek(0) != '.' {
			return n
		}
		s.i++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c >= 0x80
}

// str skips a string of any of the four kinds, counting the lines of a
// multi-line one. An unterminated single-line string ends at the line end.
func (s *limitScanner) str() {
	q := s.src[s.i]
	if s.peek(1) == q && s.peek(2) == q {
		s.i += 3
		for s.i < len(s.src) {
			c := s.src[s.i]
			switch {
			case c == '\\' && q == '"':
				s.i++
				if s.peek(0) == '\n' {
					s.line++
				}
				s.i++
			case c == q && s.peek(1) == q && s.peek(2) == q:
				s.i += 3
				for s.peek(0) == q { // up to two quotes may end the content
					s.i++
				}
				return
			default:
				if c == '\n' {
					s.line++
				}
				s.i++
			}
		}
		return
	}
	s.i++
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == q:
			s.i++
			return
		case c == '\n':
			return
		case c == '\\' && q == '"' && s.peek(1) != '\n':
			s.i += 2
		default:
			s.i++
		}
	}
}
