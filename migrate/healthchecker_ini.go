package migrate

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/ini.v1"
)

// This file reads anycast-healthchecker's INI files the way Python's
// configparser.ConfigParser() reads them (see healthchecker.go).

// isINI reports whether data reads as an INI file: its first line that is
// not blank or a comment opens a section, or looks like "key = value" (a
// malformed INI file, which scanINI then reports). Anything else is BIRD's.
func isINI(data []byte) bool {
	for _, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(strings.TrimPrefix(l, "\ufeff"))
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			return true
		}
		i := strings.IndexAny(t, "=:")
		return i > 0 && !strings.ContainsAny(strings.TrimSpace(t[:i]), " \t{};\"")
	}
	return false
}

// iniSect is one section header of one file, with its keys' lines.
type iniSect struct {
	name  string
	line  int
	keys  map[string]int    // lower-cased key → line
	first map[string]string // lower-cased key → the value's first line
}

// sorted returns the section's keys in file order.
func (s *iniSect) sorted() []string {
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return s.keys[a] - s.keys[b] })
	return keys
}

// iniDoc is one INI file as configparser reads it.
type iniDoc struct {
	file  string
	sects []*iniSect // in file order; [DEFAULT] too
	index map[string]*iniSect
	norm  []byte // the text given to ini.v1 (see scanINI)
}

// section returns the file's section name, or nil.
func (f *iniDoc) section(name string) *iniSect {
	return f.index[name]
}

// scanINI reads data the way configparser does, returning each section's
// and key's line, or a *SyntaxError where configparser raises one: a key
// before any section header, a line that is neither a header nor "key =
// value" / "key: value", an empty key, a section or a key given twice in the
// file; also a NUL byte and invalid UTF-8.
//
// norm is data normalised for ini.v1, whose rules differ: section and key
// lines lose their indentation (ini.v1 would take an indented key for a
// continuation), and blank and comment lines are dropped (a blank line would
// end ini.v1's multi-line value where configparser's goes on).
func scanINI(file string, data []byte) (*iniDoc, error) {
	if len(data) > maxSourceSize {
		return nil, &SyntaxError{File: file, Msg: fmt.Sprintf("larger than %d MiB", maxSourceSize>>20)}
	}
	doc := &iniDoc{file: file, index: map[string]*iniSect{}}
	var (
		cur       *iniSect
		key       string
		keyIndent int
		norm      bytes.Buffer
	)
	lines := strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n")
	for i, l := range lines {
		n := i + 1
		errf := func(format string, args ...any) error {
			return &SyntaxError{File: file, Line: n, Msg: fmt.Sprintf(format, args...)}
		}
		if strings.IndexByte(l, 0) >= 0 {
			return nil, errf("NUL byte")
		}
		if !utf8.ValidString(l) {
			return nil, errf("not valid UTF-8")
		}
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " \t\r\f\v"))
		if cur != nil && key != "" && indent > keyIndent {
			norm.WriteString(" " + t + "\n") // a continuation line
			continue
		}
		keyIndent = indent
		if t[0] == '[' && strings.LastIndexByte(t, ']') >= 2 {
			name := t[1:strings.LastIndexByte(t, ']')]
			if s := doc.section(name); s != nil && name != ini.DefaultSection {
				return nil, errf("section [%s] is already at line %d (configparser refuses a section twice in one file)", name, s.line)
			}
			cur = doc.section(name)
			if cur == nil {
				cur = &iniSect{name: name, line: n, keys: map[string]int{}, first: map[string]string{}}
				doc.sects = append(doc.sects, cur)
				doc.index[name] = cur
			}
			key = ""
			norm.WriteString("[" + name + "]\n")
			continue
		}
		if cur == nil {
			return nil, errf("%q before any [section] header", clip(t))
		}
		d := strings.IndexAny(t, "=:")
		if d < 0 {
			return nil, errf("%q is not \"key = value\" nor a [section] header", clip(t))
		}
		k := strings.ToLower(strings.TrimSpace(t[:d]))
		if k == "" {
			return nil, errf("a value without a key")
		}
		if at, ok := cur.keys[k]; ok {
			return nil, errf("%s is already set at line %d in [%s] (configparser refuses a key twice in one section)", k, at, cur.name)
		}
		cur.keys[k] = n
		cur.first[k] = strings.TrimSpace(t[d+1:])
		key = k
		// ini.v1 reads the key up to its first '=' or ':' too.
		norm.WriteString(k + " =" + strings.TrimRight(t[d+1:], " \t") + "\n")
	}
	doc.norm = norm.Bytes()
	return doc, nil
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// hcConf is the merged configuration: the files in the order
// anycast-healthchecker reads them (the main file, then the service files)
// and ini.v1's reading of them.
type hcConf struct {
	docs []*iniDoc
	f    *ini.File
	// steps counts the references one get has expanded, against a value
	// that refers to others many times over (exponential expansion).
	steps int
}

