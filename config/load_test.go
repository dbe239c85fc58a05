package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadSoon runs Load(path) and fails the test if it does not return within
// a generous deadline (a FIFO must not block it).
func loadSoon(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Load(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Load(%s) has not returned after 30s", path)
		return nil
	}
}

func TestLoadNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, "config file is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "config file is a character device, not a regular file"},
		{dir, "config file is a directory, not a regular file"},
	}
	for _, tt := range tests {
		err := loadSoon(t, tt.path)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Load(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.toml")
	data, err := os.ReadFile("testdata/valid-minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	// A valid file padded with a comment to one byte over the cap.
	pad := MaxFileSize + 1 - len(data)
	data = append(data, []byte("#"+strings.Repeat("x", pad-2)+"\n")...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "config file is larger than 4 MiB"
	if err := loadSoon(t, path); err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %q", err, want)
	}
	if _, err := Parse(data); err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %q", err, want)
	}
	// At the cap exactly, the file loads.
	if err := os.WriteFile(path, data[:len(data)-2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadSoon(t, path); err != nil {
		t.Errorf("Load of a file of %d bytes: %v", MaxFileSize-1, err)
	}
}

// A syntax error is reported on the line it is on, at a line end too.
func TestSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		src  string
		line int
	}{
		{"a = 1\n[interface\nname = \"x\"\n", 2},
		{"a = 1\r\n[interface\r\nname = \"x\"\r\n", 2},
		{"a = 1\n[interface", 2},
		{"a = 1\nb = \"abc\nc = 2\n", 2},
		{"a = 1\nb = \nc = 2\n", 2},
		{"a = 1\nb = 1 2\n", 2},
		{"a = 1\n\n\nb = [1,\n", 4},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src))
		var e *Error
		if !errors.As(err, &e) || len(e.Problems) != 1 {
			t.Errorf("Parse(%q) = %v, want one syntax error", tt.src, err)
			continue
		}
		if p := e.Problems[0]; p.Line != tt.line || !strings.HasPrefix(p.Msg, "syntax error") {
			t.Errorf("Parse(%q) = %v, want a syntax error on line %d", tt.src, p, tt.line)
		}
	}
}
