package config

import (
	"path/filepath"
	"reflect"
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
				Method:          "POST",
				ExpectStatus:    []StatusRange{{200, 204}},
				ExpectBody:      "ok",
				ExpectBodyRegex: `^\{"status":\s*"(up|ok)"`,
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
			HTTP: &HTTPCheck{URL: "http://127.0.0.1:8080/", Method: "GET", ExpectStatus: []StatusRange{{200, 299}},
				MaxBodyBytes: 64 << 10},
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
			DNS: &DNSCheck{Server: "[::1]:53", Protocol: "tcp", QueryName: "example.net.", QueryType: "AAAA",
				ExpectRcode: "NXDOMAIN", ExpectAnswer: []string{"2001:db8::1"}},
		},
		{
			Name: "dns-default", Type: CheckDNS, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 57,
			DNS: &DNSCheck{Server: "127.0.0.1:53", Protocol: "udp", QueryName: "www.example.net.", QueryType: "A",
				ExpectRcode: "NOERROR"},
		},
		{
			Name: "api", Type: CheckGRPC, Interval: time.Second, FastInterval: time.Second, Timeout: 500 * ms,
			Rise: 3, Fall: 3, Line: 62,
			GRPC: &GRPCCheck{Address: "localhost:50051", Service: "api.v1.Orders", TLS: &TLSClient{CAFile: "testdata/tls/ca.pem"}},
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
