// Package bgptest runs an in-process GoBGP server that plays the upstream
// router in tests: it accepts sessions, records what it receives and can
// originate prefixes of its own.
package bgptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Router is a GoBGP instance playing a router.
type Router struct {
	ASN  uint32
	Addr netip.Addr // listen address
	Port int
	s    *server.BgpServer
}

// Route is what the router holds for one prefix.
type Route struct {
	Prefix           netip.Prefix
	NextHop          string
	ASPath           []uint32
	Communities      []string // "65001:100"
	LargeCommunities []string // "65001:1:2"
	MED              *uint32
	LocalPref        *uint32
	From             string // neighbor address, "" for its own paths
}

// FreePort returns a TCP port that was free on addr a moment ago.
func FreePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a router with asn listening on addr (a free port), stopped at
// the end of the test.
func Start(t testing.TB, asn uint32, routerID string, addr netip.Addr) *Router {
	t.Helper()
	port := FreePort(t, addr)
	s := server.NewBgpServer(server.LoggerOption(DiscardLogger, nil))
	go s.Serve()
	ctx := context.Background()
	err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: routerID, ListenPort: int32(port), ListenAddresses: []string{addr.String()},
	}})
	if err != nil {
		t.Fatalf("starting test router: %v", err)
	}
	r := &Router{ASN: asn, Addr: addr, Port: port, s: s}
	t.Cleanup(r.Stop)
	return r
}

// Stop closes the router's sessions and listener and stops the instance.
func (r *Router) Stop() { r.s.Stop() }

// DisablePeer shuts the session with addr down administratively: the
// router sends a Cease NOTIFICATION (Administrative Shutdown, RFC 9003)
// carrying communication, then closes the connection, and stays down.
func (r *Router) DisablePeer(t testing.TB, addr netip.Addr, communication string) {
	t.Helper()
	if err := r.s.DisablePeer(context.Background(), &api.DisablePeerRequest{Address: addr.String(), Communication: communication}); err != nil {
		t.Fatalf("disabling peer %s on test router: %v", addr, err)
	}
}

// AddPeer configures a passive session towards addr/asn carrying both
// unicast families.
func (r *Router) AddPeer(t testing.TB, addr netip.Addr, asn uint32) {
	t.Helper()
	err := r.s.AddPeer(context.Background(), &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: addr.String(), PeerAsn: asn},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: r.Addr.String()},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3, ConnectRetry: 1}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}})
	if err != nil {
		t.Fatalf("adding peer %s to test router: %v", addr, err)
	}
}

// Originate makes the router announce prefix itself (to every peer).
func (r *Router) Originate(t testing.TB, prefix netip.Prefix) {
	t.Helper()
	nlri, _ := bgp.NewIPAddrPrefix(prefix)
	fam := bgp.RF_IPv4_UC
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}
	if prefix.Addr().Is4() {
		nh, _ := bgp.NewPathAttributeNextHop(r.Addr)
		attrs = append(attrs, nh)
	} else {
		fam = bgp.RF_IPv6_UC
		mp, _ := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.MustParseAddr("2001:db8:ffff::1"))
		attrs = append(attrs, mp)
	}
	if _, err := r.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: fam, Nlri: nlri, Attrs: attrs}}}); err != nil {
		t.Fatalf("originating %s: %v", prefix, err)
	}
}

// Routes returns every route the router holds in its RIB, keyed by prefix,
// best path only.
func (r *Router) Routes(t testing.TB) map[netip.Prefix]Route {
	t.Helper()
	out := make(map[netip.Prefix]Route)
	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(nlri bgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					if !p.Best {
						continue
					}
					rt, err := toRoute(nlri, p)
					if err != nil {
						t.Errorf("decoding path %s: %v", nlri, err)
						return
					}
					out[rt.Prefix] = rt
				}
			})
		if err != nil {
			t.Fatalf("listing routes: %v", err)
		}
	}
	return out
}

// Received returns only the routes learned from peers (not its own).
func (r *Router) Received(t testing.TB) map[netip.Prefix]Route {
	t.Helper()
	out := r.Routes(t)
	for p, rt := range out {
		if rt.From == "" {
			delete(out, p)
		}
	}
	return out
}

func toRoute(nlri bgp.NLRI, p *apiutil.Path) (Route, error) {
	pfx, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return Route{}, err
	}
	rt := Route{Prefix: pfx}
	if p.IsFromExternal || p.PeerASN != 0 { // learned from a peer, not originated
		rt.From = p.PeerAddress.String()
	}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			rt.NextHop = a.Value.String()
		case *bgp.PathAttributeMpReachNLRI:
			rt.NextHop = a.Nexthop.String()
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				rt.ASPath = append(rt.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			for _, c := range a.Value {
				rt.Communities = append(rt.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				rt.LargeCommunities = append(rt.LargeCommunities, c.String())
			}
		case *bgp.PathAttributeMultiExitDisc:
			v := a.Value
			rt.MED = &v
		case *bgp.PathAttributeLocalPref:
			v := a.Value
			rt.LocalPref = &v
		}
	}
	return rt, nil
}

// PeerState returns the session state of neighbor addr ("established", ...),
// its uptime and how many UPDATE messages the router has received from it.
func (r *Router) PeerState(t testing.TB, addr netip.Addr) (state string, updates uint64, uptime time.Time) {
	t.Helper()
	err := r.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		if s := p.GetState(); s != nil {
			state = map[api.PeerState_SessionState]string{
				api.PeerState_SESSION_STATE_ESTABLISHED: "established", api.PeerState_SESSION_STATE_IDLE: "idle",
				api.PeerState_SESSION_STATE_ACTIVE: "active", api.PeerState_SESSION_STATE_CONNECT: "connect",
				api.PeerState_SESSION_STATE_OPENSENT: "opensent", api.PeerState_SESSION_STATE_OPENCONFIRM: "openconfirm",
			}[s.SessionState]
			if m := s.GetMessages().GetReceived(); m != nil {
				updates = m.Update
			}
		}
		if ts := p.GetTimers().GetState().GetUptime(); ts != nil {
			uptime = ts.AsTime()
		}
	})
	if err != nil {
		t.Fatalf("listing peer %s: %v", addr, err)
	}
	return state, updates, uptime
}

// Eventually polls cond every 10ms until it is true or timeout passes, then
// fails the test with msg and the last value of describe().
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			d := ""
			if describe != nil {
				d = ": " + describe()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, msg, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Prefixes returns the sorted keys of a route map, for messages.
func Prefixes(m map[netip.Prefix]Route) []string {
	var out []string
	for p := range m {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// Itoa is strconv.Itoa, for building configs in tests.
func Itoa(i int) string { return strconv.Itoa(i) }

// DiscardLogger is a slog logger that writes nowhere.
var DiscardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// RemoteCaps returns the capabilities the session with addr received in
// the peer's OPEN (nil before it was received).
func (r *Router) RemoteCaps(t testing.TB, addr netip.Addr) []*api.Capability {
	t.Helper()
	var caps []*api.Capability
	err := r.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: addr.String()}, func(p *api.Peer) {
		caps = p.GetState().GetRemoteCap()
	})
	if err != nil {
		t.Fatalf("listing peer %s: %v", addr, err)
	}
	return caps
}
