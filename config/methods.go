package config

import (
	"strconv"
	"strings"
)

// String formats r as "200-299", or "204" when Min == Max.
func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

// Contains reports whether code is in r.
func (r StatusRange) Contains(code int) bool {
	return r.Min <= code && code <= r.Max
}

// Network splits Listen for net.Listen: ("unix", "/run/anycastd/api.sock")
// for "unix:///run/anycastd/api.sock", ("tcp", "127.0.0.1:9480") for
// host:port, and ("", "") when the API is disabled.
func (a API) Network() (network, address string) {
	if a.Listen == "" {
		return "", ""
	}
	if path, ok := strings.CutPrefix(a.Listen, unixListenPrefix); ok {
		return "unix", path
	}
	return "tcp", a.Listen
}
