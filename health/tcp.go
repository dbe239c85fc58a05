package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/anycastd/anycastd/config"
)

// maxTCPReplyQuote is how much of a wrong reply an error message quotes.
const maxTCPReplyQuote = 64

// tcpChecker passes when a TCP connection to address can be opened (with
// TLS: and the handshake completes), send can be written and the reply
// starts with expect.
type tcpChecker struct {
	address string
	send    []byte
	expect  []byte
	dialer  net.Dialer
	tls     *tls.Config // nil: plaintext
	// plain is set when the check only connects (no TLS, send nor expect)
	// and the batched prober can run it (Linux): see tcpbatch_linux.go.
	plain *plainTCP
}

func newTCPChecker(c config.TCPCheck) (*tcpChecker, error) {
	t := &tcpChecker{
		address: c.Address,
		send:    []byte(c.Send),
		expect:  []byte(c.Expect),
		// No keep-alive probes on a connection that lives for one check.
		dialer: net.Dialer{LocalAddr: localTCPAddr(c.SourceAddress), KeepAlive: -1},
	}
	if c.TLS != nil {
		cfg, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		t.tls = cfg
	}
	if t.tls == nil && len(t.send) == 0 && len(t.expect) == 0 {
		t.plain = newPlainTCP(c.Address, c.SourceAddress) // nil where there is no batched prober
	}
	return t, nil
}

// takesDeadline implements deadlineChecker: plain checks on Linux do.
func (t *tcpChecker) takesDeadline() bool { return t.plain != nil }

// checkBy implements deadlineChecker: one probe of a plain check by the
// batched prober, which must end by deadline (zero: none); ctx's end stops
// it. Other checks run Check under a context with the deadline.
func (t *tcpChecker) checkBy(ctx context.Context, deadline time.Time) error {
	if t.plain == nil {
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		return t.Check(ctx)
	}
	return t.plain.probe(ctx, deadline)
}

// Check implements Checker. Without send and expect, the connection is
// closed right after it is established (after the handshake with TLS).
func (t *tcpChecker) Check(ctx context.Context) error {
	if t.plain != nil {
		dl, _ := ctx.Deadline()
		err := t.plain.probe(ctx, dl)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// As net.Dialer says it: "i/o timeout" or "operation was canceled".
			return t.plain.opError(mapCtxErr(ctx.Err()))
		}
		return err
	}
	var conn net.Conn
	var err error
	if t.tls != nil {
		d := tls.Dialer{NetDialer: &t.dialer, Config: t.tls}
		conn, err = d.DialContext(ctx, "tcp", t.address)
	} else {
		conn, err = t.dialer.DialContext(ctx, "tcp", t.address)
	}
	if err != nil {
		return err
	}
	defer abortiveClose(conn)
	if len(t.send) == 0 && len(t.expect) == 0 {
		return nil
	}
	// The deadline bounds the exchange; cancelling ctx (shutdown) cuts it short.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if len(t.send) > 0 {
		if _, err := conn.Write(t.send); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	if len(t.expect) > 0 {
		return t.readExpect(conn)
	}
	return nil
}

// readExpect reads until the reply is known to start with t.expect or not.
func (t *tcpChecker) readExpect(conn net.Conn) error {
	buf := make([]byte, len(t.expect))
	got := 0
	for got < len(buf) {
		n, err := conn.Read(buf[got:])
		got += n
		if !bytes.HasPrefix(t.expect, buf[:got]) {
			return fmt.Errorf("reply %q does not start with %q", quoteReply(buf[:got]), t.expect)
		}
		if got == len(buf) {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("reply %q ended before %q", buf[:got], t.expect)
			}
			return fmt.Errorf("reading reply: %w", err)
		}
	}
	return nil
}

// abortiveClose closes conn with a reset (SO_LINGER 0) rather than a FIN:
// the connection leaves no TIME_WAIT behind. At 10,000 checks a second,
// TIME_WAIT would hold hundreds of thousands of sockets and, towards one
// non-loopback service, run out of local ports within seconds, failing
// healthy checks.
func abortiveClose(conn net.Conn) {
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// mapCtxErr returns the error net.Dialer reports when ctx ends with err:
// os.ErrDeadlineExceeded ("i/o timeout") for a deadline, else err.
func mapCtxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return err
}

func quoteReply(b []byte) []byte {
	if len(b) > maxTCPReplyQuote {
		return b[:maxTCPReplyQuote]
	}
	return b
}
