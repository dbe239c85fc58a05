package config

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults and limits of the instant-failure checks (process, listen, ttl).
const (
	DefaultListenProtocol = "tcp"
	minTTL                = 10 * time.Millisecond
	maxUnitNameLength     = 255 // UNIT_NAME_MAX - 1
)

// systemdUnitSuffixes are the unit types other than service: a unit name
// ending in one of them cannot have a main process.
var systemdUnitSuffixes = []string{".socket", ".device", ".mount", ".automount", ".swap",
	".target", ".path", ".timer", ".slice", ".scope"}

func (s scope) processCheck(r *rawCheck) *ProcessCheck {
	p := &ProcessCheck{}
	if r.PIDFile == nil && r.Unit == nil {
		s.missing("pid_file or unit")
		return p
	}
	if r.PIDFile != nil && r.Unit != nil {
		s.at("unit", "set pid_file or unit, not both")
	}
	if x, ok := s.str("pid_file", r.PIDFile); ok {
		fi, err := os.Stat(x)
		switch {
		case x == "":
			s.keyErr("pid_file", "must not be empty")
		case !strings.HasPrefix(x, "/") || strings.ContainsRune(x, 0):
			s.keyErr("pid_file", "%q must be an absolute path", x)
		case err == nil && fi.IsDir():
			// A missing file is fine: the service may start later.
			s.keyErr("pid_file", "%q is a directory", x)
		}
		p.PIDFile = x
	}
	if x, ok := s.str("unit", r.Unit); ok {
		unit, err := unitName(x)
		if err != "" {
			s.keyErr("unit", "%q %s", x, err)
		}
		p.Unit = unit
	}
	return p
}

// unitName returns the systemd service unit named by x, with ".service"
// added when x has no unit type suffix (as systemctl does), or why x is not
// one.
func unitName(x string) (string, string) {
	for _, suf := range systemdUnitSuffixes {
		if strings.HasSuffix(x, suf) {
			return x, "is not a service unit (only a service has a main process)"
		}
	}
	if !strings.HasSuffix(x, ".service") {
		x += ".service"
	}
	prefix := strings.TrimSuffix(x, ".service")
	if prefix == "" || len(x) > maxUnitNameLength || strings.HasSuffix(prefix, "@") ||
		strings.ContainsFunc(prefix, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
				strings.ContainsRune(":-_.\\@", r))
		}) {
		return x, "is not a valid unit name"
	}
	return x, ""
}

func (s scope) listenCheck(r *rawCheck) *ListenCheck {
	l := &ListenCheck{Protocol: DefaultListenProtocol}
	if r.Address == nil {
		s.missing("address")
	} else if x, ok := s.str("address", r.Address); ok {
		addr, port, ok := parseListenAddress(x)
		if !ok {
			s.keyErr("address", "%q must be IP:port, [IPv6]:port or a port, with a port in 1..65535", x)
		}
		l.Addr, l.Port = addr, port
	}
	if x, ok := s.oneOf("protocol", r.Protocol, "tcp", "udp"); ok {
		l.Protocol = x
	}
	return l
}

// parseListenAddress parses "203.0.113.1:53", "[2001:db8::1]:53", ":53" or
// "53"; the address is zero for the last two.
func parseListenAddress(x string) (netip.Addr, uint16, bool) {
	portOnly := strings.TrimPrefix(x, ":")
	if n, err := strconv.ParseUint(portOnly, 10, 16); err == nil {
		return netip.Addr{}, uint16(n), n > 0
	}
	ap, err := netip.ParseAddrPort(x)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		return netip.Addr{}, 0, false
	}
	return ap.Addr().Unmap(), ap.Port(), true
}

func (s scope) ttlCheck(r *rawCheck) *TTLCheck {
	t := &TTLCheck{}
	if r.TTL == nil {
		s.missing("ttl")
	} else if d, ok := s.duration("ttl", r.TTL); ok {
		if d < minTTL {
			s.keyErr("ttl", "%s is below the minimum of %s", d, minTTL)
		}
		t.TTL = d
	}
	return t
}
