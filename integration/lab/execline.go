package lab

import (
	"fmt"
	"regexp"
	"strings"
)

// execLine is one node exec line as the lab runs it.
type execLine struct {
	argv []string
	// background: the line is `sh -c 'PROGRAM ARGS... [redirections] &'`,
	// which under containerlab starts a service in the background. The lab
	// runs PROGRAM ARGS itself as a tracked service instead, logging to the
	// node's directory.
	background bool
}

var redirection = regexp.MustCompile(`^[0-9]*(>>|>|<|&>)`)

// parseExecLine splits a containerlab exec line into words (containerlab
// runs it without a shell) and recognizes background services.
func parseExecLine(line string) (execLine, error) {
	words, err := splitWords(line)
	if err != nil {
		return execLine{}, fmt.Errorf("exec %q: %w", line, err)
	}
	if len(words) == 0 {
		return execLine{}, fmt.Errorf("exec %q: empty", line)
	}
	if len(words) == 3 && isShell(words[0]) && words[1] == "-c" {
		inner, err := splitWords(words[2])
		if err != nil {
			return execLine{}, fmt.Errorf("exec %q: %w", line, err)
		}
		n := len(inner)
		if n > 0 && (inner[n-1] == "&" || strings.HasSuffix(inner[n-1], "&") && !strings.HasSuffix(inner[n-1], ">&")) {
			if inner[n-1] == "&" {
				inner = inner[:n-1]
			} else {
				inner[n-1] = strings.TrimSuffix(inner[n-1], "&")
			}
			var argv []string
			for i := 0; i < len(inner); i++ {
				w := inner[i]
				if m := redirection.FindString(w); m != "" {
					if w == m {
						i++ // the target is the next word
					}
					continue
				}
				if len(argv) == 0 && (w == "nohup" || w == "exec") {
					continue
				}
				argv = append(argv, w)
			}
			if len(argv) == 0 {
				return execLine{}, fmt.Errorf("exec %q: no command before &", line)
			}
			return execLine{argv: argv, background: true}, nil
		}
	}
	return execLine{argv: words}, nil
}

func isShell(w string) bool {
	switch w {
	case "sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash":
		return true
	}
	return false
}

// splitWords splits s into words like a POSIX shell without expansions:
// blanks separate words, single quotes keep everything literally, double
// quotes keep everything but \" \\ \$ \`, a backslash outside quotes escapes
// the next character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
