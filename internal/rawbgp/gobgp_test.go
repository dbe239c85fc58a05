package rawbgp

// End-to-end tests against a real GoBGP v4 speaker embedded in the test, on
// 127.0.0.1 only.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

const (
	speakerAS = 65001
	testAS    = 65000
	loopback  = "127.0.0.1"
)

var (
	speakerID = netip.MustParseAddr("198.18.0.1")
	originNH  = netip.MustParseAddr("203.0.113.254") // next hop of routes GoBGP originates
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func family(afi api.Family_Afi) *api.AfiSafi {
	return &api.AfiSafi{Config: &api.AfiSafiConfig{
		Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}
}

// passivePeer is the speaker's view of the test: eBGP from 127.0.0.1 in
// AS 65000, waiting to be dialled, IPv4 unicast only.
func passivePeer() *api.Peer {
	return &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: loopback, PeerAsn: testAS},
		Transport: &api.Transport{PassiveMode: true},
	}
}

// startSpeaker runs a GoBGP server in AS 65001 listening on 127.0.0.1 with
// the given peer, and returns it with its "host:port". With
// RAWBGP_GOBGP_LOG=1 in the environment its debug log goes to the test
// output.
func startSpeaker(t *testing.T, peer *api.Peer) (*server.BgpServer, string) {
	t.Helper()
	logTo := io.Discard
	if os.Getenv("RAWBGP_GOBGP_LOG") != "" {
		logTo = t.Output()
	}
	s := server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug})), nil))
	go s.Serve()
	port := freePort(t)
	ctx := testCtx(t)
	err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: speakerAS, RouterId: speakerID.String(), ListenPort: int32(port), ListenAddresses: []string{loopback},
	}})
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
		t.Fatal(err)
	}
	// The peer starts Idle, and GoBGP closes a connection that arrives
	// then without a NOTIFICATION; wait until it is Active (or beyond).
	eventually(t, "the peer to leave Idle", func() bool {
		st := peerState(t, s).GetState().GetSessionState()
		return st != api.PeerState_SESSION_STATE_UNSPECIFIED && st != api.PeerState_SESSION_STATE_IDLE
	})
	return s, net.JoinHostPort(loopback, strconv.Itoa(port))
}

func peerState(t *testing.T, s *server.BgpServer) *api.Peer {
	t.Helper()
	var got *api.Peer
	err := s.ListPeer(testCtx(t), &api.ListPeerRequest{Address: loopback}, func(p *api.Peer) { got = p })
	if err != nil || got == nil {
		t.Fatalf("ListPeer: %v, %v", got, err)
	}
	return got
}

func established(t *testing.T, s *server.BgpServer) bool {
	return peerState(t, s).GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
}

// eventually polls cond every 10 ms until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// rib is a speaker's Adj-RIB-In from the test peer by prefix.
type rib map[string]route

// route is one path in it: its AS_PATH flattened and its MED.
type route struct {
	asPath []uint32
	med    *uint32
}

func adjIn(t *testing.T, s *server.BgpServer, f bgp.Family) rib {
	t.Helper()
	got := rib{}
	err := s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: loopback, Family: f},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var r route
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *bgp.PathAttributeAsPath:
						for _, seg := range a.Value {
							r.asPath = append(r.asPath, seg.GetAS()...)
						}
					case *bgp.PathAttributeMultiExitDisc:
						r.med = &a.Value
					}
				}
				got[prefix.String()] = r
			}
		})
	if err != nil {
		t.Fatalf("ListPath: %v", err)
	}
	return got
}

func (r rib) has(p netip.Prefix) bool { _, ok := r[p.String()]; return ok }

func testOpen(caps ...[]byte) Open {
	return Open{MyAS: testAS, HoldTime: 90, BGPID: routeID, Caps: caps}
}

func newOpen() Open {
	return testOpen(CapMP(AFIIPv4, SAFIUnicast), CapRouteRefresh(), CapFourOctetAS(testAS))
}

