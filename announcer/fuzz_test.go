package announcer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/rawbgp"
	"github.com/anycastd/anycastd/routes"
)

// fuzzSpeaker is the real speaker with one passive session that a raw peer
// dials into, kept established across fuzz inputs.
type fuzzSpeaker struct {
	sp     *GoBGP
	cfg    *config.Config
	listen string // the speaker's listener
	peer   *rawbgp.Peer
}

func newFuzzSpeaker(f *testing.F) *fuzzSpeaker {
	port := bgptest.FreePort(f, edgeAddr)
	cfg := &config.Config{BGP: config.BGP{
		ASN: hostileMy, RouterID: netip.MustParseAddr("198.18.1.2"),
		ListenPort: port, ListenAddresses: []netip.Addr{edgeAddr},
		Peers: []config.Peer{{
			Address: rawAddr, Port: 179, ASN: hostileAS, Passive: true,
			HoldTime: 90 * time.Second, ConnectRetry: time.Second,
			Families:            []config.Family{config.FamilyIPv4, config.FamilyIPv6},
			MaxReceivedPrefixes: config.DefaultMaxReceivedPrefixes,
		}},
	}, VIPs: []config.VIP{{Name: "web", Prefixes: []netip.Prefix{vip4}}}}
	sp := NewGoBGP(bgptest.DiscardLogger)
	ctx := context.Background()
	if err := sp.Start(ctx, cfg); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sp.Stop(ctx) })
	if err := sp.Announce(ctx, routes.Route{Prefix: vip4}); err != nil {
		f.Fatal(err)
	}
	return &fuzzSpeaker{sp: sp, cfg: cfg, listen: netip.AddrPortFrom(edgeAddr, uint16(port)).String()}
}

// session returns an established session, making a new one when the last
// input closed it. Deleting and adding the peer skips GoBGP's 5 s idle
// hold; a connection that comes while the new peer is still idle is closed
// by the speaker, and dialled again.
func (fs *fuzzSpeaker) session(t *testing.T) *rawbgp.Peer {
	if fs.peer != nil {
		return fs.peer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := rawAddr.String()
	if err := fs.sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
		t.Fatalf("deleting the raw peer: %v", err)
	}
	if err := fs.sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(fs.cfg, fs.cfg.BGP.Peers[0])}); err != nil {
		t.Fatalf("adding the raw peer: %v", err)
	}
	open := goodOpen(false)
	open.Caps = append(open.Caps, rawbgp.CapMP(2, 1))
	for ctx.Err() == nil {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(rawAddr, 0))}
		conn, err := d.DialContext(ctx, "tcp", fs.listen)
		if err != nil {
			t.Fatalf("dialling the speaker: %v", err)
		}
		p := rawbgp.NewPeer(conn)
		if err := p.Send(open.Marshal()); err == nil {
			if _, err := p.Handshake(ctx); err == nil {
				fs.peer = p
				return p
			}
		}
		p.Close()
		time.Sleep(10 * time.Millisecond) // the peer was still idle
	}
	t.Fatalf("no session with the speaker: %v", ctx.Err())
	return nil
}

// FuzzSpeakerUpdate feeds UPDATE bodies through an established session to
// the real speaker. Whatever the body, the speaker answers the ROUTE-REFRESH
// that follows it (the session survived and the UPDATE was handled in
// order) or closes the session, with a NOTIFICATION or without; it never
// stops serving, and never panics (a panic ends the fuzz run).
//
//	go test -run '^$' -fuzz FuzzSpeakerUpdate -fuzztime 30s ./announcer/
func FuzzSpeakerUpdate(f *testing.F) {
	for _, tc := range hostileCases() {
		if tc.msg != nil {
			f.Add(tc.msg[rawbgp.HeaderLen:])
		}
	}
	f.Add(validUpdate(probe4, false)[rawbgp.HeaderLen:])
	f.Add([]byte{0, 0, 0, 0})
	fs := newFuzzSpeaker(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > rawbgp.MaxMessageLen-rawbgp.HeaderLen {
			body = body[:rawbgp.MaxMessageLen-rawbgp.HeaderLen]
		}
		p := fs.session(t)
		err := p.Send(rawbgp.Join(rawbgp.Header(rawbgp.MsgUpdate, body), rawbgp.RouteRefresh(1, 1)))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err == nil {
			err = p.WaitUpdate(ctx, func(u rawbgp.Update) bool {
				ps, _ := u.Announced()
				return slices.Contains(ps, vip4)
			})
		}
		if err != nil {
			var n *rawbgp.NotificationError
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the speaker neither answered the ROUTE-REFRESH nor closed the session: %v", err)
			}
			if !errors.As(err, &n) && !errors.Is(err, net.ErrClosed) {
				t.Logf("session closed: %v", err)
			}
			p.Close()
			fs.peer = nil
		}
		if _, err := fs.sp.Peers(ctx); err != nil {
			t.Fatalf("the speaker stopped serving: %v", err)
		}
	})
}
