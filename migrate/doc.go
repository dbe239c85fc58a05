package migrate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duration is a field value written as a Go duration string ("9s",
// "500ms").
type Duration time.Duration

// Field is one key of a table, with its value and an optional comment
// written after it on the same line.
type Field struct {
	Key string
	// Value is a string, an int, an int64, a uint32, a bool, a Duration, a
	// []string or a map[string]string.
	Value   any
	Comment string
}

// Table is one TOML table of the output, in the order it is written.
type Table struct {
	// Name is the table's name: "bgp", "bgp.peer", "node", "interface",
	// "check", "vip", "vip.degraded".
	Name string
	// Array makes the header an array-of-tables header ([[name]]).
	Array bool
	// Above holds comment lines written above the header, without "# ".
	Above  []string
	Fields []Field
	// Children are sub-tables written right after this one
	// ([vip.degraded] after its [[vip]]).
	Children []*Table
	// Commented writes the table (and its children) as comments: a table
	// that cannot be used as it is (a VIP without a check, or with a family
	// no peer carries), kept for the user to finish by hand.
	Commented bool
	// Warnings are what the user must know about this table although it is
	// valid (a timeout shorter than the source's); anycastd migrate prints
	// them on stderr.
	Warnings []string
}

// Set sets key to v with the comment c, replacing the key's value and
// comment when it is already set, else appending it.
func (t *Table) Set(key string, v any, c string) {
	for i := range t.Fields {
		if t.Fields[i].Key == key {
			t.Fields[i].Value, t.Fields[i].Comment = v, c
			return
		}
	}
	t.Fields = append(t.Fields, Field{Key: key, Value: v, Comment: c})
}

// Get returns key's value, if set.
func (t *Table) Get(key string) (any, bool) {
	for _, f := range t.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// Del removes key.
func (t *Table) Del(key string) {
	t.Fields = slices.DeleteFunc(t.Fields, func(f Field) bool { return f.Key == key })
}

// Note adds c to the comment of key (which must be set), after what is
// there.
func (t *Table) Note(key, c string) {
	for i := range t.Fields {
		if t.Fields[i].Key == key {
			if t.Fields[i].Comment == "" {
				t.Fields[i].Comment = c
			} else {
				t.Fields[i].Comment += "; " + c
			}
			return
		}
	}
}

// Child returns the sub-table name (e.g. "vip.degraded"), created empty
// when missing.
func (t *Table) Child(name string) *Table {
	for _, c := range t.Children {
		if c.Name == name {
			return c
		}
	}
	c := &Table{Name: name}
	t.Children = append(t.Children, c)
	return c
}

// Issue is something in a source file that could not be converted at all.
// Issues are written as comments at the end of the output, and make
// anycastd migrate exit non-zero unless --partial is given.
type Issue struct {
	File string
	Line int // 1-based; 0 when the issue is not tied to a line
	What string
}

// String formats the issue as "file:line: what".
func (i Issue) String() string {
	switch {
	case i.File == "":
		return i.What
	case i.Line > 0:
		return fmt.Sprintf("%s:%d: %s", i.File, i.Line, i.What)
	default:
		return i.File + ": " + i.What
	}
}

// Doc is the anycastd configuration being built. Sources fill it; Encode
// writes it.
type Doc struct {
	// Header holds comment lines written first, without "# ".
	Header    []string
	BGP       *Table
	Peers     []*Table
	Node      *Table
	Interface *Table
	Log       *Table
	Checks    []*Table
	VIPs      []*Table
	// Notes holds comment lines written at the end, before the issues:
	// what the source said that has no meaning for anycastd, and why.
	Notes  []string
	Issues []Issue

	names map[string]bool // check and VIP names taken, per kind ("check:x")
}

// NewDoc returns an empty Doc with its [bgp], [node], [interface] and [log]
// tables (each written only when it has fields).
func NewDoc() *Doc {
	return &Doc{
		BGP:       &Table{Name: "bgp"},
		Node:      &Table{Name: "node"},
		Interface: &Table{Name: "interface"},
		Log:       &Table{Name: "log"},
		names:     map[string]bool{},
	}
}

// Peer returns the [[bgp.peer]] with address addr, or nil.
func (d *Doc) Peer(addr string) *Table {
	for _, p := range d.Peers {
		if v, _ := p.Get("address"); v == addr {
			return p
		}
	}
	return nil
}

// AddPeer appends a [[bgp.peer]] with address addr and returns it.
func (d *Doc) AddPeer(addr string, above ...string) *Table {
	p := &Table{Name: "bgp.peer", Array: true, Above: above}
	p.Set("address", addr, "")
	d.Peers = append(d.Peers, p)
	return p
}

// AddCheck appends a [[check]] named after base (made a valid, unused
// check name) and returns it.
func (d *Doc) AddCheck(base string, above ...string) *Table {
	c := &Table{Name: "check", Array: true, Above: above}
	c.Set("name", d.unique("check", base), "")
	d.Checks = append(d.Checks, c)
	return c
}

// AddVIP appends a [[vip]] named after base (made a valid, unused VIP
// name) and returns it.
func (d *Doc) AddVIP(base string, above ...string) *Table {
	v := &Table{Name: "vip", Array: true, Above: above}
	v.Set("name", d.unique("vip", base), "")
	d.VIPs = append(d.VIPs, v)
	return v
}

// Name returns t's name field.
func Name(t *Table) string {
	v, _ := t.Get("name")
	s, _ := v.(string)
	return s
}

// Fail records that what, at file:line, could not be converted.
func (d *Doc) Fail(file string, line int, format string, args ...any) {
	d.Issues = append(d.Issues, Issue{File: file, Line: line, What: fmt.Sprintf(format, args...)})
}

// Notef adds a note line to the end of the output.
func (d *Doc) Notef(format string, args ...any) {
	d.Notes = append(d.Notes, fmt.Sprintf(format, args...))
}

// unique makes base a valid check or VIP name (letters, digits, '_', '.',
// '-'; other runes become '-') not used yet by kind, adding "-2", "-3", …
// when taken.
func (d *Doc) unique(kind, base string) string {
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = kind
	}
	if len(name) > 200 {
		name = name[:200]
	}
	n := name
	for i := 2; d.names[kind+":"+n]; i++ {
		n = name + "-" + strconv.Itoa(i)
	}
	d.names[kind+":"+n] = true
	return n
}

// commentColumn is where a field's comment starts when the field is
// shorter.
const commentColumn = 37

// Encode writes d as TOML.
func (d *Doc) Encode() []byte {
	var b strings.Builder
	comments(&b, d.Header)
	writeTable(&b, d.BGP)
	for _, t := range d.Peers {
		writeTable(&b, t)
	}
	for _, t := range []*Table{d.Node, d.Interface, d.Log} {
		writeTable(&b, t)
	}
	for _, t := range d.Checks {
		writeTable(&b, t)
	}
	for _, t := range d.VIPs {
		writeTable(&b, t)
	}
	if len(d.Notes) > 0 {
		b.WriteString("\n")
		comments(&b, d.Notes)
	}
	if len(d.Issues) > 0 {
		b.WriteString("\n# NOT CONVERTED:\n")
		for _, i := range d.Issues {
			comments(&b, []string{"  " + i.String()})
		}
	}
	return []byte(b.String())
}

// comments writes each line as a TOML comment.
func comments(b *strings.Builder, lines []string) {
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			if part == "" {
				b.WriteString("#\n")
				continue
			}
			b.WriteString("# ")
			b.WriteString(part)
			b.WriteString("\n")
		}
	}
}

