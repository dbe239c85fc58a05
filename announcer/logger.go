package announcer

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger adapts GoBGP's logger interface onto *slog.Logger. GoBGP's
// Fatal and Panic are reachable from library code (bugs it detects): both are
// logged at error level, then panic, as GoBGP expects them not to return.
type gobgpLogger struct {
	l     *slog.Logger
	level gobgplog.LogLevel
	// peerDown, if set, is told why a session left Established: GoBGP
	// says so only in its "Peer Down" log line.
	peerDown func(peer, reason string)
}

func newGoBGPLogger(l *slog.Logger) *gobgpLogger {
	return &gobgpLogger{l: l, level: gobgplog.InfoLevel}
}

func (g *gobgpLogger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	g.l.LogAttrs(context.Background(), level, msg, attrs...)
}

func (g *gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	g.log(slog.LevelError, msg, f)
	panic(fmt.Sprintf("gobgp: %s %v", msg, f))
}

func (g *gobgpLogger) Fatal(msg string, f gobgplog.Fields) {
	g.log(slog.LevelError, msg, f)
	panic(fmt.Sprintf("gobgp fatal: %s %v", msg, f))
}

func (g *gobgpLogger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { g.log(slog.LevelWarn, msg, f) }

// GoBGP's info messages are routine session chatter; they go to debug so that
// anycastd's own lines stay the readable story at the default level.
func (g *gobgpLogger) Info(msg string, f gobgplog.Fields) {
	if msg == "Peer Down" && g.peerDown != nil {
		g.peerDown(fmt.Sprint(f["Key"]), fmt.Sprint(f["Reason"]))
	}
	g.log(slog.LevelDebug, msg, f)
}
func (g *gobgpLogger) Debug(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug-4, msg, f) }

func (g *gobgpLogger) SetLevel(level gobgplog.LogLevel) { g.level = level }
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel {
	// GoBGP skips building debug fields when the level is below debug.
	if g.l.Enabled(context.Background(), slog.LevelDebug-4) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
