//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/integration/lab"
)

// Session settings against BIRD (integration/testdata/sessions): GTSM,
// what the router learns about the host, IPv4 over an IPv6 session, and
// link-local peering. Each case writes the router's bird.conf and the site's
// anycastd.toml.
const (
	sessionsTopo = "integration/testdata/sessions/sessions.clab.yml"
	sessVIP4     = "203.0.113.40/32"
	sessVIP6     = "2001:db8:40::1/128"
)

// birdSession is the router's side of the one session: the neighbor line and
// the protocol body.
type birdSession struct {
	neighbor string // e.g. "198.18.60.2", "fe80::2%eth-r"
	options  string // extra protocol lines, e.g. "ttl security on;"
	channels string // e.g. "ipv4 { import all; export none; };"
	active   bool   // BIRD connects too (else passive: the site connects)
}

func (b birdSession) conf() string {
	passive := "passive on;"
	if b.active {
		passive = ""
	}
	return fmt.Sprintf(`log stderr all;
router id 198.18.60.1;
protocol device {
}
protocol bgp site {
	local as 65010;
	neighbor %s as 65300;
	%s
	hold time 3;
	keepalive time 1;
	connect retry time 1;
	%s
	%s
}
`, b.neighbor, passive, b.options, b.channels)
}

// siteConf is the site's anycastd.toml with peerLines in its [[bgp.peer]]
// and the VIP prefixes vips.
func siteConf(peerLines string, vips ...string) string {
	return fmt.Sprintf(`[bgp]
asn = 65300
router_id = "198.18.60.2"
listen_port = 0

[[bgp.peer]]
asn = 65010
hold_time = "3s"
connect_retry = "1s"
%s

[node]
drain_time = "0s" # the lab's teardown need not wait

[interface]
manage = false

[api]
listen = ""

[metrics]
listen = ""

[[check]]
name = "up"
type = "exec"
command = ["true"]
interval = "200ms"
rise = 1

[[vip]]
name = "web"
prefixes = ["%s"]
checks = ["up"]
`, peerLines, strings.Join(vips, `", "`))
}

// sessionsLab is a running sessions lab with a client of the site's API.
type sessionsLab struct {
	*lab.Lab
	api pb.AnycastdServiceClient
}

// startSessions starts the sessions lab with the given router and site
// configurations (birdConf, if given, is the whole bird.conf instead of
// bird's). The site's API listens on a unix socket; with
// bird.active the site also listens for BGP (port 179).
func startSessions(t *testing.T, bird birdSession, site string, birdConf ...string) *sessionsLab {
	t.Helper()
	dir, err := os.MkdirTemp("", "acd-sess") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	site = strings.Replace(site, "[api]\nlisten = \"\"\n", "[api]\nlisten = \"unix://"+sock+"\"\n", 1)
	if bird.active {
		site = strings.Replace(site, "listen_port = 0\n", "listen_port = 179\n", 1)
	}
	l := startLab(t, sessionsTopo, func(topo *lab.Topology) {
		conf := bird.conf()
		if len(birdConf) > 0 { // a whole bird.conf instead
			conf = birdConf[0]
		}
		if err := topo.SetFile("router", "bird.conf", []byte(conf)); err != nil {
			t.Fatal(err)
		}
		if err := topo.SetFile("site", "anycastd.toml", []byte(site)); err != nil {
			t.Fatal(err)
		}
	})
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sessionsLab{Lab: l, api: pb.NewAnycastdServiceClient(conn)}
}

// nextHopSent is a condition: anycastd's API (anycastctl routes) says it
// sends prefix to its one peer with next hop want.
func (l *sessionsLab) nextHopSent(prefix, want string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := l.api.ListRoutes(ctx, &pb.ListRoutesRequest{})
		if err != nil {
			return err
		}
		for _, p := range resp.GetPeers() {
			for _, r := range p.GetRoutes() {
				if r.GetPrefix() != prefix {
					continue
				}
				if r.GetNextHop() != want {
					return fmt.Errorf("anycastd: %s sent to %s with next hop %q, want %q", prefix, p.GetPeer(), r.GetNextHop(), want)
				}
				return nil
			}
		}
		return fmt.Errorf("anycastd: %s is not in the routes sent: %v", prefix, resp)
	}
}

