package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// exaConvert converts one exabgp.conf; files are what --config may read.
func exaConvert(t *testing.T, conf string, files map[string]string) (*Result, error) {
	t.Helper()
	o := Options{ReadFile: func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}}
	return Convert("exabgp", []Input{{Name: "exabgp.conf", Data: []byte(conf)}}, o)
}

// exaNeighborConf is a neighbor block feeding the processes named.
func exaNeighborConf(procs ...string) string {
	return "neighbor 198.18.1.1 {\n  router-id 198.18.1.2;\n  local-as 65001;\n  peer-as 65000;\n  api { processes [ " +
		strings.Join(procs, " ") + " ]; }\n}\n"
}

// TestExaBGPSyntaxErrors: malformed input is a *SyntaxError naming the file
// and line where it is.
func TestExaBGPSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		files      map[string]string
		want       string
	}{
		{"brace not closed", "neighbor 198.18.1.1 {\n  local-as 65001;\n", nil, "exabgp.conf:1: '{' not closed"},
		{"bad address", "\nneighbor 198.18.1.x {\n}\n", nil, `exabgp.conf:2: neighbor "198.18.1.x": not an IP address`},
		{"bad hold-time", "neighbor 198.18.1.1 {\n  local-as 65001;\n  hold-time soon;\n}\n", nil, `exabgp.conf:3: hold-time "soon"`},
		{"hold-time too long", "neighbor 198.18.1.1 {\n  hold-time 65536;\n}\n", nil, `exabgp.conf:2: hold-time "65536"`},
		{"bad local-as", "neighbor 198.18.1.1 {\n\n  local-as 4294967296;\n}\n", nil, `exabgp.conf:3: local-as "4294967296"`},
		{"IPv6 router-id", "neighbor 198.18.1.1 {\n  router-id 2001:db8::1;\n}\n", nil, `exabgp.conf:2: router-id "2001:db8::1": want an IPv4 address`},
		{"no such template", "neighbor 198.18.1.1 {\n  inherit edge;\n}\n", nil, "exabgp.conf:2: inherit edge: no template neighbor edge"},
		{"bad interval", "process w {\n  run exabgp healthcheck --cmd true --interval often --ip 203.0.113.1;\n}\n" + exaNeighborConf("w"), nil,
			`exabgp.conf:2: --interval: "often" is not a number of seconds`},
		{"fractional timeout", "process w {\n  run exabgp healthcheck --timeout 1.5 --ip 203.0.113.1;\n}\n" + exaNeighborConf("w"), nil,
			`exabgp.conf:2: --timeout "1.5": want a whole number`},
		{"host bits", "\nprocess w {\n  run exabgp healthcheck --ip 203.0.113.10/24;\n}\n" + exaNeighborConf("w"), nil,
			"exabgp.conf:3: --ip 203.0.113.10/24: host bits set"},
		{"quote in run", "process w {\n  run exabgp healthcheck --cmd \"curl 'x\";\n}\n" + exaNeighborConf("w"), nil,
			"exabgp.conf:2: --command: a ' is not closed"},
		{"bad community", "process w {\n  run exabgp healthcheck --ip 203.0.113.1 --community 65536:1;\n}\n" + exaNeighborConf("w"), nil,
			`exabgp.conf:2: --community: "65536:1" is not a community`},
		{"config file line", "process w {\n  run exabgp healthcheck --config /etc/hc.conf;\n}\n" + exaNeighborConf("w"),
			map[string]string{"/etc/hc.conf": "# web\nip = 203.0.113.1\nrise = many\n"}, `/etc/hc.conf:3: --rise "many"`},
		{"config file unknown option", "process w {\n  run exabgp healthcheck -F /etc/hc.conf;\n}\n" + exaNeighborConf("w"),
			map[string]string{"/etc/hc.conf": "ip = 203.0.113.1\n\nfrobnicate = yes\n"}, `/etc/hc.conf:3: --frobnicate is not a healthcheck option`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exaConvert(t, tc.conf, tc.files)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to start with %q", err, tc.want)
			}
		})
	}
}

