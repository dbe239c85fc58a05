package migrate

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anycastd/anycastd/config"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/golden/*/want.toml, want.issues)")

// TestGolden converts each case under testdata/golden and compares the
// output with want.toml, byte for byte, and the issues with want.issues
// (one per line; the file is absent when there are none). A case's "args"
// file names the source, then flags (--asn, --router-id, --peer,
// --peer-asn) and input files, relative to the case's directory. Unless a
// case has issues, its output must pass config.Parse: what anycastd
// -check-config accepts.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			source, files, o := goldenArgs(t, dir)
			res, err := Convert(source, files, o)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			issues := ""
			for _, l := range issueLines(res) {
				issues += l + "\n"
			}
			compareGolden(t, filepath.Join(dir, "want.toml"), string(res.TOML))
			compareGolden(t, filepath.Join(dir, "want.issues"), issues)
			if len(res.Issues) == 0 {
				if res.Invalid != nil {
					t.Errorf("the output does not pass config.Parse:\n%v", res.Invalid)
				}
				if _, err := config.Parse(res.TOML); err != nil {
					t.Errorf("config.Parse: %v", err)
				}
			}
		})
	}
}

// goldenArgs reads dir/args.
func goldenArgs(t *testing.T, dir string) (string, []Input, Options) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(string(b))
	if len(words) < 2 {
		t.Fatalf("%s/args: want a source and files", dir)
	}
	var (
		o     Options
		files []Input
	)
	o.ReadFile = func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, filepath.Base(name))) }
	num := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatalf("%s/args: %v", dir, err)
		}
		return uint32(n)
	}
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() string {
			i++
			if i >= len(words) {
				t.Fatalf("%s/args: %s wants a value", dir, w)
			}
			return words[i]
		}
		switch w {
		case "--asn":
			o.ASN = num(next())
		case "--router-id":
			o.RouterID = next()
		case "--peer":
			o.Peers = append(o.Peers, next())
		case "--peer-asn":
			o.PeerASN = num(next())
		default:
			data, err := os.ReadFile(filepath.Join(dir, w))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, Input{Name: w, Data: data})
		}
	}
	return words[0], files, o
}

// compareGolden compares got with the file want (absent: empty), or
// rewrites the file with -update.
func compareGolden(t *testing.T, want, got string) {
	t.Helper()
	if *update {
		if got == "" {
			os.Remove(want)
			return
		}
		if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(want)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if string(b) != got {
		t.Errorf("%s differs (go test ./migrate -run TestGolden -update rewrites it; read the diff):\n--- want\n%s\n--- got\n%s", want, b, got)
	}
}

// issueLines returns res's issues as "file:line: what" lines.
func issueLines(res *Result) []string {
	var l []string
	for _, i := range res.Issues {
		l = append(l, i.String())
	}
	return l
}