// lastError returns the LAST ERROR of anycastd's one session.
func (l *sessionsLab) lastError() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := l.api.ListPeers(ctx, &pb.ListPeersRequest{})
	if err != nil {
		return "", err
	}
	if len(resp.GetPeers()) != 1 {
		return "", fmt.Errorf("anycastd has %d peers, want 1", len(resp.GetPeers()))
	}
	return resp.GetPeers()[0].GetLastError(), nil
}

// birdUp is a condition: BIRD's protocol site is Established.
func birdUp(l *sessionsLab) func() error {
	return func() error {
		out, err := l.Birdc("router", "show protocols site")
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`(?m)^site\s.*Established`).MatchString(out) {
			return fmt.Errorf("BIRD: session with the site not Established:\n%s", out)
		}
		return nil
	}
}

// birdVia is a condition: BIRD has prefix from the site, and its route
// details contain every one of want (e.g. "via 2001:db8:ff60::2 on eth-r").
func birdVia(l *sessionsLab, prefix string, want ...string) func() error {
	return func() error {
		out, err := l.Birdc("router", "show route for "+prefix+" all")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "[site ") {
			return fmt.Errorf("BIRD: no route for %s from the site:\n%s", prefix, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("BIRD: route for %s lacks %q:\n%s", prefix, w, out)
			}
		}
		return nil
	}
}

// TestSessionGTSM: BIRD with `ttl security on` (RFC 5082) accepts the
// session only from a site with ttl_security_hops, over IPv4 and IPv6; the
// VIP arrives. Without the key the session never comes up.
func TestSessionGTSM(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	cases := []struct {
		name     string
		neighbor string // the site, as BIRD sees it
		peer     string // the router, as anycastd sees it
		family   string
		vip      string
		gtsm     bool
		incoming bool // BIRD connects, the site only accepts
	}{
		{"ipv4", "198.18.60.2", "198.18.60.1", "ipv4", sessVIP4, true, false},
		{"ipv6", "2001:db8:ff60::2", "2001:db8:ff60::1", "ipv6", sessVIP6, true, false},
		{"ipv4 incoming", "198.18.60.2", "198.18.60.1", "ipv4", sessVIP4, true, true},
		{"ipv4 without ttl_security_hops", "198.18.60.2", "198.18.60.1", "ipv4", sessVIP4, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			peer := fmt.Sprintf("address = %q", c.peer)
			if c.gtsm {
				peer += "\nttl_security_hops = 1"
			}
			if c.incoming {
				peer += "\npassive = true"
			}
			l := startSessions(t, birdSession{
				neighbor: c.neighbor,
				options:  "ttl security on;",
				channels: c.family + " { import all; export none; };",
				active:   c.incoming,
			}, siteConf(peer, c.vip))
			if !c.gtsm {
				// GoBGP sends with TTL 1 to a directly connected eBGP
				// peer; BIRD drops it. Four connect retries (1 s each).
				never(t, 4*time.Second, 100*time.Millisecond, "session must stay down without GTSM", func() error {
					if birdUp(l)() == nil {
						return fmt.Errorf("BIRD with ttl security on established a session with a site sending TTL 1")
					}
					return nil
				})
				return
			}
			took := eventually(t, 20*time.Second, 50*time.Millisecond, "BIRD (ttl security on) has the VIP", all(birdUp(l), birdVia(l, c.vip)))
			t.Logf("GTSM over %s: session up and %s at BIRD %v after the lab was up", c.family, c.vip, ms(took))
		})
	}
}

