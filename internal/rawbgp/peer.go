package rawbgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// SendTimeout bounds how long Send waits for the kernel to take a message.
const SendTimeout = 30 * time.Second

// Peer is one TCP connection to a BGP speaker, driven by the test. It has
// no goroutines and no timers: nothing is read or sent unless a method is
// called, so the test sees every message, in order. In particular no
// KEEPALIVEs are sent on a timer; Wait and its variants answer the
// speaker's KEEPALIVEs, which keeps its hold timer running as long as the
// test waits through them, and an OPEN with HoldTime 0 needs none at all.
//
// One goroutine may read (Next, Handshake, Wait…) while another sends or
// closes.
type Peer struct {
	conn net.Conn
	buf  []byte // received octets not yet returned as messages
	rerr error  // read error to report once buf holds no whole message
	tmp  [4096]byte
	note *NotificationError
}

// NewPeer wraps an established connection; nothing is sent.
func NewPeer(conn net.Conn) *Peer { return &Peer{conn: conn} }

// Connect opens a TCP connection to addr ("host:port") and sends nothing,
// for tests that start with a malformed OPEN or no OPEN at all.
func Connect(ctx context.Context, addr string) (*Peer, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rawbgp: %w", err)
	}
	return NewPeer(conn), nil
}

// Dial opens a TCP connection to addr ("host:port") and sends open, the
// active side of RFC 4271 §8. Call Handshake next.
func Dial(ctx context.Context, addr string, open Open) (*Peer, error) {
	p, err := Connect(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := p.Send(open.Marshal()); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Accept waits on ln for the speaker to connect, then sends open: the
// passive side, for a speaker configured to dial out. The listener is not
// closed. If ln has SetDeadline (as *net.TCPListener does), ctx interrupts
// the wait and the listener's deadline is cleared afterwards; otherwise the
// Accept call is left running in the background when ctx ends, and a
// connection it returns later is closed.
func Accept(ctx context.Context, ln net.Listener, open Open) (*Peer, error) {
	var conn net.Conn
	var err error
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		err = interruptible(ctx, d.SetDeadline, func() error {
			var e error
			conn, e = ln.Accept()
			return e
		})
		d.SetDeadline(time.Time{})
	} else {
		type result struct {
			c net.Conn
			e error
		}
		ch := make(chan result, 1)
		go func() {
			c, e := ln.Accept()
			ch <- result{c, e}
		}()
		select {
		case r := <-ch:
			conn, err = r.c, r.e
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.c != nil {
					r.c.Close()
				}
			}()
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rawbgp: accept: %w", err)
	}
	p := NewPeer(conn)
	if err := p.Send(open.Marshal()); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// interruptible runs op, which blocks on something whose deadline setDL
// sets, with that deadline tied to ctx: ctx's deadline, and an immediate
// one when ctx is cancelled. A timeout caused by ctx is reported as
// ctx.Err().
func interruptible(ctx context.Context, setDL func(time.Time) error, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	setDL(dl)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		setDL(time.Unix(1, 0))
		close(fired)
	})
	err := op()
	if !stop() {
		// The deadline is being forced into the past; let that finish
		// so it cannot hit a later operation.
		<-fired
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// ctx's deadline and the connection's are the same instant, but
		// ctx may notice a moment later.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return err
}

// Conn returns the underlying connection, e.g. to send a message in
// pieces or to half-close it.
func (p *Peer) Conn() net.Conn { return p.conn }

// Close closes the connection without sending anything.
func (p *Peer) Close() error { return p.conn.Close() }

// Send writes msg, a complete (or deliberately broken) message, in one
// write, waiting at most SendTimeout.
func (p *Peer) Send(msg []byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(SendTimeout))
	if _, err := p.conn.Write(msg); err != nil {
		return fmt.Errorf("rawbgp: send: %w", err)
	}
	return nil
}

// LastNotification returns the last NOTIFICATION that Next returned, or
// nil. It belongs to the reading goroutine.
func (p *Peer) LastNotification() *NotificationError { return p.note }

// pop takes one whole message off buf.
func (p *Peer) pop() (Message, bool, error) {
	if len(p.buf) < HeaderLen {
		return Message{}, false, nil
	}
	typ, length, err := parseHeader(p.buf)
	if err != nil {
		return Message{}, false, err
	}
	if len(p.buf) < length {
		return Message{}, false, nil
	}
	m := Message{Type: typ, Body: append([]byte(nil), p.buf[HeaderLen:length]...)}
	p.buf = append(p.buf[:0], p.buf[length:]...)
	return m, true, nil
}

