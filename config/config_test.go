package config

import (
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func u32(v uint32) *uint32 { return &v }

var addr = netip.MustParseAddr
var prefix = netip.MustParsePrefix

// cmpOpts compares netip values, which have unexported fields, with ==,
// and a regular expression or URL by its text (nil equals only nil).
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b *regexp.Regexp) bool {
		return a == nil && b == nil || a != nil && b != nil && a.String() == b.String()
	}),
	cmp.Comparer(func(a, b *url.URL) bool {
		return a == nil && b == nil || a != nil && b != nil && a.String() == b.String()
	}),
}

// mustURL parses s, a URL that config accepts.
func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		file string
		want *Config
	}{
		{"valid-full.toml", &Config{
			BGP: BGP{
				ASN:                 65001,
				RouterID:            addr("198.18.1.2"),
				ListenPort:          1179,
				ListenAddresses:     []netip.Addr{addr("0.0.0.0"), addr("::")},
				GracefulRestart:     true,
				GracefulRestartTime: DefaultGracefulRestartTime,
				Peers: []Peer{
					{
						Address:             addr("198.18.1.1"),
						Port:                1179,
						ASN:                 65000,
						Description:         "core-1",
						HoldTime:            30 * time.Second,
						KeepaliveInterval:   10 * time.Second,
						ConnectRetry:        7 * time.Second,
						Password:            "s3cret",
						MultihopTTL:         2,
						Passive:             true,
						LocalAddress:        addr("198.18.1.2"),
						Families:            []Family{FamilyIPv4, FamilyIPv6},
						NextHopIPv4:         addr("198.18.1.2"),
						NextHopIPv6:         addr("2001:db8::2"),
						MaxReceivedPrefixes: 50,
						MaxReceivedRestart:  90 * time.Second,
						Line:                10,
					},
					{
						Address:             addr("2001:db8::1"),
						Port:                179,
						ASN:                 65001,
						HoldTime:            9 * time.Second,
						KeepaliveInterval:   3 * time.Second,
						ConnectRetry:        5 * time.Second,
						Families:            []Family{FamilyIPv6},
						MaxReceivedPrefixes: DefaultMaxReceivedPrefixes,
						MaxReceivedRestart:  DefaultMaxReceivedRestart,
						Line:                28,
					},
				},
			},
			Interface: Interface{Name: "anycast0", Manage: false, StateDir: "/var/lib/anycastd", Method: InterfaceMethodAddress},
			API:       API{Listen: "127.0.0.1:9480"},
			Metrics:   Metrics{Listen: "[::1]:9479"},
			Log:       Log{Format: "json", Level: "debug"},
			Node:      Node{DrainTime: 7 * time.Second, MaintenanceFile: "/etc/anycastd/maintenance", StartupDelay: 2 * time.Second},
			Checks: []Check{
				{
					Name: "web", Type: CheckHTTP,
					Interval: 2 * time.Second, FastInterval: 2 * time.Second, Timeout: 1500 * time.Millisecond,
					Rise: 2, Fall: 5,
					HTTP: &HTTPCheck{
						URL:          "https://127.0.0.1:8443/healthz",
						ParsedURL:    mustURL("https://127.0.0.1:8443/healthz"),
						Method:       "HEAD",
						ExpectStatus: []StatusRange{{200, 200}, {300, 399}},
						MaxBodyBytes: DefaultHTTPMaxBodyBytes,
					},
					Line: 47,
				},
				{
					Name: "db", Type: CheckTCP,
					Interval: time.Second, FastInterval: time.Second, Timeout: 500 * time.Millisecond,
					Rise: 3, Fall: 3,
					TCP:  &TCPCheck{Address: "127.0.0.1:5432"},
					Line: 58,
				},
				{
					Name: "script", Type: CheckExec,
					Interval: time.Second, FastInterval: time.Second, Timeout: 250 * time.Millisecond,
					Rise: 3, Fall: 3,
					Exec: &ExecCheck{Command: []string{"/usr/local/bin/check", "--fast"}},
					Line: 63,
				},
			},
			VIPs: []VIP{
				{
					Name:             "web",
					Prefixes:         []netip.Prefix{prefix("203.0.113.42/32"), prefix("2001:db8:42::1/128")},
					Checks:           []string{"web", "db"},
					Require:          1,
					Communities:      []Community{65001<<16 | 100, CommunityNoExport},
					LargeCommunities: []LargeCommunity{{65001, 1, 2}},
					MED:              u32(10),
					LocalPref:        u32(200),
					Prepend:          2,
					RemoveOnWithdraw: true,
					OnAddressLost:    AddressLostWithdraw,
					OnFailure:        OnFailureWithdraw,
					FlapHoldDown:     FlapHoldDown{MaxFlaps: DefaultMaxFlaps, Window: DefaultFlapWindow, HoldDown: DefaultHoldDown},
					Line:             69,
				},
				{
					Name:            "anycast-net",
					Prefixes:        []netip.Prefix{prefix("198.51.100.0/24")},
					Checks:          []string{"web", "db", "script"},
					Require:         2,
					AllowAggregate:  true,
					OnAddressLost:   AddressLostRestore,
					DrainTime:       10 * time.Second,
					MaintenanceFile: "/etc/anycastd/maintenance.anycast-net",
					OnFailure:       OnFailureDegrade,
					Degraded: &Degraded{
						Prepend: 3, MED: u32(500), Communities: []Community{65001<<16 | 666},
						LargeCommunities: []LargeCommunity{{65001, 6, 6}}, MinPassing: 1,
					},
					FlapHoldDown: FlapHoldDown{MaxFlaps: 4, Window: time.Minute, HoldDown: 30 * time.Second},
					Line:         85,
				},
			},
		}},
		{"valid-minimal.toml", &Config{
			BGP: BGP{
				ASN:                 65001,
				RouterID:            addr("198.18.1.2"),
				ListenPort:          179,
				GracefulRestartTime: DefaultGracefulRestartTime,
				Peers: []Peer{{
					Address:             addr("198.18.1.1"),
					Port:                179,
					ASN:                 65000,
					HoldTime:            9 * time.Second,
					KeepaliveInterval:   3 * time.Second,
					ConnectRetry:        5 * time.Second,
					MaxReceivedPrefixes: DefaultMaxReceivedPrefixes,
					MaxReceivedRestart:  DefaultMaxReceivedRestart,
					Families:            []Family{FamilyIPv4},
					Line:                5,
				}},
			},
			Interface: Interface{Name: "lo", Manage: true, StateDir: "/run/anycastd", Method: InterfaceMethodAddress},
			API:       API{Listen: "unix:///run/anycastd/api.sock"},
			Metrics:   Metrics{Listen: "127.0.0.1:9479"},
			Log:       Log{Format: "text", Level: "info"},
			Node:      Node{DrainTime: DefaultDrainTime},
			Checks: []Check{{
				Name: "web", Type: CheckHTTP,
				Interval: time.Second, FastInterval: time.Second, Timeout: 500 * time.Millisecond,
				Rise: 3, Fall: 3,
				HTTP: &HTTPCheck{
					URL:          "http://127.0.0.1:8080/healthz",
					ParsedURL:    mustURL("http://127.0.0.1:8080/healthz"),
					Method:       "GET",
					ExpectStatus: []StatusRange{{200, 299}},
					MaxBodyBytes: DefaultHTTPMaxBodyBytes,
				},
				Line: 9,
			}},
			VIPs: []VIP{{
				Name:          "web",
				Prefixes:      []netip.Prefix{prefix("203.0.113.42/32")},
				Checks:        []string{"web"},
				Require:       1,
				OnAddressLost: AddressLostRestore,
				OnFailure:     OnFailureWithdraw,
				FlapHoldDown:  FlapHoldDown{MaxFlaps: DefaultMaxFlaps, Window: DefaultFlapWindow, HoldDown: DefaultHoldDown},
				Line:          14,
			}},
		}},
		{"valid-inline.toml", &Config{
			BGP: BGP{
				ASN:                 4200000000,
				RouterID:            addr("10.0.0.1"),
				ListenPort:          0,
				GracefulRestartTime: DefaultGracefulRestartTime,
				Peers: []Peer{
					{
						Address:             addr("fe80::1%eth0"),
						Port:                179,
						ASN:                 4200000001,
						HoldTime:            9 * time.Second,
						KeepaliveInterval:   3 * time.Second,
						ConnectRetry:        5 * time.Second,
						MaxReceivedPrefixes: DefaultMaxReceivedPrefixes,
						MaxReceivedRestart:  DefaultMaxReceivedRestart,
						Families:            []Family{FamilyIPv6},
						Line:                6,
					},
					{
						Address:             addr("10.0.0.2"),
						Port:                179,
						ASN:                 65000,
						HoldTime:            10 * time.Second,
						KeepaliveInterval:   3 * time.Second,
						ConnectRetry:        5 * time.Second,
						MaxReceivedPrefixes: DefaultMaxReceivedPrefixes,
						MaxReceivedRestart:  DefaultMaxReceivedRestart,
						Families:            []Family{FamilyIPv4},
						Line:                7,
					},
				},
			},
			Interface: Interface{Name: "lo", Manage: true, StateDir: "/run/anycastd", Method: InterfaceMethodAddress},
			Log:       Log{Format: "text", Level: "warn"},
			Node:      Node{DrainTime: DefaultDrainTime},
			Checks: []Check{
				{
					Name: "a", Type: CheckTCP,
					Interval: 10 * time.Millisecond, FastInterval: 10 * time.Millisecond, Timeout: 5 * time.Millisecond,
					Rise: 3, Fall: 3,
					TCP:  &TCPCheck{Address: "localhost:80"},
					Line: 15,
				},
				{
					Name: "b", Type: CheckExec,
					Interval: time.Minute, FastInterval: time.Minute, Timeout: 2 * time.Second,
					Rise: 3, Fall: 3,
					Exec: &ExecCheck{Command: []string{`C:\x`, "multi \"line\" "}},
					Line: 16,
				},
			},
			VIPs: []VIP{{
				Name:     "v.1_x-y",
				Prefixes: []netip.Prefix{prefix("2001:db8::1/128")},
				Checks:   []string{"a", "b"},
				Require:  2,
				Communities: []Community{
					CommunityGracefulShutdown, CommunityBlackhole, CommunityNoAdvertise, 0, 0xFFFFFFFF,
				},
				LargeCommunities: []LargeCommunity{{0, 0, 0}, {1<<32 - 1, 1<<32 - 1, 1<<32 - 1}},
				MED:              u32(0),
				LocalPref:        u32(1<<32 - 1),
				OnAddressLost:    AddressLostRestore,
				OnFailure:        OnFailureWithdraw,
				FlapHoldDown:     FlapHoldDown{MaxFlaps: DefaultMaxFlaps, Window: DefaultFlapWindow, HoldDown: DefaultHoldDown},
				Line:             20,
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Load(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("Load mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Every valid-*.toml file must be covered by TestParseValid.
func TestValidFilesCovered(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid-*.toml")
	if len(files) != 4 {
		t.Errorf("found %d valid-*.toml files, TestParseValid and TestParseValidChecks cover 4: %v", len(files), files)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !os.IsNotExist(err) {
		t.Errorf("Load of a missing file: got %v, want a not-exist error", err)
	}
}
