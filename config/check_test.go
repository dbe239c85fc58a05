package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseValidChecks(t *testing.T) {
	got, err := Load(filepath.Join("testdata", "valid-checks.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ms := time.Millisecond
	want := []Check{
		{
			Name: "web", Type: CheckHTTPS, Interval: 2 * time.Second, FastInterval: 500 * ms, Timeout: 250 * ms,
			Rise: 3, Fall: 3, Line: 11,
			HTTP: &HTTPCheck{
				URL:             "https://www.example.net:8443/healthz",
				ParsedURL:       mustURL("https://www.example.net:8443/healthz"),
				Method:          "POST",
				ExpectStatus:    []StatusRange{{200, 204}},
				ExpectBody:      "ok",
				ExpectBodyRegex: regexp.MustCompile(`^\{"status":\s*"(up|ok)"`),
				Host:            "www.example.net",
				Headers:         map[string]string{"X-Probe": "anycastd", "Accept": "application/json"},
				FollowRedirects: true,
				SourceAddress:   addr("198.18.1.2"),
				MaxBodyBytes:    1024,
				TLS: &TLSClient{
					ServerName:         "web.internal",
					CAFile:             "testdata/tls/ca.pem",
					CertFile:           "testdata/tls/client.pem",
					KeyFile:            "testdata/tls/client-key.pem",
					InsecureSkipVerify: true,
				},
			},
		},
		{
			Name: "plain", Type: CheckHTTP, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 32,
			HTTP: &HTTPCheck{URL: "http://127.0.0.1:8080/", ParsedURL: mustURL("http://127.0.0.1:8080/"),
				Method: "GET", ExpectStatus: []StatusRange{{200, 299}}, MaxBodyBytes: 64 << 10},
		},
		{
			Name: "smtp", Type: CheckTCP, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 37,
			TCP: &TCPCheck{Address: "127.0.0.1:25", Send: "EHLO anycastd\r\n", Expect: "220 ",
				TLS: &TLSClient{ServerName: "mail.example.net"}, SourceAddress: addr("127.0.0.2")},
		},
		{
			Name: "dns", Type: CheckDNS, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 47,
			DNS: &DNSCheck{Server: "[::1]:53", Protocol: "tcp", QueryName: "example.net.", QueryType: 28,
				ExpectRcode: 3, ExpectAnswer: []DNSAnswer{{Text: "2001:db8::1", Addr: addr("2001:db8::1")}}},
		},
		{
			Name: "dns-default", Type: CheckDNS, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 57,
			DNS: &DNSCheck{Server: "127.0.0.1:53", Protocol: "udp", QueryName: "www.example.net.", QueryType: 1,
				ExpectRcode: 0},
		},
		{
			Name: "api", Type: CheckGRPC, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 62,
			GRPC: &GRPCCheck{Address: "localhost:50051", Service: "api.v1.Orders",
				TLS: &TLSClient{ServerName: "localhost", CAFile: "testdata/tls/ca.pem"}},
		},
		{
			Name: "api-plain", Type: CheckGRPC, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 70,
			GRPC: &GRPCCheck{Address: "127.0.0.1:50051"},
		},
		{
			Name: "script", Type: CheckExec, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 75,
			Exec: &ExecCheck{
				Command: []string{"/bin/sh", "-c", "pgrep -x nginx >/dev/null"},
				Shell:   true,
				Env:     map[string]string{"LC_ALL": "C", "CHECK_MODE": "fast"},
				Dir:     "testdata",
			},
		},
		{
			Name: "nginx-pid", Type: CheckProcess, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 83,
			Process: &ProcessCheck{PIDFile: "/run/nginx.pid"},
		},
		{
			Name: "nginx-unit", Type: CheckProcess, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 88,
			Process: &ProcessCheck{Unit: "nginx.service"},
		},
		{
			Name: "port", Type: CheckListen, Interval: 20 * ms, FastInterval: 20 * ms, Timeout: 10 * ms,
			Rise: 3, Fall: 3, Line: 93,
			Listen: &ListenCheck{Addr: addr("2001:db8::1"), Port: 443, Protocol: "tcp"},
		},
		{
			Name: "dns-port", Type: CheckListen, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 99,
			Listen: &ListenCheck{Port: 53, Protocol: "udp"},
		},
		{
			Name: "heartbeat", Type: CheckTTL, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 105,
			TTL: &TTLCheck{TTL: 10 * time.Second},
		},
	}
	if diff := cmp.Diff(want, got.Checks, cmpOpts); diff != "" {
		t.Errorf("checks mismatch (-want +got):\n%s", diff)
	}
}

// Every type-specific key of rawCheck says which types it applies to, and
// every key listed there exists.
func TestCheckKeyTypesComplete(t *testing.T) {
	common := map[string]bool{"name": true, "type": true, "interval": true, "fast_interval": true,
		"timeout": true, "rise": true, "fall": true}
	tags := map[string]bool{}
	rt := reflect.TypeFor[rawCheck]()
	for i := range rt.NumField() {
		tag := rt.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" || common[tag] {
			continue
		}
		tags[tag] = true
		if len(checkKeyTypes[tag]) == 0 {
			t.Errorf("key %q is missing from checkKeyTypes", tag)
		}
	}
	for k := range checkKeyTypes {
		if !tags[k] {
			t.Errorf("checkKeyTypes lists %q, which rawCheck does not have", k)
		}
	}
}

func TestParseListenAddress(t *testing.T) {
	tests := []struct {
		in   string
		addr string // "" for any
		port uint16
		ok   bool
	}{
		{"53", "", 53, true},
		{":8080", "", 8080, true},
		{"127.0.0.1:80", "127.0.0.1", 80, true},
		{"[::1]:443", "::1", 443, true},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1", 80, true},
		{"0.0.0.0:80", "0.0.0.0", 80, true},
		{"0", "", 0, false},
		{":0", "", 0, false},
		{"65536", "", 0, false},
		{"127.0.0.1:0", "", 0, false},
		{"localhost:80", "", 0, false},
		{"[fe80::1%eth0]:80", "", 0, false},
		{"::1:80", "", 0, false},
		{"", "", 0, false},
		{"-1", "", 0, false},
	}
	for _, tt := range tests {
		a, port, ok := parseListenAddress(tt.in)
		var want netip.Addr
		if tt.addr != "" {
			want = netip.MustParseAddr(tt.addr)
		}
		if ok != tt.ok || (ok && (a != want || port != tt.port)) {
			t.Errorf("parseListenAddress(%q) = %v, %d, %v; want %v, %d, %v", tt.in, a, port, ok, want, tt.port, tt.ok)
		}
	}
}

func TestUnitName(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"nginx", "nginx.service", ""},
		{"nginx.service", "nginx.service", ""},
		{"getty@tty1.service", "getty@tty1.service", ""},
		{"foo.bar", "foo.bar.service", ""},
		{"nginx.socket", "nginx.socket", "is not a service unit (only a service has a main process)"},
		{"", ".service", "is not a valid unit name"},
		{"a b", "a b.service", "is not a valid unit name"},
		{"getty@", "getty@.service", "is not a valid unit name"},
		{strings.Repeat("a", 248), strings.Repeat("a", 248) + ".service", "is not a valid unit name"},
	}
	for _, tt := range tests {
		got, err := unitName(tt.in)
		if got != tt.want || err != tt.err {
			t.Errorf("unitName(%q) = %q, %q; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
