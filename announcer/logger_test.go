package announcer

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/anycastd/anycastd/internal/testutil"
)

// GoBGP's lines reach anycastd's log at anycastd's levels: its Info is
// debug, the harmless listener TTL warning is debug, other warnings stay.
// Every NOTIFICATION it sends is reported with the session it belongs to.
func TestGoBGPLogLevels(t *testing.T) {
	var buf testutil.SyncBuffer
	type sent struct {
		peer          string
		code, subcode uint8
	}
	var got []sent
	l := newGoBGPLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		func(peer string, code, subcode uint8) { got = append(got, sent{peer, code, subcode}) }, nil)

	l.Warn("cannot set TTL (255) for TCPListener", slog.String("Key", "127.0.0.1"))
	l.Info("Peer Up", slog.String("Key", "198.18.0.1"))
	l.Warn("hold timer expired")
	peer := l.With(slog.String("Topic", "Peer"), slog.String("Key", "198.18.0.1"))
	peer.Info("sent notification", slog.Int("Code", 2), slog.Int("Subcode", 1))

	out := buf.String()
	for _, quiet := range []string{"cannot set TTL", "Peer Up", "sent notification"} {
		if strings.Contains(out, quiet) {
			t.Errorf("%q logged at the default level:\n%s", quiet, out)
		}
	}
	if !strings.Contains(out, `level=WARN msg="hold timer expired"`) {
		t.Errorf("GoBGP's warning lost:\n%s", out)
	}
	if len(got) != 1 || got[0] != (sent{"198.18.0.1", 2, 1}) {
		t.Errorf("NOTIFICATIONs reported: %+v, want one 2/1 for 198.18.0.1", got)
	}
}

// Every NOTIFICATION GoBGP receives is reported with its session and the
// router's shutdown message, which GoBGP's session events do not carry.
func TestGoBGPLogReceivedNotification(t *testing.T) {
	var buf testutil.SyncBuffer
	var got []string
	l := newGoBGPLogger(slog.New(slog.NewTextHandler(&buf, nil)), nil,
		func(peer string, code, subcode uint8, message string) {
			got = append(got, fmt.Sprintf("%s %d/%d %q", peer, code, subcode, message))
		})
	peer := l.With(slog.String("Topic", "Peer"), slog.String("Key", "198.18.0.1"))
	peer.Info("received notification", slog.Int("Code", 6), slog.Int("Subcode", 2),
		slog.String("Communicated-Reason", "maintenance, ticket 42"), slog.Any("Data", []byte{}))
	peer.Info("received notification", slog.Int("Code", 4), slog.Int("Subcode", 0), slog.Any("Data", []byte{}))
	want := []string{`198.18.0.1 6/2 "maintenance, ticket 42"`, `198.18.0.1 4/0 ""`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("NOTIFICATIONs reported: %q, want %q", got, want)
	}
	if strings.Contains(buf.String(), "received notification") {
		t.Errorf("GoBGP's Info line logged at the default level:\n%s", &buf)
	}
}
