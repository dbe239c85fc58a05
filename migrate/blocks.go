package migrate

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file holds the one tokenizer behind the brace-syntax configuration
// files anycastd migrate reads: ExaBGP's and BIRD's (statements end with
// ';') and keepalived's (statements end at the end of the line). Each
// source's grammar (exabgp.go, bird.go, keepalived.go) interprets the tree
// of statements it builds.

// Word is one word of a statement: a bare word, or a quoted string with
// its quotes removed.
type Word struct {
	Text   string
	Quoted bool
	Line   int // 1-based
}

// Stmt is one statement: its words and, when it opens a block ("name {
// … }"), the statements inside.
type Stmt struct {
	Words []Word
	Line  int // the line of the first word (of the '{' for a bare block)
	// Block holds the statements inside the braces; HasBlock tells an empty
	// block from none.
	Block    []*Stmt
	HasBlock bool
	// Raw is the statement's source text from its first word to its last,
	// quotes and all: what ExaBGP's "run" passes to its shell-like
	// splitting.
	Raw string
}

// Word returns the text of word i, or "" past the end.
func (s *Stmt) Word(i int) string {
	if i < len(s.Words) {
		return s.Words[i].Text
	}
	return ""
}

// Args returns the texts of the words after the first.
func (s *Stmt) Args() []string {
	var a []string
	for _, w := range s.Words[min(1, len(s.Words)):] {
		a = append(a, w.Text)
	}
	return a
}

// SyntaxError is a malformed source file: the file, the 1-based line and
// what is wrong.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// syntax describes one brace-syntax dialect.
type syntax struct {
	// semicolons: a statement ends at ';' (ExaBGP, BIRD); else at the end
	// of its line (keepalived).
	semicolons bool
	// bang: '!' starts a comment, like '#' (keepalived).
	bang bool
	// blockComments: /* … */ comments (BIRD).
	blockComments bool
}

// maxDepth bounds block nesting: real files nest 4 deep at most.
const maxDepth = 32

// maxSourceSize bounds a source file: 4 MiB, like anycastd's own
// configuration.
const maxSourceSize = 4 << 20

// parseBlocks splits data into statements and blocks. Errors are
// *SyntaxError with the line: an unterminated string or comment, a '}'
// without its '{', a block left open at the end (the line of its '{'),
// nesting deeper than maxDepth, a NUL byte or invalid UTF-8.
func parseBlocks(file string, data []byte, sx syntax) ([]*Stmt, error) {
	if len(data) > maxSourceSize {
		return nil, &SyntaxError{File: file, Msg: fmt.Sprintf("larger than %d MiB", maxSourceSize>>20)}
	}
	p := &blockParser{file: file, src: string(data), sx: sx, line: 1}
	top := &Stmt{HasBlock: true}
	p.stack = []*Stmt{top}
	if err := p.run(); err != nil {
		return nil, err
	}
	return top.Block, nil
}

type blockParser struct {
	file  string
	src   string
	sx    syntax
	pos   int
	line  int
	stack []*Stmt // the open blocks; stack[0] is the file
	cur   *Stmt   // the statement being read, nil between statements
	last  *Stmt   // the statement ended last in the innermost block (keepalived's "{" on its own line)
	opens []int   // the line of each open '{'
	// curStart is the offset of cur's first word.
	curStart int
}

