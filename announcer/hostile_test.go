package announcer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/rawbgp"
	"github.com/anycastd/anycastd/internal/testutil"
)

// Hostile peers: a raw BGP peer (hand-built messages over plain TCP) sends
// what no real router would to the real speaker, while a second session
// with an ordinary router carries the VIP. Whatever the raw peer sends, the
// process stays up, only its own session is reset (or the UPDATE is treated
// as a withdrawal, RFC 7606), the other session keeps its route, and the
// VIP is announced to the raw peer again once it reconnects.

const (
	hostileAS  = 65010
	hostileMy  = 65001 // the speaker's AS in these tests
	hostileOld = 65010 // an RFC 6793 "OLD" speaker's AS (fits two octets)
)

var (
	rawAddr  = netip.MustParseAddr("127.0.0.3")
	rawID    = netip.MustParseAddr("198.18.0.3")
	junk4    = netip.MustParsePrefix("203.0.113.200/32") // what the raw peer announces
	probe4   = netip.MustParsePrefix("203.0.113.201/32") // a valid announcement after the hostile one
	rawNHop4 = rawAddr
)

// goodOpen is the raw peer's OPEN: AS 65010, IPv4 unicast, 4-octet AS
// unless old.
func goodOpen(old bool) rawbgp.Open {
	o := rawbgp.Open{MyAS: hostileAS, HoldTime: 90, BGPID: rawID,
		Caps: [][]byte{rawbgp.CapMP(1, 1), rawbgp.CapRouteRefresh()}}
	if !old {
		o.Caps = append(o.Caps, rawbgp.CapFourOctetAS(hostileAS))
	}
	return o
}

// validUpdate announces p from the raw peer (a 4-octet AS_PATH unless old).
func validUpdate(p netip.Prefix, old bool) []byte {
	path := rawbgp.ASPath4(rawbgp.Seq(hostileAS))
	if old {
		path = rawbgp.ASPath2(rawbgp.Seq(hostileOld))
	}
	return rawbgp.UpdateMsg(nil, rawbgp.Join(rawbgp.Origin(0), path, rawbgp.NextHop(rawNHop4)), rawbgp.Prefix(p))
}

// hostileLab is one speaker with two sessions: an in-process GoBGP router
// and a raw peer listening on rawAddr.
type hostileLab struct {
	t      *testing.T
	router *bgptest.Router
	sp     *GoBGP
	a      *Announcer
	ln     net.Listener
	logs   *testutil.SyncBuffer
	cfg    *config.Config
}

func startHostileLab(t *testing.T) *hostileLab {
	t.Helper()
	r := bgptest.Start(t, 65000, "198.18.0.1", routerAddr)
	r.AddPeer(t, edgeAddr, hostileMy)
	ln, err := net.Listen("tcp", netip.AddrPortFrom(rawAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := testConfig(r)
	cfg.BGP.Peers[0].MaxReceivedPrefixes = config.DefaultMaxReceivedPrefixes
	cfg.BGP.Peers = append(cfg.BGP.Peers, config.Peer{
		Address: rawAddr, Port: uint16(ln.Addr().(*net.TCPAddr).Port), ASN: hostileAS,
		HoldTime: 9 * time.Second, ConnectRetry: time.Second,
		LocalAddress: edgeAddr, Families: []config.Family{config.FamilyIPv4},
		MaxReceivedPrefixes: config.DefaultMaxReceivedPrefixes,
	})
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sp := NewGoBGP(logger)
	a := New(cfg, sp, logger, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("speaker logs:\n%s", logs.String())
		}
	})
	a.CheckChanged(health.Event{Check: "web", Status: health.StatusUp})
	return &hostileLab{t: t, router: r, sp: sp, a: a, ln: ln, logs: logs, cfg: cfg}
}

// accept waits for the speaker to connect to the raw peer and completes the
// handshake with open, then waits for the VIP's announcement.
func (h *hostileLab) accept(ctx context.Context, open rawbgp.Open) *rawbgp.Peer {
	h.t.Helper()
	p, err := rawbgp.Accept(ctx, h.ln, open)
	if err != nil {
		h.t.Fatalf("raw peer: waiting for the speaker to connect: %v", err)
	}
	h.t.Cleanup(func() { p.Close() })
	if _, err := p.Handshake(ctx); err != nil {
		h.t.Fatalf("raw peer: handshake: %v", err)
	}
	h.waitVIP(ctx, p)
	return p
}

// waitVIP waits until the speaker announces the VIP to the raw peer.
func (h *hostileLab) waitVIP(ctx context.Context, p *rawbgp.Peer) {
	h.t.Helper()
	err := p.WaitUpdate(ctx, func(u rawbgp.Update) bool {
		ps, _ := u.Announced()
		return slices.Contains(ps, vip4)
	})
	if err != nil {
		h.t.Fatalf("raw peer: waiting for %s: %v", vip4, err)
	}
}