// closedErr describes the end of the stream. Both an orderly close and a
// reset wrap io.EOF, so errors.Is(err, io.EOF) means "the speaker hung up".
func (p *Peer) closedErr(err error) error {
	switch {
	case errors.Is(err, io.EOF) && len(p.buf) > 0:
		return fmt.Errorf("rawbgp: connection closed inside a message (%d octets pending): %w: %w",
			len(p.buf), io.EOF, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("rawbgp: connection closed by the speaker: %w", io.EOF)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("rawbgp: connection reset by the speaker: %w: %w", io.EOF, err)
	}
	return fmt.Errorf("rawbgp: read: %w", err)
}

// Next returns the next message from the speaker, waiting until ctx ends.
// Octets of a message cut short by ctx are kept for the next call. When the
// connection closes (or is reset) with no whole message left, the error
// wraps io.EOF; a stream that does not parse gives an error wrapping
// ErrMalformed, after which the connection is unusable.
func (p *Peer) Next(ctx context.Context) (Message, error) {
	for {
		m, ok, err := p.pop()
		if err != nil {
			p.rerr = err
			return Message{}, err
		}
		if ok {
			if m.Type == MsgNotification {
				if code, sub, data, err := ParseNotification(m.Body); err == nil {
					p.note = &NotificationError{Code: code, Subcode: sub, Data: data}
				}
			}
			return m, nil
		}
		if p.rerr != nil {
			return Message{}, p.rerr
		}
		var n int
		err = interruptible(ctx, p.conn.SetReadDeadline, func() error {
			var e error
			n, e = p.conn.Read(p.tmp[:])
			return e
		})
		p.buf = append(p.buf, p.tmp[:n]...)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return Message{}, fmt.Errorf("rawbgp: waiting for a message: %w", err)
			}
			// Report the closure once the whole messages before it are
			// consumed.
			p.rerr = p.closedErr(err)
		}
	}
}

// Handshake completes the OPEN exchange after Dial or Accept (RFC 4271
// §8.2.2): it reads the speaker's OPEN, answers with a KEEPALIVE, and
// reads the speaker's KEEPALIVE, after which the session is Established
// on both sides. It returns the speaker's OPEN. A NOTIFICATION instead
// (e.g. for an OPEN the speaker rejects) is returned as a
// *NotificationError; any other message is an error.
func (p *Peer) Handshake(ctx context.Context) (OpenInfo, error) {
	m, err := p.Next(ctx)
	if err != nil {
		return OpenInfo{}, err
	}
	if err := p.expect(m, MsgOpen); err != nil {
		return OpenInfo{}, err
	}
	open, err := ParseOpen(m.Body)
	if err != nil {
		return OpenInfo{}, err
	}
	if err := p.Send(Keepalive()); err != nil {
		return open, err
	}
	m, err = p.Next(ctx)
	if err != nil {
		return open, err
	}
	return open, p.expect(m, MsgKeepalive)
}

func (p *Peer) expect(m Message, typ byte) error {
	switch m.Type {
	case typ:
		return nil
	case MsgNotification:
		if p.note != nil {
			return p.note
		}
	}
	return fmt.Errorf("rawbgp: expected %s, speaker sent %v", typeName(typ), m)
}

// Wait reads messages until fn reports done or fails, or the connection or
// ctx ends, answering every KEEPALIVE with a KEEPALIVE (before passing it
// to fn) so that the session stays up while the test waits. A failed
// KEEPALIVE answer is ignored: the read side reports why.
func (p *Peer) Wait(ctx context.Context, fn func(Message) (done bool, err error)) error {
	for {
		m, err := p.Next(ctx)
		if err != nil {
			return err
		}
		if m.Type == MsgKeepalive {
			_ = p.Send(Keepalive())
		}
		done, err := fn(m)
		if err != nil || done {
			return err
		}
	}
}

// WaitUpdate waits, as Wait does, for an UPDATE that cond accepts. A
// NOTIFICATION ends the wait with a *NotificationError, and an UPDATE
// that does not parse with an error wrapping ErrMalformed.
func (p *Peer) WaitUpdate(ctx context.Context, cond func(Update) bool) error {
	return p.Wait(ctx, func(m Message) (bool, error) {
		switch m.Type {
		case MsgNotification:
			return false, p.expect(m, MsgUpdate)
		case MsgUpdate:
			u, err := ParseUpdate(m.Body)
			if err != nil {
				return false, err
			}
			return cond(u), nil
		}
		return false, nil
	})
}

// WaitNotification waits, as Wait does, for a NOTIFICATION and returns its
// code and subcode (the data is in LastNotification). Other messages are
// skipped. If the connection closes first, the error wraps io.EOF.
func (p *Peer) WaitNotification(ctx context.Context) (code, subcode byte, err error) {
	var n *NotificationError
	err = p.Wait(ctx, func(m Message) (bool, error) {
		if m.Type != MsgNotification {
			return false, nil
		}
		n = p.note
		if n == nil {
			return false, malformed("NOTIFICATION body of %d octets", len(m.Body))
		}
		return true, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n.Code, n.Subcode, nil
}