// TestSessionExtendedNextHop: IPv4 VIPs over an IPv6-only session, without
// next_hop_ipv4 (RFC 8950). BIRD with `extended next hop on` installs the
// IPv4 VIP via the site's IPv6 address, and anycastctl routes says so. A
// BIRD without it cannot take the route: anycastd logs why and shows it
// as the session's LAST ERROR.
func TestSessionExtendedNextHop(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	peer := "address = \"2001:db8:ff60::1\"\nfamilies = [\"ipv4\", \"ipv6\"]"
	t.Run("negotiated", func(t *testing.T) {
		l := startSessions(t, birdSession{
			neighbor: "2001:db8:ff60::2",
			channels: "ipv4 { import all; export none; extended next hop on; }; ipv6 { import all; export none; };",
		}, siteConf(peer, sessVIP4, sessVIP6))
		took := eventually(t, 20*time.Second, 50*time.Millisecond, "BIRD has the IPv4 VIP via the site's IPv6 address", all(
			birdVia(l, sessVIP4, "via 2001:db8:ff60::2 on eth-r", "BGP.next_hop: 2001:db8:ff60::2"),
			birdVia(l, sessVIP6, "via 2001:db8:ff60::2 on eth-r"),
		))
		eventually(t, 5*time.Second, 50*time.Millisecond, "anycastctl routes shows the IPv6 next hop", all(
			l.nextHopSent(sessVIP4, "2001:db8:ff60::2"),
			l.nextHopSent(sessVIP6, "2001:db8:ff60::2"),
		))
		if e, err := l.lastError(); err != nil || e != "" {
			t.Errorf("LAST ERROR = %q (%v), want none", e, err)
		}
		t.Logf("IPv4 over IPv6: BIRD installed %s via 2001:db8:ff60::2 %v after the lab was up", sessVIP4, ms(took))
	})
	t.Run("not negotiated", func(t *testing.T) {
		l := startSessions(t, birdSession{
			neighbor: "2001:db8:ff60::2",
			channels: "ipv4 { import all; export none; }; ipv6 { import all; export none; };",
		}, siteConf(peer, sessVIP4, sessVIP6))
		eventually(t, 20*time.Second, 50*time.Millisecond, "BIRD has the IPv6 VIP", birdVia(l, sessVIP6))
		eventually(t, 5*time.Second, 50*time.Millisecond, "LAST ERROR names the extended next hop", func() error {
			e, err := l.lastError()
			if err != nil {
				return err
			}
			if !strings.Contains(e, "extended next hop") {
				return fmt.Errorf("LAST ERROR = %q", e)
			}
			return nil
		})
		logged, err := l.Log("site", "anycastd")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`level=ERROR .*extended next hop.*peer=2001:db8:ff60::1`).MatchString(logged) {
			t.Errorf("anycastd logged no error about the extended next hop:\n%s", logged)
		}
		if birdVia(l, sessVIP4)() == nil {
			t.Errorf("BIRD without extended next hop has %s", sessVIP4)
		}
		e, _ := l.lastError()
		t.Logf("IPv4 over IPv6 to a BIRD without extended next hop: LAST ERROR %q", e)
	})
}

// TestSessionLinkLocal: a session over link-local addresses (the router is
// fe80::1%eth-e), outgoing and incoming, with and without TCP MD5. BIRD
// installs the IPv6 VIP via the site's link-local address (or via
// next_hop_ipv6 where set), and the IPv4 VIP too with the extended next
// hop; anycastctl routes shows the next hop BIRD gets. A wrong password
// keeps the session down.
func TestSessionLinkLocal(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	cases := []struct {
		name     string
		password string // the site's; BIRD's is md5Password when birdMD5
		birdMD5  bool
		incoming bool
		nh6      string // next_hop_ipv6; "": the default
		wantUp   bool
	}{
		{"outgoing", "", false, false, "", true},
		{"outgoing md5", md5Password, true, false, "", true},
		{"incoming md5", md5Password, true, true, "", true},
		{"outgoing next_hop_ipv6", "", false, false, "2001:db8:ff60::2", true},
		{"outgoing wrong md5", "not-the-secret", true, false, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			peer := "address = \"fe80::1%eth-e\"\nfamilies = [\"ipv4\", \"ipv6\"]"
			if c.password != "" {
				peer += fmt.Sprintf("\npassword = %q", c.password)
			}
			if c.incoming {
				peer += "\npassive = true"
			}
			nh6 := "fe80::2"
			if c.nh6 != "" {
				peer += fmt.Sprintf("\nnext_hop_ipv6 = %q", c.nh6)
				nh6 = c.nh6
			}
			opts := `interface "eth-r";`
			if c.birdMD5 {
				opts += fmt.Sprintf(" password %q;", md5Password)
			}
			l := startSessions(t, birdSession{
				neighbor: "fe80::2",
				options:  opts,
				channels: "ipv4 { import all; export none; extended next hop on; }; ipv6 { import all; export none; };",
				active:   c.incoming,
			}, siteConf(peer, sessVIP4, sessVIP6))
			if !c.wantUp {
				never(t, 4*time.Second, 100*time.Millisecond, "session must stay down with a wrong password", func() error {
					if birdUp(l)() == nil {
						return fmt.Errorf("BIRD established a session with a wrong TCP MD5 password")
					}
					return nil
				})
				return
			}
			took := eventually(t, 20*time.Second, 50*time.Millisecond, "BIRD has both VIPs via the site's link-local address", all(
				birdUp(l),
				birdVia(l, sessVIP6, "via "+nh6+" on eth-r"),
				birdVia(l, sessVIP4, "via fe80::2 on eth-r"),
			))
			eventually(t, 5*time.Second, 50*time.Millisecond, "anycastctl routes shows the next hop BIRD gets", all(
				l.nextHopSent(sessVIP6, nh6),
				l.nextHopSent(sessVIP4, "fe80::2"),
			))
			out, _ := l.Birdc("router", "show route for "+sessVIP6+" all")
			t.Logf("link-local %s: both VIPs at BIRD %v after the lab was up:\n%s", c.name, ms(took), strings.TrimSpace(out))
		})
	}
}