// writeTable writes t and its children, unless t and its children have no
// fields and t nothing above it. A commented table is written with every
// line a comment.
func writeTable(b *strings.Builder, t *Table) {
	if len(t.Fields) == 0 && len(t.Above) == 0 && !t.Array && empty(t.Children) {
		return
	}
	b.WriteString("\n")
	comments(b, t.Above)
	var out strings.Builder
	if t.Array {
		fmt.Fprintf(&out, "[[%s]]\n", t.Name)
	} else {
		fmt.Fprintf(&out, "[%s]\n", t.Name)
	}
	for _, f := range t.Fields {
		line := f.Key + " = " + value(f.Value)
		if f.Comment != "" {
			pad := commentColumn - len(line)
			if pad < 1 {
				pad = 1
			}
			line += strings.Repeat(" ", pad) + "# " + strings.ReplaceAll(f.Comment, "\n", " ")
		}
		out.WriteString(line)
		out.WriteString("\n")
	}
	for _, c := range t.Children {
		writeTable(&out, c)
	}
	if !t.Commented {
		b.WriteString(out.String())
		return
	}
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		switch l {
		case "":
		case "\n":
			b.WriteString("#\n")
		default:
			b.WriteString("# " + l)
		}
	}
}

func empty(ts []*Table) bool {
	for _, t := range ts {
		if len(t.Fields) > 0 || len(t.Above) > 0 || !empty(t.Children) {
			return false
		}
	}
	return true
}

// value formats v as a TOML value.
func value(v any) string {
	switch x := v.(type) {
	case string:
		return quote(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case bool:
		return strconv.FormatBool(x)
	case Duration:
		// Whole seconds as seconds ("120s", not "2m0s"), as the sources
		// and anycastd's README write them.
		if d := time.Duration(x); d%time.Second == 0 {
			return quote(strconv.FormatInt(int64(d/time.Second), 10) + "s")
		}
		return quote(time.Duration(x).String())
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = quote(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = quote(k) + " = " + quote(x[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	default:
		panic(fmt.Sprintf("migrate: value of type %T", v))
	}
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
