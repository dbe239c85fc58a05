package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

func TestScanLines(t *testing.T) {
	src := `# comment [not = "a table"]
top = "x # not a comment" # comment
"quoted.key" = 'lit'
multi = """
a = "not a key"
[not.a.table]
"""
arr = [
  1,  # one
  [2, 3],
  { k = "v", "q" = 1 },
]

[a]
b.c = 1979-05-27 07:32:00Z
lit = '''
x'''''

[[t]]
k = 1
[[t.sub]]
x = 1

[[t]]
k = {
  y = 2 }
[[t.sub]]
x = 2
[t.sub.deep]
z = 3
`
	want := map[string]int{
		"top":                2,
		"quoted.key":         3,
		"multi":              4,
		"arr":                8,
		"arr[0]":             9,
		"arr[1]":             10,
		"arr[1][0]":          10,
		"arr[1][1]":          10,
		"arr[2]":             11,
		"arr[2].k":           11,
		"arr[2].q":           11,
		"a":                  14,
		"a.b":                15,
		"a.b.c":              15,
		"a.lit":              16,
		"t":                  19,
		"t[0]":               19,
		"t[0].k":             20,
		"t[0].sub":           21,
		"t[0].sub[0]":        21,
		"t[0].sub[0].x":      22,
		"t[1]":               24,
		"t[1].k":             25,
		"t[1].k.y":           26,
		"t[1].sub":           27,
		"t[1].sub[0]":        27,
		"t[1].sub[0].x":      28,
		"t[1].sub[0].deep":   29,
		"t[1].sub[0].deep.z": 30,
	}
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Fatalf("test input is not valid TOML: %v", err)
	}
	idx := scanLines([]byte(src))
	got := map[string]int{}
	for k, at := range idx.lines {
		got[k] = at.line
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scanLines mismatch (-want +got):\n%s", diff)
	}
}

// tomlPaths calls fn with the lineIndex path of every key, table and array
// element in the decoded document m.
func tomlPaths(m map[string]any, prefix string, fn func(string)) {
	for k, v := range m {
		p := join(prefix, k)
		fn(p)
		tomlValuePaths(v, p, fn)
	}
}

func tomlValuePaths(v any, p string, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		tomlPaths(v, p, fn)
	case []map[string]any:
		for i, e := range v {
			ep := p + "[" + strconv.Itoa(i) + "]"
			fn(ep)
			tomlPaths(e, ep, fn)
		}
	case []any:
		for i, e := range v {
			ep := p + "[" + strconv.Itoa(i) + "]"
			fn(ep)
			tomlValuePaths(e, ep, fn)
		}
	}
}

// FuzzScanLines checks that, for any document the TOML parser accepts, the
// scanner finds every key, table and array element on an existing line.
func FuzzScanLines(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a = [{b = [{c = 1}]}]\n[x.'y.z'.\"w\\u0041\"]\nk.'l'.m = \"\"\"\n\"\"\"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m map[string]any
		if _, err := toml.Decode(string(data), &m); err != nil {
			return
		}
		idx := scanLines(data)
		lines := strings.Count(string(data), "\n") + 1
		tomlPaths(m, "", func(p string) {
			at, ok := idx.lines[p]
			if !ok {
				t.Fatalf("no line for %q; index: %v", p, idx.lines)
			}
			if at.line < 1 || at.line > lines {
				t.Fatalf("line %d for %q, the document has %d lines", at.line, p, lines)
			}
		})
	})
}
