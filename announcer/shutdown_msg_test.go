package announcer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/internal/bgptest"
	"github.com/anycastd/anycastd/internal/rawbgp"
)

// adminCommunication is the data of an RFC 9003 Administrative Shutdown or
// Reset NOTIFICATION carrying msg.
func adminCommunication(msg string) []byte {
	return append([]byte{byte(len(msg))}, msg...)
}

// A router that closes the session with a shutdown message (RFC 8203/9003,
// e.g. BIRD's `disable edge "maintenance, ticket 42"`): the message is in the
// session's LastError and in the "BGP session lost" line, its control
// characters escaped.
func TestShutdownMessageReceived(t *testing.T) {
	h := startHostileLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct {
		subcode byte
		msg     string
		want    string
	}{
		{2, "maintenance, ticket 42", `notification-received code 6(cease) subcode 2(administrative shutdown): "maintenance, ticket 42"`},
		{4, "reboot\x1b]0;owned\x07\r\nnow", `notification-received code 6(cease) subcode 4(administrative reset): "reboot\x1b]0;owned\a\r\nnow"`},
	} {
		p := h.accept(ctx, goodOpen(false))
		if err := p.Send(rawbgp.Notification(rawbgp.CodeCease, tc.subcode, adminCommunication(tc.msg))); err != nil {
			t.Fatal(err)
		}
		p.Close()
		bgptest.Eventually(t, wait, func() bool { return h.rawDetail().LastError == tc.want },
			fmt.Sprintf("last error %s", tc.want), func() string { return fmt.Sprintf("%+v", h.rawDetail()) })
		line := fmt.Sprintf("reason=%q", tc.want)
		bgptest.Eventually(t, wait, func() bool {
			for l := range strings.Lines(h.logs.String()) {
				if strings.Contains(l, `msg="BGP session lost`) && strings.Contains(l, line) {
					return true
				}
			}
			return false
		}, "the session-lost line with "+line, nil)
	}
}