// TestExaBGPIssues: what is well formed but cannot be converted is an
// issue with its file and line, and the rest is still converted.
func TestExaBGPIssues(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       string
	}{
		{"not a healthcheck", "process feed {\n  run /usr/local/bin/feed;\n}\n" + exaNeighborConf("feed"), "exabgp.conf:2: process feed runs \"/usr/local/bin/feed\", not ExaBGP's healthcheck"},
		{"unknown option", "process w {\n  run exabgp healthcheck --frobnicate --ip 203.0.113.1;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --frobnicate is not a healthcheck option"},
		{"ambiguous option", "process w {\n  run exabgp healthcheck --in 3 --ip 203.0.113.1;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --in is ambiguous (increase, interval)"},
		{"config not found", "process w {\n  run exabgp healthcheck --config /etc/missing.conf;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --config /etc/missing.conf: file does not exist"},
		{"no ip", "process w {\n  run exabgp healthcheck --cmd true;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: no --ip"},
		{"interval 0", "process w {\n  run exabgp healthcheck --interval 0 --ip 203.0.113.1;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --interval 0 announces once and exits"},
		{"unused healthcheck", "process w {\n  run exabgp healthcheck --ip 203.0.113.1;\n}\n" + exaNeighborConf(), "exabgp.conf:2: process w: no neighbor's api names it"},
		{"static route", "neighbor 198.18.1.1 {\n  local-as 65001;\n  peer-as 65000;\n  router-id 198.18.1.2;\n  static {\n    route 203.0.113.9/32 next-hop self;\n  }\n}\n",
			`exabgp.conf:6: static "route 203.0.113.9/32 next-hop self": anycastd announces only VIPs guarded by checks`},
		{"announce block", "neighbor 198.18.1.1 {\n  local-as 65001;\n  peer-as 65000;\n  router-id 198.18.1.2;\n  announce {\n    ipv4 {\n      unicast 203.0.113.9/32 next-hop self;\n    }\n  }\n}\n",
			`exabgp.conf:7: announce "unicast 203.0.113.9/32 next-hop self"`},
		{"unknown neighbor keyword", "neighbor 198.18.1.1 {\n  local-as 65001;\n  peer-as 65000;\n  router-id 198.18.1.2;\n  frobnicate on;\n}\n", `exabgp.conf:5: "frobnicate on" is not a neighbor setting anycastd knows`},
		{"two local ASes", exaNeighborConf() + "neighbor 198.18.1.5 {\n  local-as 65002;\n  peer-as 65000;\n}\n", "the neighbors have different local-as (65001, 65002)"},
		{"foreign AS path", "process w {\n  run exabgp healthcheck --ip 203.0.113.1 --as-path \"65001 64999\";\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --as-path 65001 64999: anycastd prepends only copies of its own AS (65001)"},
		{"execute", "process w {\n  run exabgp healthcheck --ip 203.0.113.1 --up-execute /bin/notify;\n}\n" + exaNeighborConf("w"), "exabgp.conf:2: process w: --up-execute /bin/notify: anycastd runs no command"},
		{"md5 too long", "neighbor 198.18.1.1 {\n  local-as 65001;\n  peer-as 65000;\n  router-id 198.18.1.2;\n  md5-password " + strings.Repeat("k", 81) + ";\n}\n", "exabgp.conf:5: neighbor 198.18.1.1: md5-password is longer than 80 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := exaConvert(t, tc.conf, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := issueLines(res)
			if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, tc.want) }) {
				t.Errorf("issues:\n%s\nwant one starting with %q", strings.Join(got, "\n"), tc.want)
			}
			if !strings.Contains(string(res.TOML), "# NOT CONVERTED:") {
				t.Errorf("the output does not list the issues:\n%s", res.TOML)
			}
		})
	}
}