// announce4 is a valid eBGP UPDATE from the test for prefixes, with a
// 4-octet AS_PATH (or a 2-octet one for an OLD session) and MED 1, which
// tells it apart from the hostile UPDATEs below.
func announce4(old bool, ps ...netip.Prefix) []byte {
	path := ASPath4(Seq(testAS))
	if old {
		path = ASPath2(Seq(testAS))
	}
	return UpdateMsg(nil, Join(Origin(OriginIGP), path, NextHop(nh4), MED(1)), Prefixes(ps...))
}

func TestGoBGPSession(t *testing.T) {
	s, addr := startSpeaker(t, passivePeer())
	ctx := testCtx(t)
	p, err := Dial(ctx, addr, newOpen())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open, err := p.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if as, ok := open.FourOctetAS(); !ok || as != speakerAS || open.MyAS != speakerAS ||
		open.BGPID != speakerID || !open.HasMP(AFIIPv4, SAFIUnicast) {
		t.Fatalf("speaker OPEN = %+v", open)
	}
	eventually(t, "Established", func() bool { return established(t, s) })

	if err := p.Send(announce4(false, pfx4)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the route in Adj-RIB-In", func() bool { return adjIn(t, s, bgp.RF_IPv4_UC).has(pfx4) })
	if got := adjIn(t, s, bgp.RF_IPv4_UC)[pfx4.String()].asPath; !slices.Equal(got, []uint32{testAS}) {
		t.Fatalf("AS path of %s = %v", pfx4, got)
	}
	var received uint64
	for _, af := range peerState(t, s).GetAfiSafis() {
		if af.GetState().GetFamily().GetAfi() == api.Family_AFI_IP {
			received = af.GetState().GetReceived()
		}
	}
	if received != 1 {
		t.Errorf("IPv4 afi-safi state counts %d received routes, want 1", received)
	}

	// An unrecognized well-known attribute (type 200 without the Optional
	// flag) resets the session (RFC 4271 §6.3). (An attribute overrunning
	// the message does not: see TestGoBGPHostileInputs.)
	bad := UpdateMsg(nil, Join(Origin(OriginIGP), ASPath4(Seq(testAS)), NextHop(nh4),
		Attr(Transitive, 200, []byte{1, 2, 3})), Prefix(pfx4))
	if err := p.Send(bad); err != nil {
		t.Fatal(err)
	}
	code, sub, err := p.WaitNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != CodeUpdate || sub != SubUpdateUnrecognizedWellKnown {
		t.Fatalf("NOTIFICATION %d/%d, want %d/%d", code, sub, CodeUpdate, SubUpdateUnrecognizedWellKnown)
	}
	// GoBGP puts the offending attribute in the data (RFC 4271 §6.3).
	if data := p.LastNotification().Data; len(data) < 2 || data[1] != 200 {
		t.Errorf("NOTIFICATION data % x, want the attribute", data)
	}
	if _, err := p.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the NOTIFICATION: %v, want io.EOF", err)
	}
	eventually(t, "the session to drop", func() bool { return !established(t, s) })
	if adjIn(t, s, bgp.RF_IPv4_UC).has(pfx4) {
		t.Error("the route outlived the session")
	}
}

