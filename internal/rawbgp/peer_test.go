package rawbgp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fakeSpeaker listens on loopback and runs script on the first connection.
func fakeSpeaker(t *testing.T, script func(c net.Conn) error) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer c.Close()
		ch <- script(c)
	}()
	return ln.Addr().String(), ch
}

func expectMsg(c net.Conn, typ byte) (Message, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := ReadMessage(c)
	if err == nil && m.Type != typ {
		err = errors.New("fake speaker: unexpected " + m.String())
	}
	return m, err
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPeerSession(t *testing.T) {
	speakerOpen := Open{MyAS: 65001, HoldTime: 9, BGPID: netip.MustParseAddr("198.18.0.1"),
		Caps: [][]byte{CapMP(AFIIPv6, SAFIUnicast), CapFourOctetAS(65001)}}
	announce := UpdateMsg(nil, Join(MPReach(AFIIPv6, SAFIUnicast, nh6.AsSlice(), Prefix(host6)), Origin(0), ASPath4(Seq(65001))), nil)
	addr, done := fakeSpeaker(t, func(c net.Conn) error {
		if _, err := expectMsg(c, MsgOpen); err != nil {
			return err
		}
		// Dribble the OPEN and KEEPALIVE out an octet at a time.
		for _, b := range slices.Concat(speakerOpen.Marshal(), Keepalive()) {
			if _, err := c.Write([]byte{b}); err != nil {
				return err
			}
		}
		if _, err := expectMsg(c, MsgKeepalive); err != nil {
			return err
		}
		if _, err := c.Write(slices.Concat(Keepalive(), EndOfRIB(), announce)); err != nil {
			return err
		}
		if _, err := expectMsg(c, MsgKeepalive); err != nil { // the answer
			return err
		}
		_, err := c.Write(Notification(CodeCease, 2, []byte("bye")))
		return err
	})
	ctx := testCtx(t)
	p, err := Dial(ctx, addr, Open{MyAS: 65000, HoldTime: 9, BGPID: routeID})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open, err := p.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if open.AS() != 65001 || open.HoldTime != 9 || !open.HasMP(AFIIPv6, SAFIUnicast) {
		t.Fatalf("speaker OPEN = %+v", open)
	}
	var got []netip.Prefix
	err = p.WaitUpdate(ctx, func(u Update) bool {
		got, _ = u.Announced()
		return !u.IsEndOfRIB()
	})
	if err != nil || !slices.Equal(got, []netip.Prefix{host6}) {
		t.Fatalf("WaitUpdate: %v, announced %v", err, got)
	}
	code, sub, err := p.WaitNotification(ctx)
	if err != nil || code != CodeCease || sub != 2 || string(p.LastNotification().Data) != "bye" {
		t.Fatalf("WaitNotification = %d/%d, %v, %+v", code, sub, err, p.LastNotification())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after close: %v, want io.EOF", err)
	}
}

func TestNextKeepsPartialMessage(t *testing.T) {
	msg := Notification(CodeCease, 4, nil)
	release := make(chan struct{})
	addr, done := fakeSpeaker(t, func(c net.Conn) error {
		if _, err := c.Write(msg[:10]); err != nil {
			return err
		}
		<-release
		_, err := c.Write(msg[10:])
		return err
	})
	p, err := Connect(testCtx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with a half message: %v", err)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	if _, err := p.Next(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next, cancelled: %v", err)
	}
	close(release)
	m, err := p.Next(testCtx(t))
	if err != nil || m.Type != MsgNotification || m.Body[1] != 4 {
		t.Fatalf("Next = %v, %v", m, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseWithoutNotification(t *testing.T) {
	tests := []struct {
		name   string
		script func(c net.Conn) error
	}{
		{"clean close", func(c net.Conn) error { return nil }},
		{"close inside a message", func(c net.Conn) error { _, err := c.Write(Keepalive()[:5]); return err }},
		{"reset", func(c net.Conn) error { return c.(*net.TCPConn).SetLinger(0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, done := fakeSpeaker(t, func(c net.Conn) error {
				if _, err := expectMsg(c, MsgKeepalive); err != nil {
					return err
				}
				return tt.script(c)
			})
			ctx := testCtx(t)
			p, err := Connect(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.Send(Keepalive()); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			_, _, err = p.WaitNotification(ctx)
			t.Log(err)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("WaitNotification: %v, want io.EOF", err)
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	addr, done := fakeSpeaker(t, func(c net.Conn) error {
		if _, err := expectMsg(c, MsgOpen); err != nil {
			return err
		}
		_, err := c.Write(Notification(CodeOpen, SubOpenUnsupportedVersion, []byte{0, 4}))
		return err
	})
	ctx := testCtx(t)
	p, err := Dial(ctx, addr, Open{Version: 3, MyAS: 65000, BGPID: routeID})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Handshake(ctx)
	var n *NotificationError
	if !errors.As(err, &n) || n.Code != CodeOpen || n.Subcode != SubOpenUnsupportedVersion {
		t.Fatalf("Handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := Accept(ctx, ln, Open{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept, cancelled: %v", err)
	}
	// The listener's deadline is cleared: it still accepts.
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := expectMsg(c, MsgOpen); err == nil {
			c.Write(Notification(CodeCease, 5, nil))
		}
	}()
	time.Sleep(20 * time.Millisecond)
	p, err := Accept(testCtx(t), ln, Open{MyAS: 65000, BGPID: routeID})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if code, sub, err := p.WaitNotification(testCtx(t)); err != nil || code != CodeCease || sub != 5 {
		t.Fatalf("WaitNotification = %d/%d, %v", code, sub, err)
	}
}
