package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that it returns either a
// config, whose checks keep the promises the health package relies on, or
// a *Error whose problems all print on one line.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			checkConfigChecks(t, cfg, data)
			return
		}
		if cfg != nil {
			t.Fatal("Parse returned a config and an error")
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error is a %T, want *Error", err)
		}
		if len(e.Problems) == 0 {
			t.Fatal("*Error without problems")
		}
		for i, p := range e.Problems {
			if strings.Contains(p.String(), "\n") {
				t.Fatalf("problem spans lines: %q", p.String())
			}
			if i > 0 && p.Line < e.Problems[i-1].Line {
				t.Fatalf("problems out of order: %v", e)
			}
		}
	})
}