// TestGoBGPDialsOut lets the speaker connect to the test and checks what it
// announces over IPv4 and IPv6.
func TestGoBGPDialsOut(t *testing.T) {
	ln, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: loopback, PeerAsn: testAS},
		Transport: &api.Transport{RemotePort: uint32(ln.Addr().(*net.TCPAddr).Port)},
		AfiSafis:  []*api.AfiSafi{family(api.Family_AFI_IP), family(api.Family_AFI_IP6)},
	}
	s, _ := startSpeaker(t, peer)

	// Originate the routes before the session comes up: GoBGP v4.8.0 can
	// miss a path added at the moment a session becomes Established.
	n4, _ := bgp.NewIPAddrPrefix(host4)
	n6, _ := bgp.NewIPAddrPrefix(host6)
	nhAttr, _ := bgp.NewPathAttributeNextHop(originNH)
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: n6}}, nh6)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{
		{Family: bgp.RF_IPv4_UC, Nlri: n4, Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nhAttr}},
		{Family: bgp.RF_IPv6_UC, Nlri: n6, Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), mp}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	ctx := testCtx(t)
	p, err := Accept(ctx, ln, testOpen(CapMP(AFIIPv4, SAFIUnicast), CapMP(AFIIPv6, SAFIUnicast), CapFourOctetAS(testAS)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open, err := p.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !open.HasMP(AFIIPv4, SAFIUnicast) || !open.HasMP(AFIIPv6, SAFIUnicast) {
		t.Fatalf("speaker OPEN capabilities = %v", open.Caps)
	}
	seen := map[netip.Prefix]bool{}
	err = p.WaitUpdate(ctx, func(u Update) bool {
		ps, err := u.Announced()
		if err != nil {
			t.Errorf("UPDATE: %v", err)
		}
		for _, pfx := range ps {
			seen[pfx] = true
		}
		// GoBGP passes the next hop of a route it originates unchanged,
		// even to an eBGP peer on another subnet; only 0.0.0.0 means
		// "my address".
		if len(u.NLRI) > 0 {
			if a, ok := u.Attr(AttrNextHop); !ok || !slices.Equal(a.Value, originNH.AsSlice()) {
				t.Errorf("IPv4 NEXT_HOP = %v, want %v", a, originNH)
			}
		}
		if a, ok := u.Attr(AttrASPath); ok {
			if segs, err := ParseASPath(a.Value, true); err != nil || !slices.EqualFunc(segs, []Segment{Seq(speakerAS)}, segEqual) {
				t.Errorf("AS_PATH = %v, %v", segs, err)
			}
		}
		return seen[host4] && seen[host6]
	})
	if err != nil {
		t.Fatal(err)
	}
}

func segEqual(a, b Segment) bool { return a.Type == b.Type && slices.Equal(a.ASNs, b.ASNs) }

// outcome is what the speaker did with one hostile input.
type outcome struct {
	notified      bool   // a NOTIFICATION came back…
	code, subcode byte   // …with this code and subcode…
	data          []byte // …and this data
	closed        bool   // the speaker closed the connection
	// The rest is only known when the session survived.
	withdrawn bool     // 203.0.113.0/24 is gone from Adj-RIB-In (treat-as-withdraw)
	unchanged bool     // 203.0.113.0/24 still has MED 1, from before the input
	asPath    []uint32 // AS_PATH of 203.0.113.0/24 afterwards
}

func (o outcome) String() string {
	switch {
	case o.notified:
		return fmt.Sprintf("NOTIFICATION %d/%d data [% x], closed=%v", o.code, o.subcode, o.data, o.closed)
	case o.closed:
		return "closed without NOTIFICATION"
	case o.withdrawn:
		return "session up, route withdrawn"
	case o.unchanged:
		return "session up, route unchanged"
	}
	return fmt.Sprintf("session up, route replaced, AS path %v", o.asPath)
}

func (o outcome) equal(w outcome) bool {
	return o.notified == w.notified && o.code == w.code && o.subcode == w.subcode && bytes.Equal(o.data, w.data) && o.closed == w.closed &&
		o.withdrawn == w.withdrawn && o.unchanged == w.unchanged && slices.Equal(o.asPath, w.asPath)
}

// markerPfx is announced after each hostile UPDATE: the speaker handles a
// session's UPDATEs in order, so once the marker is in Adj-RIB-In the
// hostile UPDATE has been dealt with.
var markerPfx = netip.MustParsePrefix("203.0.113.255/32")

// observe watches the connection, answering KEEPALIVEs, until the speaker
// closes it, or, if markerSent, until the marker shows up in Adj-RIB-In.
func observe(t *testing.T, s *server.BgpServer, p *Peer, markerSent bool) outcome {
	t.Helper()
	var o outcome
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		m, err := p.Next(ctx)
		cancel()
		switch {
		case err == nil && m.Type == MsgKeepalive:
			_ = p.Send(Keepalive())
		case err == nil && m.Type == MsgNotification:
			n := p.LastNotification()
			o.notified, o.code, o.subcode, o.data = true, n.Code, n.Subcode, n.Data
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			o.closed = errors.Is(err, io.EOF)
			if !o.closed {
				t.Fatalf("reading: %v", err)
			}
			return o
		}
		if markerSent && !o.notified {
			if r := adjIn(t, s, bgp.RF_IPv4_UC); r.has(markerPfx) {
				rt, ok := r[pfx4.String()]
				o.withdrawn, o.asPath = !ok, rt.asPath
				o.unchanged = rt.med != nil && *rt.med == 1
				return o
			}
		}
	}
	t.Fatalf("no outcome after 8 s (so far %v)", o)
	return o
}