// TestSessionGTSMFRR: FRR with `neighbor X ttl-security hops 1` (r2 of the
// two-upstreams lab) accepts the session from a site with
// ttl_security_hops = 1, and has the VIP.
func TestSessionGTSMFRR(t *testing.T) {
	needLab(t, lab.RoleFRR)
	l := startLab(t, twoUpstreams, func(topo *lab.Topology) {
		frr, err := topo.Nodes["r2"].File("frr.conf")
		if err != nil {
			t.Fatal(err)
		}
		frr = replaceOnce(t, "r2's frr.conf", frr,
			" neighbor 198.18.32.2 passive\n", " neighbor 198.18.32.2 passive\n neighbor 198.18.32.2 ttl-security hops 1\n")
		if err := topo.SetFile("r2", "frr.conf", frr); err != nil {
			t.Fatal(err)
		}
		site, err := topo.Nodes["site"].File("anycastd.toml")
		if err != nil {
			t.Fatal(err)
		}
		site = replaceOnce(t, "site's anycastd.toml", site,
			"description = \"r2\"\n", "description = \"r2\"\nttl_security_hops = 1\n")
		if err := topo.SetFile("site", "anycastd.toml", site); err != nil {
			t.Fatal(err)
		}
	})
	took := eventually(t, 30*time.Second, 50*time.Millisecond, "r2 (ttl-security hops 1) has the VIP from the site", all(
		established(l, "r2", siteR2), bestFrom(l, "r2", vip3, siteR2)))
	t.Logf("GTSM with FRR: r2 has %s %v after the lab was up", vip3, ms(took))
}

// TestSessionRoleMismatch: BIRD in strict BGP role mode (RFC 9234,
// `require roles on`) refuses the site, which cannot send the role
// capability. GoBGP v4.8.0 drops the NOTIFICATION (Open Message Error,
// subcode 11 Role Mismatch) without reporting its code, so anycastd's
// warning and LAST ERROR name strict role mode as a cause, on connections
// either side opens.
func TestSessionRoleMismatch(t *testing.T) {
	needLab(t, lab.RoleBIRD)
	for _, incoming := range []bool{false, true} {
		name := map[bool]string{false: "outgoing", true: "incoming"}[incoming]
		t.Run(name, func(t *testing.T) {
			peer := "address = \"198.18.60.1\""
			if incoming {
				peer += "\npassive = true"
			}
			l := startSessions(t, birdSession{
				neighbor: "198.18.60.2",
				options:  "local role provider; require roles on;",
				channels: "ipv4 { import all; export none; };",
				active:   incoming,
			}, siteConf(peer, sessVIP4))
			eventually(t, 20*time.Second, 50*time.Millisecond, "LAST ERROR names strict BGP role mode", func() error {
				e, err := l.lastError()
				if err != nil {
					return err
				}
				if !strings.Contains(e, "RFC 9234") {
					return fmt.Errorf("LAST ERROR = %q", e)
				}
				return nil
			})
			logged, err := l.Log("site", "anycastd")
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`level=WARN .*RFC 9234`).MatchString(logged) {
				t.Errorf("anycastd logged no warning naming strict role mode:\n%s", logged)
			}
			if birdUp(l)() == nil {
				t.Errorf("BIRD in strict role mode established the session")
			}
			bird, _ := l.Birdc("router", "show protocols site")
			e, _ := l.lastError()
			t.Logf("%s, BIRD with require roles on:\n%s\nanycastd's LAST ERROR: %q", name, strings.TrimSpace(bird), e)
		})
	}
}
