package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads and parses the configuration file at path. Problems in the file
// are returned as a *Error (see Parse); a file that cannot be read gives the
// error from os.ReadFile.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes a TOML configuration, applies defaults and validates it.
//
// On failure the error is a *Error listing every problem found, ordered by
// line, one per line of its Error() text. A TOML syntax error is reported
// alone, as a single Problem.
func Parse(data []byte) (*Config, error) {
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return nil, syntaxError(err)
	}
	c := newCollector(scanLines(data))
	var raw rawFile
	c.fill(m, reflect.ValueOf(&raw).Elem(), nil, "")
	cfg := c.build(&raw)
	if err := c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func syntaxError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{Problems: []Problem{{Line: pe.Position.Line, Msg: "syntax error: " + strings.ReplaceAll(pe.Message, "\n", `\n`)}}}
	}
	return &Error{Problems: []Problem{{Msg: fmt.Sprintf("syntax error: %v", err)}}}
}