// TestGoBGPHostileInputs pins what GoBGP v4.8.0 does with inputs no real
// router should send. Each case gets a fresh speaker. For UPDATEs the test
// first announces 203.0.113.0/24 with MED 1, then sends the input, then a
// marker route. Where the table differs from the RFCs it says so; a GoBGP
// upgrade that changes a row should be looked at, not just re-pinned.
func TestGoBGPHostileInputs(t *testing.T) {
	base := func(extra ...[]byte) []byte {
		return Join(Origin(OriginIGP), ASPath4(Seq(testAS)), NextHop(nh4), Join(extra...))
	}
	shortOpen := newOpen().Marshal()[HeaderLen:][:9]
	overrunOpen := newOpen().Marshal()[HeaderLen:]
	overrunOpen[9] += 10
	tests := []struct {
		name string
		open Open   // default newOpen()
		old  bool   // OLD speaker: 2-octet AS_PATHs
		raw  []byte // sent instead of an OPEN, without a handshake
		msg  []byte // sent once Established
		want outcome
	}{{
		// RFC 4271 §5: attributes may come in any order. RFC 6793 §4.2.3:
		// AS_PATH 65000 23456 merged with AS4_PATH 4200000000.
		name: "a OLD speaker, AS4_PATH before AS_PATH",
		open: testOpen(CapMP(AFIIPv4, SAFIUnicast)), old: true,
		msg:  UpdateMsg(nil, Join(Origin(OriginIGP), AS4Path(Seq(4200000000)), NextHop(nh4), ASPath2(Seq(testAS, ASTrans))), Prefix(pfx4)),
		want: outcome{asPath: []uint32{testAS, 4200000000}},
	}, {
		// RFC 4271 §6.3, with the attribute as data.
		name: "b unrecognized well-known attribute 200",
		msg:  UpdateMsg(nil, base(Attr(Transitive, 200, []byte{1, 2, 3})), Prefix(pfx4)),
		want: outcome{notified: true, code: CodeUpdate, subcode: SubUpdateUnrecognizedWellKnown,
			data: Attr(Transitive, 200, []byte{1, 2, 3}), closed: true},
	}, {
		// The un-negotiated family wins over the bad ORIGIN, and GoBGP sends
		// error code 0, which RFC 4271 §4.5 does not define (RFC 4760 §7
		// suggests 3/9).
		name: "c ORIGIN 7 with MP_REACH IPv6 not negotiated",
		msg: UpdateMsg(nil, Join(Origin(7), ASPath4(Seq(testAS)), NextHop(nh4),
			MPReach(AFIIPv6, SAFIUnicast, nh6.AsSlice(), Prefix(pfx6))), Prefix(pfx4)),
		want: outcome{notified: true, closed: true},
	}, {
		// Accepted, though an eBGP peer must put its AS first (RFC 4271
		// §5.1.2); the first-AS check of §6.3 is a MAY that GoBGP skips by
		// default.
		name: "d empty AS_PATH on eBGP",
		msg:  UpdateMsg(nil, Join(Origin(OriginIGP), ASPath4(), NextHop(nh4)), Prefix(pfx4)),
		want: outcome{},
	}, {
		// RFC 7606 §7.3: treat-as-withdraw.
		name: "e NEXT_HOP of 5 octets",
		msg:  UpdateMsg(nil, Join(Origin(OriginIGP), ASPath4(Seq(testAS)), Attr(Transitive, AttrNextHop, []byte{127, 0, 0, 1, 0})), Prefix(pfx4)),
		want: outcome{withdrawn: true},
	}, {
		// GoBGP logs treat-as-withdraw but loses the NLRI, so nothing is
		// withdrawn and the old route stays. RFC 7606 §4 wants the NLRI
		// found through the Total Path Attribute Length and withdrawn.
		name: "f attribute length overruns the message",
		msg:  UpdateMsg(nil, base(AttrWithLength(Optional|Transitive, AttrCommunities, 200, []byte{0, 0, 0, 1})), Prefix(pfx4)),
		want: outcome{unchanged: true, asPath: []uint32{testAS}},
	}, {
		// RFC 4271 §6.1: Bad Message Length, but without the erroneous
		// length as data, which §6.1 requires.
		name: "g1 OPEN of 28 octets",
		raw:  Header(MsgOpen, shortOpen),
		want: outcome{notified: true, code: CodeHeader, subcode: SubHeaderBadLength, closed: true},
	}, {
		// RFC 4271 would fit 2/0 better; GoBGP reports Bad Message Length.
		name: "g2 OPEN parameters overrun the message",
		raw:  Header(MsgOpen, overrunOpen),
		want: outcome{notified: true, code: CodeHeader, subcode: SubHeaderBadLength, closed: true},
	}, {
		// RFC 4271 §6.2, but without the 2-octet supported version as
		// data, which §6.2 requires.
		name: "h OPEN version 3",
		raw:  Open{Version: 3, MyAS: testAS, HoldTime: 90, BGPID: routeID}.Marshal(),
		want: outcome{notified: true, code: CodeOpen, subcode: SubOpenUnsupportedVersion, closed: true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startSpeaker(t, passivePeer())
			ctx := testCtx(t)
			var p *Peer
			var err error
			if tt.raw != nil {
				if p, err = Connect(ctx, addr); err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				if err := p.Send(tt.raw); err != nil {
					t.Fatal(err)
				}
			} else {
				open := tt.open
				if open.Caps == nil {
					open = newOpen()
				}
				if p, err = Dial(ctx, addr, open); err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				if _, err := p.Handshake(ctx); err != nil {
					t.Fatal(err)
				}
				if err := p.Send(announce4(tt.old, pfx4)); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the route in Adj-RIB-In", func() bool { return adjIn(t, s, bgp.RF_IPv4_UC).has(pfx4) })
				for _, m := range [][]byte{tt.msg, announce4(tt.old, markerPfx)} {
					if err := p.Send(m); err != nil {
						t.Fatal(err)
					}
				}
			}
			o := observe(t, s, p, tt.raw == nil)
			if o.notified && !o.closed {
				o.closed = observe(t, s, p, false).closed
			}
			if !o.equal(tt.want) {
				t.Errorf("speaker did: %v\nwant: %v", o, tt.want)
			}
			// The speaker is still there, and its view of the session agrees.
			if tt.want.closed {
				eventually(t, "the session to drop", func() bool { return !established(t, s) })
			} else if !established(t, s) {
				t.Errorf("session not Established after %v", o)
			}
		})
	}
}
