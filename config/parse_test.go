package config

import (
	"strings"
	"testing"
	"time"
)

const base = `[bgp]
asn = 65001
router_id = "198.18.1.2"

[[bgp.peer]]
address = "198.18.1.1"
asn = 65000
`

// TestParseSnippets parses base followed by a snippet (base is 7 lines, so
// the snippet starts on line 8) and checks the error, or the config.
func TestParseSnippets(t *testing.T) {
	tests := []struct {
		name    string
		snippet string
		err     string             // exact error; "" for none
		check   func(*Config) bool // for valid configs
	}{
		{
			name:    "keepalive defaults to a third of hold_time, in whole seconds",
			snippet: "[[bgp.peer]]\naddress = \"198.18.1.3\"\nasn = 65000\nhold_time = \"10s\"\n",
			check: func(c *Config) bool {
				p := c.BGP.Peers[1]
				return p.HoldTime == 10*time.Second && p.KeepaliveInterval == 3*time.Second && p.Line == 8
			},
		},
		{
			name:    "check timeout defaults to half the interval, at most 1s",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"h:1\"\ninterval = \"4s\"\n[[check]]\nname = \"b\"\ntype = \"tcp\"\naddress = \"h:1\"\ninterval = \"300ms\"\n",
			check: func(c *Config) bool {
				return c.Checks[0].Timeout == time.Second && c.Checks[1].Timeout == 150*time.Millisecond
			},
		},
		{
			name:    "expect_status given as a single code string",
			snippet: "[[check]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://h/\"\nexpect_status = [\"204\", 301]\n",
			check: func(c *Config) bool {
				es := c.Checks[0].HTTP.ExpectStatus
				return len(es) == 2 && es[0] == StatusRange{204, 204} && es[1] == StatusRange{301, 301}
			},
		},
		{
			name:    "IPv6 routes over an IPv4 session with next_hop_ipv6",
			snippet: "[[bgp.peer]]\naddress = \"198.18.1.3\"\nasn = 65000\nfamilies = [\"ipv6\"]\nnext_hop_ipv6 = \"2001:db8::2\"\n[[check]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"true\"]\n[[vip]]\nname = \"v\"\nprefixes = [\"2001:db8::42\"]\nchecks = [\"a\"]\n",
			check: func(c *Config) bool {
				return c.VIPs[0].Prefixes[0].String() == "2001:db8::42/128" && c.VIPs[0].Require == 1
			},
		},
		{
			name:    "empty listeners disable the API and metrics",
			snippet: "[api]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n",
			check:   func(c *Config) bool { return c.API.Listen == "" && c.Metrics.Listen == "" },
		},
		{
			name:    "unknown key in an inline table",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"h:1\"\n[[vip]]\nname = \"v\"\nprefixes = [\"192.0.2.1\"]\nchecks = [\"a\"]\nmed = 1\nx = { y = 1,\n  z = 2 }\n",
			err:     `unknown key "vip.x" (line 17)`,
		},
		{
			name:    "quoted key",
			snippet: "[log]\n\"fmt\" = \"json\"\n",
			err:     `unknown key "log.fmt" (line 9)`,
		},
		{
			name:    "quoted keys with escapes",
			snippet: "[log]\n\"le\\u0076el\" = \"debug\"\n\"fm\\x74\" = 1\n",
			err:     `unknown key "log.fmt" (line 10)`,
		},
		{
			name:    "keys are case-sensitive",
			snippet: "[Log]\nlevel = \"debug\"\n[log]\nLevel = \"debug\"\n",
			err:     "unknown key \"Log\" (line 8)\nunknown key \"log.Level\" (line 11)",
		},
		{
			name:    "problem in the second of several multi-line arrays",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"h:1\"\n[[vip]]\nname = \"v\"\nprefixes = [\n  \"192.0.2.1\",\n]\nchecks = [\"a\"]\n[[vip]]\nname = \"w\"\nchecks = [\"a\"]\nprefixes = [\n  \"192.0.2.2\",\n  \"192.0.2.0/31\", # comment\n  \"192.0.2.1\",\n]\n",
			err:     "vip \"w\": prefixes: \"192.0.2.0/31\" is not a host route; set allow_aggregate = true to announce it (line 23)\nvip \"w\": prefixes: \"192.0.2.1/32\" is already announced by vip \"v\" (line 24)",
		},
		{
			name:    "tcp check without a host",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \":80\"\n",
			err:     `check "a": address: ":80" must be host:port with a port in 1..65535 (line 11)`,
		},
		{
			name:    "dns label longer than 63 characters",
			snippet: "[[check]]\nname = \"a\"\ntype = \"dns\"\nquery_name = \"" + strings.Repeat("a", 64) + ".example.net\"\n",
			err:     `check "a": query_name: "` + strings.Repeat("a", 64) + `.example.net" is not a valid domain name (line 11)`,
		},
		{
			name:    "dns name longer than 253 characters",
			snippet: "[[check]]\nname = \"a\"\ntype = \"dns\"\nquery_name = \"" + strings.Repeat("abc.", 63) + "ab.\"\n",
			err:     `check "a": query_name: "` + strings.Repeat("abc.", 63) + `ab." is not a valid domain name (line 11)`,
		},
		{
			name:    "tls server name of a tcp check defaults to the host of its address",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"[::1]:443\"\ntls = true\n[[check]]\nname = \"b\"\ntype = \"grpc\"\naddress = \"db.internal:50051\"\ntls = true\ninsecure_skip_verify = true\n[[check]]\nname = \"c\"\ntype = \"tcp\"\naddress = \"h:1\"\ntls = true\ntls_server_name = \"x.example\"\n[[check]]\nname = \"d\"\ntype = \"https\"\nurl = \"https://h/\"\ninsecure_skip_verify = true\n",
			check: func(c *Config) bool {
				return c.Checks[0].TCP.TLS.ServerName == "::1" && c.Checks[1].GRPC.TLS.ServerName == "db.internal" &&
					c.Checks[2].TCP.TLS.ServerName == "x.example" && c.Checks[3].HTTP.TLS.ServerName == ""
			},
		},
		{
			name:    "dotted key on a check",
			snippet: "[[check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"h:1\"\ntcp.address = \"h:2\"\n",
			err:     `unknown key "check.tcp" (line 12)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base + tt.snippet))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error:\n%s\nwant:\n%s", got, tt.err)
			}
			if err == nil && tt.check != nil && !tt.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}

func TestPeerTable(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(base, "[[bgp.peer]]", "[bgp.peer]", 1)))
	want := `bgp.peer: expected an array of tables ([[bgp.peer]]), got table (line 5)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
