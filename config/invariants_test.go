package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkProblems lists what in c breaks the promises the health package
// builds checkers on without validating again: the table of its type and
// no other, parsed values set, defaults applied.
func checkProblems(c Check) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	tables := map[CheckType]bool{CheckTCP: c.TCP != nil, CheckHTTP: c.HTTP != nil, CheckDNS: c.DNS != nil,
		CheckGRPC: c.GRPC != nil, CheckExec: c.Exec != nil, CheckProcess: c.Process != nil,
		CheckListen: c.Listen != nil, CheckTTL: c.TTL != nil}
	typ := c.Type
	if typ == CheckHTTPS {
		typ = CheckHTTP
	}
	for tt, set := range tables {
		if set != (tt == typ) {
			bad("type %s: %s table set: %v", c.Type, tt, set)
		}
	}
	if c.Timeout <= 0 || c.Timeout >= c.FastInterval || c.FastInterval > c.Interval || c.Rise < 1 || c.Fall < 1 {
		bad("timing %s/%s/%s, rise %d, fall %d", c.Interval, c.FastInterval, c.Timeout, c.Rise, c.Fall)
	}
	connTLS := func(address string, t *TLSClient) {
		host, _, err := net.SplitHostPort(address)
		if err != nil || !validHostPort(address, false) {
			bad("address %q", address)
		}
		if t != nil && t.ServerName == "" {
			bad("TLS without a server name (host %q)", host)
		}
	}
	switch {
	case c.TCP != nil:
		connTLS(c.TCP.Address, c.TCP.TLS)
	case c.GRPC != nil:
		connTLS(c.GRPC.Address, c.GRPC.TLS)
	case c.HTTP != nil:
		h := c.HTTP
		switch u := h.ParsedURL; {
		case u == nil:
			bad("no parsed URL for %q", h.URL)
		case u.Scheme != "https" && (u.Scheme != "http" || c.Type == CheckHTTPS) || u.Hostname() == "":
			bad("url %s for type %s", u, c.Type)
		}
		if !validMethod(h.Method) || len(h.ExpectStatus) == 0 || h.MaxBodyBytes <= 0 {
			bad("method %q, expect_status %v, max_body_bytes %d", h.Method, h.ExpectStatus, h.MaxBodyBytes)
		}
		for _, r := range h.ExpectStatus {
			if r.Min < 100 || r.Min > r.Max || r.Max > 599 {
				bad("status range %v", r)
			}
		}
	case c.DNS != nil:
		d := c.DNS
		if !validHostPort(d.Server, false) || (d.Protocol != "udp" && d.Protocol != "tcp") ||
			!strings.HasSuffix(d.QueryName, ".") || !validDomain(d.QueryName) ||
			!slices.Contains(DNSQueryTypes, d.QueryType.String()) || !slices.Contains(DNSRcodes, d.ExpectRcode.String()) {
			bad("dns %+v", *d)
		}
		for _, a := range d.ExpectAnswer {
			if a.Text == "" || a.Addr.Is4In6() {
				bad("answer %+v", a)
			}
		}
	case c.Exec != nil:
		if len(c.Exec.Command) == 0 || c.Exec.Command[0] == "" {
			bad("command %q", c.Exec.Command)
		}
	case c.Process != nil:
		if (c.Process.PIDFile == "") == (c.Process.Unit == "") {
			bad("pid_file %q, unit %q", c.Process.PIDFile, c.Process.Unit)
		}
	case c.Listen != nil:
		if c.Listen.Port == 0 || c.Listen.Addr.Is4In6() || (c.Listen.Protocol != "tcp" && c.Listen.Protocol != "udp") {
			bad("listen %+v", *c.Listen)
		}
	case c.TTL != nil:
		if c.TTL.TTL < minTTL {
			bad("ttl %s", c.TTL.TTL)
		}
	}
	return p
}

// checkConfigChecks fails t if a check of cfg breaks a promise, or does not
// equal the same check of a second parse of data.
func checkConfigChecks(t *testing.T, cfg *Config, data []byte) {
	t.Helper()
	for _, c := range cfg.Checks {
		for _, p := range checkProblems(c) {
			t.Errorf("check %q: %s", c.Name, p)
		}
	}
	again, err := Parse(data)
	if err != nil {
		t.Fatalf("second parse: %v", err)
	}
	for i, c := range cfg.Checks {
		if !c.Equal(again.Checks[i]) {
			t.Errorf("check %q differs from itself parsed again", c.Name)
		}
	}
	if d := Compare(cfg, again); !d.Empty() {
		t.Errorf("config differs from itself parsed again:\n%s", d)
	}
}

func TestValidChecksKeepPromises(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			checkConfigChecks(t, cfg, data)
		})
	}
	// And a check that breaks them is caught.
	if len(checkProblems(Check{Type: CheckHTTP, HTTP: &HTTPCheck{URL: "http://x/"}})) == 0 {
		t.Error("an HTTP check without a parsed URL or defaults passes")
	}
}
