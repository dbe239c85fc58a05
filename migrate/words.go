package migrate

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// splitShell splits a command line the way a POSIX shell splits words:
// single quotes keep everything, double quotes keep everything but a
// backslash before '"', '\\', '$' or '`', and a backslash outside quotes
// keeps the next character. needsShell reports an unquoted character that
// only a shell gives a meaning (a pipe, a redirection, a list, a variable
// or command substitution, a glob, a leading "~", an assignment before the
// command), or a '$' or '`' in double quotes: such a command is run as
// shell = true to keep its meaning. An unterminated quote is an error.
func splitShell(s string) (argv []string, needsShell bool, err error) {
	var (
		cur   strings.Builder
		inArg bool
		glob  bool // an unquoted '*', '?' or '[' in the current word
	)
	flush := func() {
		if inArg {
			// A URL's brackets ("http://[2001:db8::1]/") match no file, so
			// the shell would leave them.
			if glob && !strings.Contains(cur.String(), "://") {
				needsShell = true
			}
			argv = append(argv, cur.String())
			cur.Reset()
			inArg = false
		}
		glob = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n':
			flush()
		case '\'':
			inArg = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false, errors.New("a ' is not closed")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '"':
			inArg = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0:
					i++
				case s[i] == '$' || s[i] == '`':
					needsShell = true
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false, errors.New(`a " is not closed`)
			}
		case '\\':
			inArg = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case '|', '&', ';', '<', '>', '(', ')', '$', '`':
			needsShell = true
			inArg = true
			cur.WriteByte(c)
		case '*', '?', '[':
			glob = true
			inArg = true
			cur.WriteByte(c)
		case '~':
			if !inArg {
				needsShell = true
			}
			inArg = true
			cur.WriteByte(c)
		case '=':
			if len(argv) == 0 && inArg && !strings.ContainsAny(cur.String(), "/") {
				needsShell = true // VAR=value command
			}
			inArg = true
			cur.WriteByte(c)
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	flush()
	return argv, needsShell, nil
}

// seconds parses a number of seconds as the source tools write them ("5",
// "0.5", "2.5s" is refused) into a Duration, at most a day; negative
// values and NaN are refused.
func seconds(s string) (Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if f > 86400 {
		return 0, fmt.Errorf("%q is more than a day", s)
	}
	return Duration(time.Duration(math.Round(f*1000)) * time.Millisecond), nil
}

// secondsText writes d as the sources write it: a number of seconds, with
// decimals only when needed ("5", "0.5").
func secondsText(d Duration) string {
	return strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)
}

// count parses a whole number in 0..max.
func count(s string, max uint64) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("%q is not a whole number in 0..%d", s, max)
	}
	return n, nil
}

// hostPrefix turns an address or a prefix into the host route anycastd
// announces for it. changed reports that a prefix that was not a host route
// became one (the address kept, its length dropped: "192.0.2.10/24" ->
// "192.0.2.10/32"), which the caller says in a comment.
func hostPrefix(s string) (prefix string, changed bool, err error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		a := p.Addr()
		if p.Bits() == a.BitLen() {
			return p.String(), false, nil
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), true, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", false, fmt.Errorf("%q is not an IP address or prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()).String(), false, nil
}

// fitTiming sets a check's interval, fast_interval and timeout from the
// source's values (zero: not given), keeping anycastd's rule that the
// timeout is below the fast interval: a timeout that is not becomes 90 % of
// the fast interval, said in a comment that names the source's option
// (timeoutName, e.g. "--timeout 5").
func fitTiming(c *Table, interval, fast, timeout Duration, timeoutName string) {
	if interval > 0 {
		c.Set("interval", interval, "")
	}
	effFast := fast
	if fast > 0 && interval > 0 && fast > interval {
		c.Set("fast_interval", interval, fmt.Sprintf("the source's fast interval %s: anycastd's is never above interval", time.Duration(fast)))
		effFast = interval
	} else if fast > 0 {
		c.Set("fast_interval", fast, "")
	}
	if effFast == 0 {
		effFast = interval
	}
	if effFast == 0 {
		effFast = Duration(time.Second)
	}
	if timeout <= 0 {
		return
	}
	if timeout < effFast {
		c.Set("timeout", timeout, "")
		return
	}
	fit := Duration(time.Duration(effFast) * 9 / 10).round()
	c.Set("timeout", fit, fmt.Sprintf("%s (%s): anycastd's timeout must be below fast_interval (%s)",
		timeoutName, time.Duration(timeout), time.Duration(effFast)))
	c.Warnings = append(c.Warnings, fmt.Sprintf("timeout %s instead of the source's %s (%s): a probe slower than that now fails; raise fast_interval and interval to keep a longer one",
		time.Duration(fit), time.Duration(timeout), timeoutName))
}

// round rounds d to a millisecond (at least one).
func (d Duration) round() Duration {
	r := time.Duration(d).Round(time.Millisecond)
	if r <= 0 {
		r = time.Millisecond
	}
	return Duration(r)
}