// maxExpansions bounds the references one value expands to, and
// maxExpanded its length.
const (
	maxExpansions = 10000
	maxExpanded   = 1 << 20
)

// loadINI scans files and loads them with ini.v1, the file with [daemon]
// first.
func loadINI(files []Input) (*hcConf, error) {
	c := &hcConf{}
	for _, f := range files {
		doc, err := scanINI(f.Name, f.Data)
		if err != nil {
			return nil, err
		}
		c.docs = append(c.docs, doc)
	}
	slices.SortStableFunc(c.docs, func(a, b *iniDoc) int {
		ad, bd := a.section("daemon") != nil, b.section("daemon") != nil
		switch {
		case ad && !bd:
			return -1
		case bd && !ad:
			return 1
		}
		return 0
	})
	srcs := make([]any, len(c.docs))
	for i, d := range c.docs {
		srcs[i] = d.norm
	}
	opts := ini.LoadOptions{
		InsensitiveKeys:            true, // configparser's optionxform lower-cases keys; sections keep their case
		IgnoreInlineComment:        true, // no inline_comment_prefixes
		IgnoreContinuation:         true, // a trailing '\' is part of the value
		PreserveSurroundedQuote:    true, // quotes are part of the value
		AllowPythonMultilineValues: true,
		KeyValueDelimiters:         "=:",
		ChildSectionDelimiter:      "\n", // never in a name: [foo.bar.com] inherits from no [foo.bar]
	}
	f, err := ini.LoadSources(opts, srcs[0], srcs[1:]...)
	if err != nil {
		// scanINI accepted the structure; what ini.v1 still refuses is a
		// value opening a ` or """ quote it does not find closed.
		for _, d := range c.docs {
			for _, s := range d.sects {
				for _, k := range s.sorted() {
					line := s.keys[k]
					if v := s.first[k]; strings.HasPrefix(v, "`") || strings.HasPrefix(v, `"""`) || strings.HasPrefix(k, "`") || strings.HasPrefix(k, `"`) {
						return nil, &SyntaxError{File: d.file, Line: line, Msg: "a key or value starting with a quote is not read alike by configparser and gopkg.in/ini.v1: quote it otherwise"}
					}
				}
			}
		}
		return nil, &SyntaxError{File: c.docs[0].file, Line: 1, Msg: err.Error()}
	}
	c.f = f
	return c, nil
}

// services returns the service sections in the order configparser lists
// them: every section but [daemon] and [DEFAULT], by first appearance.
func (c *hcConf) services() []string {
	var names []string
	seen := map[string]bool{"daemon": true, ini.DefaultSection: true}
	for _, d := range c.docs {
		for _, s := range d.sects {
			if !seen[s.name] {
				seen[s.name] = true
				names = append(names, s.name)
			}
		}
	}
	return names
}

// origin tells where a section's key comes from: the file and line, and
// how it was given (hcOwn, hcDefault: from a [DEFAULT] section, hcBuiltin:
// anycast-healthchecker's default, hcUnset).
type origin struct {
	file string
	line int
	how  int
}

const (
	hcUnset = iota
	hcOwn
	hcDefault
	hcBuiltin
)

