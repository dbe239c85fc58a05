package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEExamples checks that the README's examples, one per source,
// are what anycastd migrate prints: each golden case named <source>-readme
// has its input files and its want.toml in the README's fenced blocks,
// verbatim.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]bool{}
	for i, part := range strings.Split(string(readme), "```") {
		if i%2 == 1 { // inside a fence: drop the info string line
			_, body, _ := strings.Cut(part, "\n")
			blocks[body] = true
		}
	}
	for _, source := range Sources {
		dir := filepath.Join("testdata/golden", source+"-readme")
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil || len(files) == 0 {
			t.Errorf("%s: no golden case for the README's %s example", dir, source)
			continue
		}
		for _, f := range files {
			if b := filepath.Base(f); b == "args" || b == "want.issues" {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !blocks[string(b)] {
				t.Errorf("README.md has no fenced block equal to %s", f)
			}
		}
	}
}