func (p *blockParser) errf(line int, format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *blockParser) run() error {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == 0:
			return p.errf(p.line, "NUL byte")
		case c == '\n':
			p.pos++
			if !p.sx.semicolons {
				p.end()
			}
			p.line++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '#' || (c == '!' && p.sx.bang):
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == '/' && p.sx.blockComments && strings.HasPrefix(p.src[p.pos:], "/*"):
			start := p.line
			end := strings.Index(p.src[p.pos+2:], "*/")
			if end < 0 {
				return p.errf(start, "comment /* not closed")
			}
			p.line += strings.Count(p.src[p.pos:p.pos+2+end], "\n")
			p.pos += 2 + end + 2
		case c == ';' && p.sx.semicolons:
			p.pos++
			p.end()
		case c == '{':
			if err := p.open(); err != nil {
				return err
			}
		case c == '}':
			if len(p.stack) == 1 {
				return p.errf(p.line, "'}' without a matching '{'")
			}
			p.pos++
			p.end() // a last statement without its ';'
			closed := p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
			p.opens = p.opens[:len(p.opens)-1]
			p.last = closed
		case c == '"' || c == '\'':
			start := p.pos
			w, err := p.quoted(c)
			if err != nil {
				return err
			}
			p.add(w, start)
		default:
			start := p.pos
			p.add(p.bare(), start)
		}
	}
	p.end()
	if len(p.opens) > 0 {
		return p.errf(p.opens[len(p.opens)-1], "'{' not closed by the end of the file")
	}
	if !utf8.ValidString(p.src) {
		return p.errf(p.badUTF8Line(), "not valid UTF-8")
	}
	return nil
}

// open starts a block for the statement being read, or, in keepalived's
// dialect, for the statement on the lines before when the '{' starts its
// line.
func (p *blockParser) open() error {
	if len(p.stack) > maxDepth {
		return p.errf(p.line, "blocks nested more than %d deep", maxDepth)
	}
	p.pos++
	s := p.cur
	switch {
	case s != nil:
		p.cur = nil
	case !p.sx.semicolons && p.last != nil && !p.last.HasBlock:
		s = p.last // "name\n{": keepalived allows the brace on the next line
	default:
		s = &Stmt{Line: p.line}
		p.appendStmt(s)
	}
	s.HasBlock = true
	p.stack = append(p.stack, s)
	p.opens = append(p.opens, p.line)
	p.last = nil
	return nil
}

// add appends w, read from offset start up to here, to the statement
// being read, starting one if needed.
func (p *blockParser) add(w Word, start int) {
	if p.cur == nil {
		p.cur = &Stmt{Line: w.Line}
		p.curStart = start
		p.appendStmt(p.cur)
	}
	p.cur.Words = append(p.cur.Words, w)
	p.cur.Raw = p.src[p.curStart:p.pos]
}

func (p *blockParser) appendStmt(s *Stmt) {
	b := p.stack[len(p.stack)-1]
	b.Block = append(b.Block, s)
}

// end ends the statement being read.
func (p *blockParser) end() {
	if p.cur != nil {
		p.last = p.cur
		p.cur = nil
	}
}

// bare reads a word up to whitespace or a character with a meaning of its
// own.
func (p *blockParser) bare() Word {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		// '#' ends a word in ExaBGP's and BIRD's files; in keepalived's it
		// starts a comment only at the start of a word (a URL's fragment).
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '{' || c == '}' || c == '"' || c == 0 ||
			(c == ';' || c == '#') && p.sx.semicolons {
			break
		}
		p.pos++
	}
	if p.pos == start { // a lone character such as '\'' inside a word is taken as is
		p.pos++
	}
	return Word{Text: p.src[start:p.pos], Line: p.line}
}

// quoted reads a string in quote q; a backslash escapes the next character
// in double quotes.
func (p *blockParser) quoted(q byte) (Word, error) {
	start := p.line
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return Word{}, p.errf(start, "string not closed by the end of the file")
		}
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return Word{Text: b.String(), Quoted: true, Line: start}, nil
		case c == '\n' && !p.sx.semicolons:
			return Word{}, p.errf(start, "string not closed at the end of the line")
		case c == '\\' && q == '"' && p.pos+1 < len(p.src):
			p.pos++
			c = p.src[p.pos]
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
		case c == 0:
			return Word{}, p.errf(p.line, "NUL byte")
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
		}
		p.pos++
	}
}

// badUTF8Line returns the line of the first invalid UTF-8 sequence.
func (p *blockParser) badUTF8Line() int {
	line := 1
	for i := 0; i < len(p.src); {
		r, n := utf8.DecodeRuneInString(p.src[i:])
		if r == utf8.RuneError && n <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		i += n
	}
	return line
}