// where returns key's origin in section sect: the last file setting it in
// the section, else the last file setting it in [DEFAULT].
func (c *hcConf) where(sect, key string) origin {
	for _, name := range []string{sect, ini.DefaultSection} {
		for i := len(c.docs) - 1; i >= 0; i-- {
			if s := c.docs[i].section(name); s != nil {
				if line, ok := s.keys[key]; ok {
					how := hcOwn
					if name != sect {
						how = hcDefault
					}
					return origin{c.docs[i].file, line, how}
				}
			}
		}
	}
	if _, ok := hcDefaults[key]; ok {
		return origin{how: hcBuiltin}
	}
	if _, ok := hcDaemonDefaults[key]; ok && sect == "daemon" {
		return origin{how: hcBuiltin}
	}
	return origin{}
}

// sectionLine returns the file and line of section sect's first header.
func (c *hcConf) sectionLine(sect string) (string, int) {
	for _, d := range c.docs {
		if s := d.section(sect); s != nil {
			return d.file, s.line
		}
	}
	return "", 0
}

// raw returns key's value in sect before interpolation: the section's own,
// [DEFAULT]'s, or the built-in default.
func (c *hcConf) raw(sect, key string) (string, bool) {
	for _, name := range []string{sect, ini.DefaultSection} {
		s, err := c.f.GetSection(name)
		if err != nil || !slices.Contains(s.KeyStrings(), key) {
			continue
		}
		// A multi-line value keeps configparser's shape: its lines stripped,
		// joined by "\n".
		parts := strings.Split(s.Key(key).Value(), "\n")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return strings.TrimSpace(strings.Join(parts, "\n")), true
	}
	if v, ok := hcDefaults[key]; ok {
		return v, true
	}
	if v, ok := hcDaemonDefaults[key]; ok && sect == "daemon" {
		return v, true
	}
	return "", false
}

// get returns key's value in sect after configparser's BasicInterpolation
// ("%(name)s" is name's value in the same section, "%%" is '%'), or a
// *SyntaxError at the key's line where configparser raises one.
func (c *hcConf) get(sect, key string) (string, bool, error) {
	v, ok := c.raw(sect, key)
	if !ok {
		return "", false, nil
	}
	c.steps = 0
	out, err := c.interpolate(sect, v, 1)
	if err != nil {
		o := c.where(sect, key)
		return "", true, &SyntaxError{File: o.file, Line: max(o.line, 1), Msg: fmt.Sprintf("%s: %v", key, err)}
	}
	return out, true, nil
}

// maxInterpolation is configparser's MAX_INTERPOLATION_DEPTH.
const maxInterpolation = 10

func (c *hcConf) interpolate(sect, v string, depth int) (string, error) {
	if depth > maxInterpolation {
		return "", fmt.Errorf("interpolation nested more than %d deep", maxInterpolation)
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '%')
		if i < 0 {
			b.WriteString(v)
			return b.String(), nil
		}
		b.WriteString(v[:i])
		v = v[i:]
		switch {
		case strings.HasPrefix(v, "%%"):
			b.WriteByte('%')
			v = v[2:]
		case strings.HasPrefix(v, "%("):
			end := strings.Index(v, ")s")
			if end < 0 {
				return "", fmt.Errorf("bad interpolation %q", clip(v))
			}
			if c.steps++; c.steps > maxExpansions || b.Len() > maxExpanded {
				return "", fmt.Errorf("interpolation expands to more than %d references or %d bytes", maxExpansions, maxExpanded)
			}
			name := strings.ToLower(v[2:end])
			ref, ok := c.raw(sect, name)
			if !ok {
				return "", fmt.Errorf("%%(%s)s names no key of [%s]", name, sect)
			}
			if strings.Contains(ref, "%") {
				var err error
				if ref, err = c.interpolate(sect, ref, depth+1); err != nil {
					return "", err
				}
			}
			if b.WriteString(ref); b.Len() > maxExpanded {
				return "", fmt.Errorf("interpolation expands to more than %d bytes", maxExpanded)
			}
			v = v[end+2:]
		default:
			return "", fmt.Errorf("'%%' must be followed by '%%' or '(' (configparser's interpolation; write %%%% for a %%)")
		}
	}
}

// pyBool parses a configparser boolean.
func pyBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	return false, false
}
