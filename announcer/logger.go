package announcer

import (
	"context"
	"log/slog"
)

// gobgpHandler is the slog.Handler GoBGP logs through. It keeps anycastd's
// own lines the readable story at the default level:
//
//   - GoBGP's Info lines are routine session chatter: they go to Debug, and
//     its Debug lines four steps further down.
//   - Warnings that are harmless in anycastd's setup go to Debug (see
//     demoted).
//   - Warn and Error stay as they are.
//
// Session changes and their reasons reach the log from watchPeers, through
// GoBGP's peer events, not from these lines.
type gobgpHandler struct {
	inner slog.Handler
	// peer is the session a GoBGP logger is bound to (its "Key"
	// attribute), "" for others.
	peer string
	// sent is told of every NOTIFICATION GoBGP sends (its "sent
	// notification" line): GoBGP reports a session refused during the
	// OPEN exchange in no other way. It must not block.
	sent func(peer string, code, subcode uint8)
	// received is told of every NOTIFICATION GoBGP receives (its
	// "received notification" line), with the message of an RFC 9003
	// Administrative Shutdown or Reset ("" if none): GoBGP's session
	// events carry only the codes. It must not block.
	received func(peer string, code, subcode uint8, message string)
}

// demoted lists GoBGP warnings that say nothing an operator can act on.
// "cannot set TTL (255) for TCPListener": GoBGP sets IP_TTL 255 on every
// listener so that GTSM peers (ttl_security_hops) can connect in. GoBGP v3
// failed there on Go's MPTCP listeners ("operation not supported"); v4.8.0
// turns MPTCP off on its listeners and the call succeeds on Linux, so the
// line is not expected. It matters only to incoming sessions of peers with
// ttl_security_hops (integration TestSessionGTSM, "ipv4 incoming").
var demoted = map[string]bool{
	"cannot set TTL (255) for TCPListener": true,
}

// newGoBGPLogger returns the logger GoBGP logs through (see gobgpHandler);
// sent and received are told of the NOTIFICATIONs it sends and receives.
func newGoBGPLogger(l *slog.Logger, sent func(peer string, code, subcode uint8),
	received func(peer string, code, subcode uint8, message string)) *slog.Logger {
	return slog.New(gobgpHandler{inner: l.Handler(), sent: sent, received: received})
}

func gobgpLevel(l slog.Level) slog.Level {
	switch {
	case l < slog.LevelInfo:
		return l - 4
	case l < slog.LevelWarn:
		return slog.LevelDebug
	}
	return l
}

func (h gobgpHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo && (h.sent != nil || h.received != nil) && h.peer != "" {
		return true // Handle looks for "sent/received notification", Info lines
	}
	if l >= slog.LevelWarn {
		// A demoted warning is decided in Handle; Enabled cannot see it.
		return h.inner.Enabled(ctx, slog.LevelDebug) || h.inner.Enabled(ctx, l)
	}
	return h.inner.Enabled(ctx, gobgpLevel(l))
}

func (h gobgpHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == "sent notification" && h.sent != nil && h.peer != "":
		n := notificationOf(r)
		h.sent(h.peer, n.code, n.subcode)
	case r.Message == "received notification" && h.received != nil && h.peer != "":
		n := notificationOf(r)
		h.received(h.peer, n.code, n.subcode, n.message)
	}
	level := gobgpLevel(r.Level)
	if r.Level >= slog.LevelWarn && r.Level < slog.LevelError && demoted[r.Message] {
		level = slog.LevelDebug
	}
	if !h.inner.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	return h.inner.Handle(ctx, out)
}

// notification is what GoBGP's "sent/received notification" log line says
// of a NOTIFICATION (RFC 4271 §4.5): its code, subcode and, for a Cease
// with a Shutdown Communication (RFC 9003), the message.
type notification struct {
	code, subcode uint8
	message       string
}

func notificationOf(r slog.Record) notification {
	var n notification
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "Code":
			n.code = uint8(a.Value.Int64())
		case "Subcode":
			n.subcode = uint8(a.Value.Int64())
		case "Communicated-Reason":
			n.message = a.Value.String()
		}
		return true
	})
	return n
}

func (h gobgpHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := h
	out.inner = h.inner.WithAttrs(as)
	for _, a := range as {
		if a.Key == "Key" {
			out.peer = a.Value.String()
		}
	}
	return out
}

func (h gobgpHandler) WithGroup(name string) slog.Handler {
	out := h
	out.inner = h.inner.WithGroup(name)
	return out
}
