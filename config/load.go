package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// MaxFileSize is the largest configuration file Load and Parse accept: 4 MiB.
// A configuration of 10,000 VIPs with a check each, written out one key per
// line, is about 1.6 MB (about 25,000 fit); the cap keeps a wrong path (a
// log file, a device) or a generated file gone wrong from costing the memory
// of its decoding (the TOML library allocates about 60 bytes per byte read,
// short-lived).
const MaxFileSize = 4 << 20

// errTooLarge is the error for a file over MaxFileSize.
var errTooLarge = fmt.Errorf("config file is larger than %d MiB", MaxFileSize>>20)

// Load reads and parses the configuration file at path. Problems in the file
// are returned as a *Error (see Parse). A file that cannot be read gives the
// error from opening or reading it; a file that is not a regular file (a
// FIFO, a device, a directory) or is larger than MaxFileSize is refused
// without reading it.
func Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// ReadFile reads the regular file at path, at most MaxFileSize bytes: Load
// reads the configuration with it, anycastd migrate the other tools' files.
// It never blocks on a FIFO nor reads a device: the mode is checked before
// the file is opened (with O_NONBLOCK, so that a FIFO put in its place
// meanwhile does not block the open) and again on the open file. Errors:
// the *fs.PathError of a failed stat, open or read (naming the path), or,
// without the path, that the file is not a regular file or is larger than
// MaxFileSize.
func ReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileSize {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// regular returns an error unless fi is a regular file.
func regular(fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	}
	return fmt.Errorf("config file is %s, not a regular file", kind)
}

// Parse decodes a TOML configuration, applies defaults and validates it.
//
// On failure the error is a *Error listing every problem found, ordered by
// line, one per line of its Error() text. A TOML syntax error, or a document
// over the limits (see checkLimits), is reported alone, as a single Problem.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{Problems: []Problem{{Msg: errTooLarge.Error()}}}
	}
	if err := checkLimits(data); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return nil, syntaxError(data, err)
	}
	c := newCollector(scanLines(data))
	var raw rawFile
	c.fill(m, reflect.ValueOf(&raw).Elem(), nil, c.lines.root)
	cfg := c.build(&raw)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxError turns the TOML library's error into a *Error. The library's
// line is one too many when the error is at a line end (its line counter has
// already moved past the newline): the line is counted from the error's byte
// offset instead, which is exact; the library's line stays an upper bound.
func syntaxError(data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if off := pe.Position.Start; off >= 0 && off <= len(data) {
			if l := bytes.Count(data[:off], []byte("\n")) + 1; line <= 0 || l < line {
				line = l
			}
		}
		return &Error{Problems: []Problem{{Line: line, Msg: "syntax error: " + strings.ReplaceAll(pe.Message, "\n", `\n`)}}}
	}
	return &Error{Problems: []Problem{{Msg: fmt.Sprintf("syntax error: %v", err)}}}
}