// TestExaBGPOptions converts single options and checks the lines a user
// would look for, and that anycastd accepts the result.
func TestExaBGPOptions(t *testing.T) {
	neighbors := "neighbor 198.18.1.1 {\n  router-id 198.18.1.2;\n  local-as 65001;\n  peer-as 65000;\n  api { processes [ w ]; }\n}\n" +
		"neighbor 198.18.1.5 {\n  router-id 198.18.1.2;\n  local-as 65001;\n  peer-as 65000;\n  api { processes [ w ]; }\n}\n"
	for _, tc := range []struct {
		name, run string
		want, not []string
	}{
		{"withdraw-on-down", "--ip 203.0.113.1 --withdraw-on-down", []string{"# --withdraw-on-down: anycastd's default"}, []string{`on_failure = "degrade"`, "[vip.degraded]"}},
		{"degrade", "--ip 203.0.113.1 --down-metric 3000", []string{`on_failure = "degrade"`, "med = 3000", "med = 100 "}, nil},
		{"equals and short forms", "--ip=203.0.113.1 -i7 -f 2 -t1 --name=www", []string{`interval = "7s"`, `fast_interval = "2s"`, `timeout = "1s"`, `name = "www"`}, nil},
		{"prefix of a long option", "--ip 203.0.113.1 --fast 3 --withdraw", []string{`fast_interval = "3s"`}, []string{`on_failure = "degrade"`}},
		{"neighbor", "--ip 203.0.113.1 --neighbor 198.18.1.5", []string{`peers = ["198.18.1.5"]`}, nil},
		{"as-path prepends", "--ip 203.0.113.1 --as-path '65001 65001 65001'", []string{"prepend = 2"}, nil},
		{"communities", "--ip 203.0.113.1 --community '[ 65001:1, no-export 4259905538 65001:1 ]' --large-community 65001:2:3",
			[]string{`communities = ["65001:1", "no-export", "65001:2"]`, `large_communities = ["65001:2:3"]`}, nil},
		{"increase splits", "--ip 203.0.113.1 --ip 203.0.113.2 --increase 10", []string{"med = 100 ", "med = 110 ", `name = "w-2"`, "med = 1010 "}, nil},
		{"deaggregate", "--ip 203.0.113.8/30 --deaggregate-networks --increase 0", []string{`prefixes = ["203.0.113.8/32", "203.0.113.9/32", "203.0.113.10/32", "203.0.113.11/32"]`}, []string{"allow_aggregate"}},
		{"network", "--ip 203.0.113.8/30", []string{`prefixes = ["203.0.113.8/30"]`, "allow_aggregate = true"}, nil},
		{"no command", "--ip 203.0.113.1", []string{`command = ["true"]`}, nil},
		{"local preference", "--ip 203.0.113.1 --local-preference 300", []string{"local_pref = 300"}, nil},
		{"maintenance file of one VIP", "--ip 203.0.113.1 --disable /etc/maint", []string{`maintenance_file = "/etc/maint"`}, nil},
		{"next hop", "--ip 203.0.113.1 --next-hop 198.18.1.9", []string{`next_hop_ipv4 = "198.18.1.9"`}, nil},
		{"interface", "--ip 203.0.113.1 --ip-ifname 203.0.113.1%dummy0 --no-ip-setup", []string{"[interface]", `name = "dummy0"`, "manage = false"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := "process w {\n  run exabgp healthcheck " + tc.run + ";\n}\n" + neighbors
			res, err := exaConvert(t, conf, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantClean(t, res, tc.want, tc.not)
		})
	}
}

// TestHealthcheckArgs: the run lines that start the healthcheck.
func TestHealthcheckArgs(t *testing.T) {
	for run, want := range map[string]bool{
		"exabgp healthcheck --ip 203.0.113.1":                                             true,
		"python -m exabgp healthcheck --ip 203.0.113.1":                                   true,
		"/usr/bin/python3 -m exabgp healthcheck --ip 203.0.113.1":                         true,
		"python3 -m exabgp.application.healthcheck --ip 203.0.113.1":                      true,
		"/usr/bin/exabgp-healthcheck --ip 203.0.113.1":                                    true,
		"/usr/local/bin/healthcheck --ip 203.0.113.1":                                     true,
		"python3 /usr/lib/python3/dist-packages/exabgp/application/healthcheck.py --ip 1": true,
		"/usr/bin/env python3 -m exabgp healthcheck --ip 203.0.113.1":                     true,
		"/etc/exabgp/announce.sh":                                                         false,
		"python3 /etc/exabgp/feed.py":                                                     false,
		"exabgp --version":                                                                false,
		"python3 -u -m exabgp healthcheck --ip 203.0.113.1":                               true,
		"/usr/local/bin/healthcheck-nginx --ip 203.0.113.1":                               false,
		"/usr/bin/python3 /usr/lib/python3/dist-packages/exabgp/application/cli.py --x 1": false,
	} {
		argv, _, err := splitShell(run)
		if err != nil {
			t.Fatal(err)
		}
		args, got := healthcheckArgs(argv)
		if got != want {
			t.Errorf("%q: healthcheck %v, want %v", run, got, want)
		}
		if got && (len(args) != 2 || !strings.HasPrefix(args[0], "--ip")) {
			t.Errorf("%q: args %q", run, args)
		}
	}
}

// TestParseHCArgs: argparse's forms, and its optional value.
func TestParseHCArgs(t *testing.T) {
	a := hcArgs{}
	err := parseHCArgs([]string{"-sF", "local0", "--syslog-facility", "--debug", "-c", "true", "--cmd=false", "--ip", "203.0.113.1", "--ip=203.0.113.2"}, "f", 1, a)
	if err != nil {
		t.Fatal(err)
	}
	if got := a["syslog-facility"]; len(got) != 2 || got[0].v != "local0" || got[1].v != "" {
		t.Errorf("syslog-facility = %v", got)
	}
	if v, _ := a.last("command"); v.v != "false" {
		t.Errorf("command = %q, want the last one", v.v)
	}
	if len(a["ip"]) != 2 || a["debug"] == nil {
		t.Errorf("ip = %v, debug = %v", a["ip"], a["debug"])
	}
	for _, bad := range [][]string{{"--interval"}, {"--debug=yes"}, {"stray"}, {"-x"}} {
		if err := parseHCArgs(bad, "f", 1, hcArgs{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzExaBGP: any input either converts (an output is produced) or is a
// *SyntaxError with a line; never a panic.
func FuzzExaBGP(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/golden/exabgp-*")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "exabgp.conf")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("group g { local-as 1; peer-as 2; process p { run exabgp healthcheck --ip 203.0.113.1 -F x; } neighbor 198.18.1.1 { } }"))
	f.Add([]byte("template { neighbor t { api { processes [ p ]; } } } process p { run healthcheck --ip 2001:db8::/126 --deaggregate-networks --start-ip -7; } neighbor 198.18.1.1 { inherit t; }"))
	o := Options{ReadFile: func(string) ([]byte, error) { return []byte("interval = 2\nip = 203.0.113.1\nfall\n"), nil }}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert("exabgp", []Input{{Name: "exabgp.conf", Data: data}}, o)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("error %v: want a *SyntaxError with a line", err)
			}
			return
		}
		if res == nil || len(res.TOML) == 0 {
			t.Fatal("no output")
		}
	})
}

// TestExaBGPProcessFeeds: which neighbors get a healthcheck's VIP, and
// the families that follows for them.
func TestExaBGPProcessFeeds(t *testing.T) {
	nb := func(addr, body string) string {
		return "neighbor " + addr + " {\n  router-id 198.18.1.2;\n  local-as 65001;\n  peer-as 65000;\n" + body + "}\n"
	}
	hc := "process watch-web {\n  run exabgp healthcheck --ip 203.0.113.1;\n}\n"
	for _, tc := range []struct {
		name, conf string
		want       []string
		not        []string
	}{
		{"ExaBGP 3: no api anywhere", hc + nb("198.18.1.1", "") + nb("198.18.1.5", ""),
			[]string{"each top-level process is taken to feed every neighbor"}, []string{"peers ="}},
		{"processes-match", hc + nb("198.18.1.1", "  api { processes-match [ \"^watch-\" ]; }\n") + nb("198.18.1.5", "  api { processes [ other ]; }\n") +
			"process other {\n  run exabgp healthcheck --ip 203.0.113.2;\n}\n",
			[]string{`peers = ["198.18.1.1"]`, `peers = ["198.18.1.5"]`}, []string{"taken to feed every neighbor"}},
		{"a process in a neighbor", nb("198.18.1.1", hc) + nb("198.18.1.5", ""),
			[]string{`peers = ["198.18.1.1"]`}, nil},
		{"ipv6 on an IPv4 session without IPv6 VIPs", hc + nb("198.18.1.1", "  family { ipv4 unicast; ipv6 unicast; }\n  api { processes [ watch-web ]; }\n"),
			[]string{`families = ["ipv4"]`, "ipv6 unicast left out"}, nil},
		{"--neighbor narrows the families", "process w {\n  run exabgp healthcheck --ip 2001:db8::1 --neighbor 2001:db8:ff::1;\n}\n" +
			nb("198.18.1.1", "  api { processes [ w ]; }\n") + nb("2001:db8:ff::1", "  api { processes [ w ]; }\n"),
			[]string{`peers = ["2001:db8:ff::1"]`}, []string{"next_hop_ipv6", `families = ["ipv4", "ipv6"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := exaConvert(t, tc.conf, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantClean(t, res, tc.want, tc.not)
		})
	}
}

// TestExaBGPSameAddressTwice: two healthchecks announcing one address
// cannot be two VIPs.
func TestExaBGPSameAddressTwice(t *testing.T) {
	conf := "process a {\n  run exabgp healthcheck --ip 203.0.113.1 --ip 203.0.113.1;\n}\nprocess b {\n  run exabgp healthcheck --ip 203.0.113.2 --ip 203.0.113.1/32;\n}\n" + exaNeighborConf("a", "b")
	res, err := exaConvert(t, conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "exabgp.conf:5: process b: --ip 203.0.113.1/32: process a announces it too"
	if len(res.Issues) != 1 || !strings.HasPrefix(res.Issues[0].String(), want) {
		t.Fatalf("issues %v, want one starting with %q", res.Issues, want)
	}
	if !strings.Contains(string(res.TOML), `prefixes = ["203.0.113.1/32"]`) || !strings.Contains(string(res.TOML), `prefixes = ["203.0.113.2/32"]`) {
		t.Errorf("each address should stay with one VIP:\n%s", res.TOML)
	}
}

// TestExaBGPNextHops: the healthchecks a session carries must agree on
// the next hop of each family (anycastd has one per session), where no
// --next-hop is ExaBGP's self; a disagreement is an issue at the later
// healthcheck's line naming both, never a next hop silently moved.
func TestExaBGPNextHops(t *testing.T) {
	proc := func(name, opts string) string {
		return "process " + name + " {\n  run exabgp healthcheck --cmd true --withdraw-on-down " + opts + ";\n}\n"
	}
	nb := func(addr, body string) string {
		return "neighbor " + addr + " {\n  router-id 198.18.0.9;\n  local-as 65001;\n  peer-as 65000;\n" + body + "  api { processes [ a b ]; }\n}\n"
	}
	v4 := nb("198.18.0.1", "  local-address 198.18.0.9;\n")
	v6 := nb("2001:db8:ff::1", "  local-address 2001:db8:ff::9;\n")
	for _, tc := range []struct {
		name, conf string
		issues     []string // each: the start of one issue, in order
		has        []string // in the issues or the output
		want, not  []string // in the output
	}{
		{"explicit, then self (the trial's shape)", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.77") + proc("b", "--ip 203.0.113.2") + v4,
			[]string{"exabgp.conf:5: neighbor 198.18.0.1: process b sent its IPv4 VIPs (203.0.113.2/32) with next-hop self, that is 198.18.0.9 (the session's local-address), while process a (exabgp.conf:2) sent its own (203.0.113.1/32) with --next-hop 198.18.0.77"},
			[]string{"next_hop_ipv4 of the [[bgp.peer]]", "announce them over separate sessions"}, nil, nil},
		{"self, then explicit", proc("a", "--ip 203.0.113.1") + proc("b", "--ip 203.0.113.2 -N 198.18.0.77") + v4,
			[]string{"exabgp.conf:5: neighbor 198.18.0.1: process b sent its IPv4 VIPs (203.0.113.2/32) with --next-hop 198.18.0.77, while process a (exabgp.conf:2) sent its own (203.0.113.1/32) with next-hop self"}, nil, nil, nil},
		{"explicit equal to the local-address", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.9") + proc("b", "--ip 203.0.113.2") + v4,
			nil, nil, []string{`next_hop_ipv4 = "198.18.0.9"`, "process b sent next-hop self, the same address"}, nil},
		{"all self", proc("a", "--ip 203.0.113.1") + proc("b", "--ip 203.0.113.2") + v4, nil, nil, nil, []string{"next_hop_ipv4 ="}},
		{"self without a local-address", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.9") + proc("b", "--ip 203.0.113.2") + nb("198.18.0.1", ""),
			[]string{"exabgp.conf:5: neighbor 198.18.0.1: process b sent its IPv4 VIPs (203.0.113.2/32) with next-hop self, that is the session's local address (neighbor 198.18.0.1 gives no local-address)"}, nil, nil, nil},
		{"only the sessions both feed", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.77 --neighbor 198.18.0.1") + proc("b", "--ip 203.0.113.2 --neighbor 198.18.0.5") +
			v4 + nb("198.18.0.5", "  local-address 198.18.0.9;\n"), nil, nil, []string{`next_hop_ipv4 = "198.18.0.77"`}, nil},
		{"IPv4 over IPv6: explicit and self", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.77") + proc("b", "--ip 203.0.113.2") + v6,
			[]string{"exabgp.conf:5: neighbor 2001:db8:ff::1: process b sent its IPv4 VIPs (203.0.113.2/32) with next-hop self, that is 198.18.0.9 (ExaBGP's self for IPv4 routes over an IPv6 session is the router-id), while process a (exabgp.conf:2) sent its own (203.0.113.1/32) with --next-hop 198.18.0.77"}, nil, nil, nil},
		{"IPv4 over IPv6: all self is the router-id", proc("a", "--ip 203.0.113.1") + proc("b", "--ip 203.0.113.2") + v6,
			nil, nil, []string{`next_hop_ipv4 = "198.18.0.9"`, "ExaBGP's next-hop self for IPv4 routes over an IPv6 session is the router-id"}, nil},
		{"IPv4 over IPv6: the router-id given and self", proc("a", "--ip 203.0.113.1 --next-hop 198.18.0.9") + proc("b", "--ip 203.0.113.2") + v6,
			nil, nil, []string{`next_hop_ipv4 = "198.18.0.9"`}, nil},
		{"IPv4 over IPv6: the session's IPv6 address and self", proc("a", "--ip 203.0.113.1 --next-hop 2001:db8:ff::9") + proc("b", "--ip 203.0.113.2") + v6,
			[]string{"exabgp.conf:5: neighbor 2001:db8:ff::1: process b sent its IPv4 VIPs (203.0.113.2/32) with next-hop self, that is 198.18.0.9"}, nil, nil, nil},
		{"IPv6 over IPv4: explicit and self", proc("a", "--ip 2001:db8::1 --next-hop 2001:db8:ff::9") + proc("b", "--ip 2001:db8::2") + v4,
			[]string{"exabgp.conf:5: neighbor 198.18.0.1: process b sent its IPv6 VIPs (2001:db8::2/128) with next-hop self, which ExaBGP cannot send for IPv6 routes over an IPv4 session, while process a"}, nil, nil, nil},
		{"--next-hop self", proc("a", "--ip 203.0.113.1 --next-hop self") + proc("b", "--ip 203.0.113.2") + v4,
			[]string{"exabgp.conf:2: process a: --next-hop self: the healthcheck takes an IP address only and does not start"}, nil, nil, []string{"next_hop_ipv4 ="}},
		{"--next-hop self and an explicit one", proc("a", "--ip 203.0.113.1 --next-hop=self") + proc("b", "--ip 203.0.113.2 --next-hop 198.18.0.77") + v4,
			[]string{"exabgp.conf:2: process a: --next-hop self:", "exabgp.conf:5: neighbor 198.18.0.1: process b sent its IPv4 VIPs (203.0.113.2/32) with --next-hop 198.18.0.77, while process a (exabgp.conf:2) sent its own (203.0.113.1/32) with next-hop self, that is 198.18.0.9"}, nil, nil, nil},
		{"an IPv6 next hop for IPv4 VIPs over IPv4", proc("a", "--ip 203.0.113.1 --ip 2001:db8::1 --next-hop 2001:db8:ff::9") + proc("b", "--ip 203.0.113.2") + v4,
			[]string{"exabgp.conf:2: process a: --next-hop 2001:db8:ff::9 for its IPv4 VIPs (203.0.113.1/32) to neighbor 198.18.0.1: next_hop_ipv4 must be an IPv4 address"},
			nil, []string{`next_hop_ipv6 = "2001:db8:ff::9"`}, []string{"next_hop_ipv4 ="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := exaConvert(t, tc.conf, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := string(res.TOML)
			got := issueLines(res)
			if len(got) != len(tc.issues) {
				t.Fatalf("issues:\n%s\nwant %d:\n%s\noutput:\n%s", strings.Join(got, "\n"), len(tc.issues), strings.Join(tc.issues, "\n"), out)
			}
			for i, w := range tc.issues {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("issue %d:\n%s\nwant it to start with\n%s", i, got[i], w)
				}
			}
			for _, w := range tc.has {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("no %q in the issues:\n%s", w, strings.Join(got, "\n"))
				}
			}
			if len(tc.issues) == 0 && res.Invalid != nil {
				t.Errorf("anycastd does not accept the output: %v\n%s", res.Invalid, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("%q in:\n%s", w, out)
				}
			}
		})
	}
}

// wantClean fails unless res converted without issues into valid TOML
// that has every line of want and none of not.
func wantClean(t *testing.T, res *Result, want, not []string) {
	t.Helper()
	out := string(res.TOML)
	if len(res.Issues) > 0 || res.Invalid != nil {
		t.Fatalf("issues %v, invalid %v:\n%s", res.Issues, res.Invalid, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in:\n%s", w, out)
		}
	}
	for _, w := range not {
		if strings.Contains(out, w) {
			t.Errorf("%q in:\n%s", w, out)
		}
	}
}