// rawDetail is the raw peer's session as the API shows it.
func (h *hostileLab) rawDetail() PeerDetail {
	ds, err := h.sp.PeerDetails(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, d := range ds {
		if d.Address == rawAddr {
			return d
		}
	}
	h.t.Fatalf("no session with %s in %+v", rawAddr, ds)
	return PeerDetail{}
}

// outcome is what the speaker must do with a hostile message.
type outcome struct {
	// reset: the speaker sends this NOTIFICATION (anyCode: any) and closes
	// the session, whose LastError then says lastError.
	reset         bool
	code, subcode byte
	anyCode       bool
	lastError     string
	// Otherwise the session stays up, and the UPDATE's prefix is counted as
	// received (accepted: it parsed, even if unusual) or not (treated as a
	// withdrawal, RFC 7606 §2).
	accepted bool
}

func resetWith(code, subcode byte, lastError string) outcome {
	return outcome{reset: true, code: code, subcode: subcode, lastError: lastError}
}

var treatAsWithdraw = outcome{}

type hostileCase struct {
	name string
	old  bool // the raw peer is an RFC 6793 OLD speaker (no 4-octet AS)
	// open, if set, is sent instead of a valid OPEN (a NOTIFICATION
	// refuses the speaker's OPEN); else msg is sent once the session is
	// established.
	open []byte
	msg  []byte
	want outcome
}

func hostileCases() []hostileCase {
	origin, nh := rawbgp.Origin(0), rawbgp.NextHop(rawNHop4)
	asPath := rawbgp.ASPath4(rawbgp.Seq(hostileAS))
	nlri := rawbgp.Prefix(junk4)
	update := func(attrs ...[]byte) []byte { return rawbgp.UpdateMsg(nil, rawbgp.Join(attrs...), nlri) }

	// An UPDATE whose second attribute claims more octets than the message
	// holds: the total path attribute length is right, the attribute's own
	// length overruns it.
	overrun := update(origin, rawbgp.AttrWithLength(rawbgp.Transitive, rawbgp.AttrASPath, 200, []byte{2, 1, 0, 0, 0xfd, 0xf2}), nh)

	truncated := goodOpen(false).Marshal()
	truncated = truncated[:len(truncated)-4] // the optional parameters length now overruns the OPEN
	truncated[16], truncated[17] = byte(len(truncated)>>8), byte(len(truncated))
	v3 := goodOpen(false)
	v3.Version = 3

	return []hostileCase{{
		// The UPDATE that panicked GoBGP v3.37.0 (UpdatePathAttrs4ByteAs:
		// index out of range): an OLD speaker, AS4_PATH before AS_PATH, the
		// AS_PATH last. RFC 6793 §4.2.3: the AS4_PATH is merged; it parses.
		name: "AS4_PATH before a 2-octet AS_PATH from an OLD speaker",
		old:  true,
		msg: update(origin, rawbgp.AS4Path(rawbgp.Seq(4200000000)), nh,
			rawbgp.ASPath2(rawbgp.Seq(hostileOld, 23456))),
		want: outcome{accepted: true},
	}, {
		// RFC 4271 §6.3: Unrecognized Well-known Attribute.
		name: "unrecognized attribute without the optional bit",
		msg:  update(origin, asPath, nh, rawbgp.Attr(rawbgp.Transitive, 200, []byte{1, 2, 3, 4})),
		want: resetWith(rawbgp.CodeUpdate, 2, "notification-sent code 3(update) subcode 2(unrecognized well known attribute)"),
	}, {
		// RFC 7606 §7.1: treat-as-withdraw.
		name: "malformed ORIGIN",
		msg:  update(rawbgp.Origin(7), asPath, nh),
		want: treatAsWithdraw,
	}, {
		// The MP_REACH_NLRI of a family the session did not negotiate wins
		// over the ORIGIN: RFC 7606 §7.11 allows a session reset. GoBGP
		// v4.8.0 sends it with error code 0, which RFC 4271 does not define.
		name: "malformed ORIGIN with MP_REACH_NLRI of a family not negotiated",
		msg: update(rawbgp.Origin(7), asPath, nh,
			rawbgp.MPReach(2, 1, netip.MustParseAddr("2001:db8:ffff::3").AsSlice(), rawbgp.Prefix(netip.MustParsePrefix("2001:db8:200::/48")))),
		want: outcome{reset: true, anyCode: true, lastError: "notification-sent"},
	}, {
		// RFC 4271 §6.3 makes the leftmost-AS check on eBGP a MAY; GoBGP
		// does not make it, and takes the path (anycastd's import policy
		// rejects it like any other).
		name: "zero-length AS_PATH on an eBGP session",
		msg:  update(origin, rawbgp.Attr(rawbgp.Transitive, rawbgp.AttrASPath, nil), nh),
		want: outcome{accepted: true},
	}, {
		// RFC 7606 §7.3: treat-as-withdraw.
		name: "NEXT_HOP of 5 octets",
		msg:  update(origin, asPath, rawbgp.Attr(rawbgp.Transitive, rawbgp.AttrNextHop, []byte{127, 0, 0, 3, 0})),
		want: treatAsWithdraw,
	}, {
		// RFC 7606 §4: treat-as-withdraw.
		name: "attribute length overrunning the message",
		msg:  overrun,
		want: treatAsWithdraw,
	}, {
		// The optional parameters overrun the OPEN: GoBGP answers Bad
		// Message Length.
		name: "truncated OPEN",
		open: truncated,
		want: resetWith(rawbgp.CodeHeader, rawbgp.SubHeaderBadLength, "notification-sent code 1(header) subcode 2(bad message length)"),
	}, {
		// RFC 4271 §6.2: Unsupported Version Number.
		name: "OPEN of BGP version 3",
		open: v3.Marshal(),
		want: resetWith(rawbgp.CodeOpen, 1, "notification-sent code 2(open) subcode 1(unsupported version number)"),
	}, {
		// The router refuses the speaker's OPEN (here: Bad Peer AS). GoBGP
		// answers with an FSM error and does not decode the router's code.
		name: "the router refuses the OPEN",
		open: rawbgp.Notification(rawbgp.CodeOpen, 2, nil),
		want: resetWith(rawbgp.CodeFSM, 1, "the router refused this node's OPEN"),
	}}
}

// The cases run one after the other: GoBGP's StartBgp writes package-level
// route selection settings that every server in the process reads.
func TestHostilePeer(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}

func runHostile(t *testing.T, tc hostileCase) {
	h := startHostileLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := h.router
	bgptest.Eventually(t, wait, func() bool { _, ok := r.Received(t)[vip4]; return ok }, "VIP at the router", nil)
	_, _, routerUp := r.PeerState(t, edgeAddr)

	var p *rawbgp.Peer
	if tc.open != nil {
		conn, err := h.ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		p = rawbgp.NewPeer(conn)
		t.Cleanup(func() { p.Close() })
		if err := p.Send(tc.open); err != nil {
			t.Fatal(err)
		}
	} else {
		p = h.accept(ctx, goodOpen(tc.old))
		if err := p.Send(tc.msg); err != nil {
			t.Fatal(err)
		}
	}

	if tc.want.reset {
		code, sub, err := p.WaitNotification(ctx)
		if err != nil {
			t.Fatalf("waiting for the speaker's NOTIFICATION: %v", err)
		}
		if !tc.want.anyCode && (code != tc.want.code || sub != tc.want.subcode) {
			t.Errorf("NOTIFICATION %d/%d, want %d/%d", code, sub, tc.want.code, tc.want.subcode)
		}
		bgptest.Eventually(t, wait, func() bool {
			return strings.HasPrefix(h.rawDetail().LastError, tc.want.lastError)
		}, fmt.Sprintf("last error %q…", tc.want.lastError), func() string { return fmt.Sprintf("%+v", h.rawDetail()) })
		if le := h.rawDetail().LastError; !strings.Contains(h.logs.String(), le) {
			t.Errorf("last error %q is not in the log", le)
		}
		p.Close()
	} else {
		// A valid UPDATE after the hostile one: once it is counted, the
		// hostile one was handled.
		if err := p.Send(validUpdate(probe4, tc.old)); err != nil {
			t.Fatal(err)
		}
		want := uint64(1)
		if tc.want.accepted {
			want = 2
		}
		bgptest.Eventually(t, wait, func() bool { return h.rawDetail().PrefixesReceived == want },
			fmt.Sprintf("%d prefixes received from the raw peer", want),
			func() string { return fmt.Sprintf("%+v", h.rawDetail()) })
		if d := h.rawDetail(); !d.Established() {
			t.Errorf("raw peer's session is %s (%s), want established", d.State, d.LastError)
		}
	}

	// The other session never went down and kept the VIP.
	st, _, up := r.PeerState(t, edgeAddr)
	if st != "established" || !up.Equal(routerUp) {
		t.Errorf("router session %s since %v, want established since %v", st, up, routerUp)
	}
	if _, ok := r.Received(t)[vip4]; !ok {
		t.Errorf("router lost %s", vip4)
	}
	if tc.want.reset {
		// The speaker reconnects (after GoBGP's 5 s idle hold) and announces
		// the VIP again.
		h.accept(ctx, goodOpen(tc.old))
	}
}
