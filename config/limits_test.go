package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// parseSoon runs Parse and fails the test unless it returns within a
// generous deadline.
func parseSoon(t *testing.T, src string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Parse([]byte(src))
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("Parse has not returned after 60s")
		return nil
	}
}

const limitsHead = "[bgp]\nasn = 65001\nrouter_id = \"198.18.1.2\"\n"

func TestLimits(t *testing.T) {
	parts := func(n int) string { return strings.TrimSuffix(strings.Repeat("p.", n), ".") }
	tests := []struct {
		name, src, want string
	}{
		{"nested arrays", limitsHead + "x = " + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + "\n",
			"arrays and inline tables are nested more than 16 deep (line 4)"},
		{"nested inline tables", limitsHead + "x = " + strings.Repeat("{a = ", 5000) + "1" + strings.Repeat("}", 5000) + "\n",
			"key has more than 16 parts (counting those of its table header and inline tables) (line 4)"},
		{"nested inline tables in arrays", limitsHead + "x = " + strings.Repeat("[{a = ", 5000) + "1" + strings.Repeat("}]", 5000) + "\n",
			"arrays and inline tables are nested more than 16 deep (line 4)"},
		{"arrays over lines", limitsHead + "x = [\n" + strings.Repeat("[\n", 16) + "]]\n",
			"arrays and inline tables are nested more than 16 deep (line 20)"},
		{"dotted header", limitsHead + "\n[" + parts(10000) + "]\n", "key has more than 16 parts (counting those of its table header and inline tables) (line 5)"},
		{"dotted array header", limitsHead + "[[" + parts(17) + "]]\n", "key has more than 16 parts (counting those of its table header and inline tables) (line 4)"},
		{"dotted key", limitsHead + parts(17) + " = 1\n", "key has more than 16 parts (counting those of its table header and inline tables) (line 4)"},
		{"dotted key under a header", "[" + parts(10) + "]\n" + parts(7) + " = 1\n", "key has more than 16 parts (counting those of its table header and inline tables) (line 2)"},
		{"long key", limitsHead + strings.Repeat("k", 257) + " = 1\n", "key is longer than 256 bytes (counting its table header and inline tables) (line 4)"},
		{"long quoted key", limitsHead + `"` + strings.Repeat("k", 255) + `" = 1` + "\n", "key is longer than 256 bytes (counting its table header and inline tables) (line 4)"},
		{"long header and key", "[" + strings.Repeat("h", 200) + "]\n" + strings.Repeat("k", 57) + " = 1\n", "key is longer than 256 bytes (counting its table header and inline tables) (line 2)"},
		{"inline table key", limitsHead + "x = { a = 1,\n " + parts(16) + " = 2 }\n", "key has more than 16 parts (counting those of its table header and inline tables) (line 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseSoon(t, tt.src)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse = %v\nwant %q", err, tt.want)
			}
		})
	}
}

// Brackets, dots and quotes inside strings and comments count for nothing,
// and a document at the limits passes them (it fails later, on its keys).
func TestLimitsNotFooled(t *testing.T) {
	deep := strings.Repeat("[", 16) + strings.Repeat("]", 16)
	keyParts := strings.TrimSuffix(strings.Repeat("p.", 16), ".")
	srcs := []string{
		"x = \"" + strings.Repeat("[{", 100) + "\"\n",
		"x = '" + strings.Repeat("[", 100) + "'\n",
		"x = \"\"\"\n" + strings.Repeat("[\n", 100) + "\"\"\"\n",
		"x = '''\n" + strings.Repeat("[a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q]\n", 3) + "'''\n",
		"# " + strings.Repeat("[", 100) + "\n",
		"x = [ # " + strings.Repeat("[", 100) + "\n]\n",
		"x = \"a\\\"" + strings.Repeat("[", 100) + "\"\n",
		"x = " + deep + "\n",
		keyParts + " = 1\n",
		"[" + keyParts + "]\n",
		`"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r" = 1` + "\n",
		"x = 1.5e3\ny = 1979-05-27T07:32:00.999Z\n",
		"x = [" + strings.Repeat("{a = 1}, ", 1000) + "]\n",
	}
	for _, src := range srcs {
		if err := checkLimits([]byte(src)); err != nil {
			t.Errorf("checkLimits(%.60q) = %v", src, err)
		}
	}
}

// worstNested builds a document of about size bytes with as much nesting as
// the limits allow: each line a key whose name has the most parts, the value
// inline tables nested as deep as allowed, every level holding arrays nested
// to the limit.
func worstNested(size int) string {
	var b strings.Builder
	for n := 0; b.Len() < size-len(limitsHead); n++ {
		// Key parts: 1 for the key + 15 for the inline tables.
		fmt.Fprintf(&b, "k%d = ", n)
		for range 7 {
			b.WriteString("{ a.b = [")
		}
		// 1 + 2*7 = 15 parts so far, nesting 14: one more part and two more levels.
		for j := 0; j < 200; j++ {
			fmt.Fprintf(&b, "{ c%d = [%d] }, ", j, j)
		}
		for range 7 {
			b.WriteString("] }")
		}
		b.WriteString("\n")
	}
	b.WriteString(limitsHead)
	return b.String()
}

func TestWorstNestedWithinLimits(t *testing.T) {
	src := worstNested(64 << 10)
	if err := checkLimits([]byte(src)); err != nil {
		t.Fatalf("the worst case the limits allow is refused: %v", err)
	}
	err := parseSoon(t, src)
	if err == nil || !strings.Contains(err.Error(), `unknown key "k0"`) {
		t.Errorf("Parse = %.200v, want unknown keys", err)
	}
}

// BenchmarkParseWorstNested parses a document of MaxFileSize (less a few
// bytes) nested as much as the limits allow.
func BenchmarkParseWorstNested(b *testing.B) {
	src := []byte(worstNested(MaxFileSize - 4096))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err == nil {
			b.Fatal("no error")
		}
	}
}

// BenchmarkParseFlat parses a document of MaxFileSize (less a few bytes) of
// short keys, for comparison.
func BenchmarkParseFlat(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(limitsHead)
	for n := 0; sb.Len() < MaxFileSize-4096; n++ {
		fmt.Fprintf(&sb, "k%x = 1\n", n)
	}
	src := []byte(sb.String())
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err == nil {
			b.Fatal("no error")
		}
	}
}
