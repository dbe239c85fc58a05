package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The README's configuration reference ("## Configuration reference", up to
// the next "## " heading) must document every key this package accepts, in
// the part of the reference that belongs to the key's table:
//
//   - a "### " heading names the tables its part covers, as `[bgp]` or
//     `[[bgp.peer]]` (several: `[interface]`, `[api]`, …); a "#### "
//     heading keeps them; a paragraph that starts with a table name
//     (`[vip.degraded]`, the attributes …) starts that table's part;
//   - a markdown table whose first column is headed "key" documents the
//     keys written in its first cells, as `key`, or `table.key` where one
//     part covers several tables;
//   - a table with a "keys" column (the per-type table of [[check]])
//     documents, for the check types named in a row's first cell, the keys
//     in that row's keys cell (`key`, `key = …`).
//
// The schema is the toml tags of rawFile, walked recursively (raw.go: "the
// tags are the schema"), and which types a [[check]] key applies to is
// checkKeyTypes.

// readmeRef is what the README's configuration reference documents.
type readmeRef struct {
	keys     map[string]map[string]int  // table → key → README line, from the "key" tables
	typeKeys map[string]map[string]bool // check type → keys, from the "keys" column
	stray    []string                   // keys documented that no table of their part accepts
	sections map[string]bool            // tables some part covers
}

var (
	tableNameRE = regexp.MustCompile("`\\[\\[?([a-z_.]+)\\]\\]?`")
	spanRE      = regexp.MustCompile("`([^`]+)`")
)

// schemaKeys walks a raw* struct type: a pointer field is a table, a slice
// of pointers an array of tables, any other tagged field a key of table.
func schemaKeys(t reflect.Type, table string, out map[string][]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		sub := tag
		if table != "" {
			sub = table + "." + tag
		}
		switch f.Type.Kind() {
		case reflect.Pointer:
			schemaKeys(f.Type.Elem(), sub, out)
		case reflect.Slice:
			schemaKeys(f.Type.Elem().Elem(), sub, out)
		default:
			out[table] = append(out[table], tag)
		}
	}
}

func splitRow(line string) []string {
	cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

func spans(cell string) []string {
	var out []string
	for _, m := range spanRE.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// parseReference reads the configuration reference of the README at path.
func parseReference(t *testing.T, path string, schema map[string][]string) readmeRef {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := readmeRef{keys: map[string]map[string]int{}, typeKeys: map[string]map[string]bool{}, sections: map[string]bool{}}
	var (
		in, fence, inTable bool
		found              bool
		current            []string
		header             []string
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "## Configuration reference":
			in, found = true, true
			continue
		case !in:
			continue
		case strings.HasPrefix(line, "## "):
			in = false
			continue
		case strings.HasPrefix(line, "```"):
			fence = !fence
			continue
		case fence:
			continue
		}
		names := func() []string {
			var out []string
			for _, m := range tableNameRE.FindAllStringSubmatch(line, -1) {
				out = append(out, m[1])
			}
			return out
		}
		switch {
		case strings.HasPrefix(line, "### "):
			current = names()
		case strings.HasPrefix(line, "#### "):
		case strings.HasPrefix(line, "`["):
			current = names()
		}
		for _, c := range current {
			ref.sections[c] = true
		}
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := splitRow(line)
		if !inTable {
			inTable, header = true, cells
			continue
		}
		if strings.Trim(line, "|-: ") == "" {
			continue // the separator row
		}
		switch {
		case header[0] == "key":
			for _, s := range spans(cells[0]) {
				ok := false
				for _, tb := range current {
					key, qualified := strings.CutPrefix(s, tb+".")
					if !qualified && len(current) > 1 {
						continue
					}
					if !slices.Contains(schema[tb], key) {
						continue
					}
					if ref.keys[tb] == nil {
						ref.keys[tb] = map[string]int{}
					}
					ref.keys[tb][key], ok = n, true
				}
				if !ok {
					ref.stray = append(ref.stray, "`"+s+"` (README.md line "+strconv.Itoa(n)+")")
				}
			}
		case slices.Contains(header, "keys") && slices.Contains(current, "check"):
			col := slices.Index(header, "keys")
			if col >= len(cells) {
				continue
			}
			for _, typ := range spans(cells[0]) {
				if ref.typeKeys[typ] == nil {
					ref.typeKeys[typ] = map[string]bool{}
				}
				for _, s := range spans(cells[col]) {
					key, _, _ := strings.Cut(s, " ")
					key, _, _ = strings.Cut(key, "=")
					ref.typeKeys[typ][key] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no \"## Configuration reference\" section", path)
	}
	return ref
}

// TestReadmeKeys fails naming each key of the schema that the README's
// configuration reference does not document where this file's top comment
// says, and each key it documents that its table does not accept.
func TestReadmeKeys(t *testing.T) {
	schema := map[string][]string{}
	schemaKeys(reflect.TypeFor[rawFile](), "", schema)
	if len(schema["vip.degraded"]) == 0 || len(schema["bgp.peer"]) == 0 {
		t.Fatalf("walking rawFile found no [vip.degraded] or [[bgp.peer]] keys: %v", schema)
	}
	ref := parseReference(t, "../README.md", schema)

	tables := make([]string, 0, len(schema))
	for tb := range schema {
		tables = append(tables, tb)
	}
	slices.Sort(tables)
	for _, tb := range tables {
		if !ref.sections[tb] {
			t.Errorf("README.md's configuration reference has no part for [%s] (a \"### \" heading or a paragraph starting with `[%s]`)", tb, tb)
			continue
		}
		for _, key := range schema[tb] {
			if tb == "check" {
				if types, specific := checkKeyTypes[key]; specific {
					for _, typ := range types {
						if !ref.typeKeys[string(typ)][key] {
							t.Errorf("README.md's configuration reference does not list [[check]] key %q for type %q (in the per-type table)", key, typ)
						}
					}
					continue
				}
			}
			if _, ok := ref.keys[tb][key]; !ok {
				t.Errorf("README.md's configuration reference does not document %s.%s (a row of the [%s] key table)", tb, key, tb)
			}
		}
	}
	for _, s := range ref.stray {
		t.Errorf("README.md's configuration reference documents %s, which its table does not accept", s)
	}
}
