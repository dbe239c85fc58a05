package config

import (
	"os"
	"path/filepath"
	"runtime"
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
	walkIndex(idx.root, "", func(p string, at position) { got[p] = at.line })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scanLines mismatch (-want +got):\n%s", diff)
	}
}

// walkIndex calls fn with the path and position of every node under n:
// keys joined with ".", elements as "[i]".
func walkIndex(n *node, prefix string, fn func(string, position)) {
	for k, c := range n.keys {
		p := join(prefix, k)
		fn(p, c.at)
		walkIndex(c, p, fn)
	}
	for i, e := range n.elems {
		p := prefix + "[" + strconv.Itoa(i) + "]"
		fn(p, e.at)
		walkIndex(e, p, fn)
	}
}

// tomlPaths calls fn with the path of every key, table and array element in
// the decoded document m, and its node in the index (nil if missing).
func tomlPaths(m map[string]any, prefix string, n *node, fn func(string, *node)) {
	for k, v := range m {
		p := join(prefix, k)
		c := n.key(k)
		fn(p, c)
		tomlValuePaths(v, p, c, fn)
	}
}

func tomlValuePaths(v any, p string, n *node, fn func(string, *node)) {
	switch v := v.(type) {
	case map[string]any:
		tomlPaths(v, p, n, fn)
	case []map[string]any:
		for i, e := range v {
			ep := p + "[" + strconv.Itoa(i) + "]"
			fn(ep, n.elem(i))
			tomlPaths(e, ep, n.elem(i), fn)
		}
	case []any:
		for i, e := range v {
			ep := p + "[" + strconv.Itoa(i) + "]"
			fn(ep, n.elem(i))
			tomlValuePaths(e, ep, n.elem(i), fn)
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
		tomlPaths(m, "", idx.root, func(p string, n *node) {
			if n == nil {
				t.Fatalf("no line for %q", p)
			}
			if at := n.at; at.line < 1 || at.line > lines {
				t.Fatalf("line %d for %q, the document has %d lines", at.line, p, lines)
			}
		})
	})
}

// The index costs memory in proportion to the document, however long or deep
// its keys (it used to hold every element's full path: a long key with many
// elements, or a header of many parts, cost gigabytes).
func TestScanLinesLinear(t *testing.T) {
	long := strings.Repeat("k", 64<<10)
	srcs := map[string]string{
		"long key, many elements": long + " = [" + strings.Repeat("0,", 64<<10) + "]\n",
		"header of many parts":    "[" + strings.TrimSuffix(strings.Repeat("p.", 10000), ".") + "]\nx = 1\n",
		"long header, many keys":  "[" + long + "]\n" + strings.Repeat("x.y.z = [[1]]\n", 4096),
		"nested arrays":           "x = " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n",
	}
	for name, src := range srcs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		idx := scanLines([]byte(src))
		runtime.ReadMemStats(&after)
		if idx.root == nil {
			t.Fatal("no index")
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 200*uint64(len(src)) {
			t.Errorf("%s: indexing %d bytes allocated %d bytes", name, len(src), n)
		}
	}
}
