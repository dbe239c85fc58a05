package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// hostile is text a check's output, a ttl report or a router could put in
// front of the operator: it would retitle the terminal (ESC ] 0 ; … BEL),
// clear it (ESC [ 2 J), return to the line start and break the table.
const hostile = "ok\x1b]0;owned\a\x1b[2J\rgone\nnext\tcol\u202eevil\xff"

// Every table cell and event line shows control characters escaped; -o
// json (printJSON, protojson) is left as the API says.
func TestRenderControlCharacters(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ts := timestamppb.New(now.Add(-time.Minute))
	res := &pb.ProbeResult{Time: ts, Latency: durationpb.New(2 * time.Millisecond), Outcome: pb.Outcome_OUTCOME_FAIL,
		Error: "exit status 1: " + hostile, Output: hostile + "\nsecond line"}
	check := &pb.Check{Name: "cmd\x1b[31m", Type: "exec", Target: "/bin/sh -c 'printf \"\\033]0;x\\a\"'\r", Status: pb.CheckStatus_CHECK_STATUS_DOWN,
		Since: ts, Rise: 2, Fall: 2, Interval: durationpb.New(time.Second), Timeout: durationpb.New(time.Second),
		Vips: []string{"web"}, Results: []*pb.ProbeResult{res}}
	var b strings.Builder
	renderChecks(&b, now, []*pb.Check{check})
	b.WriteString("\n")
	renderCheck(&b, now, check)
	b.WriteString("\n")
	renderVIPs(&b, now, []*pb.VIP{{Name: "web", State: pb.VIPState_VIP_STATE_DOWN, Since: ts, Reason: "check cmd: " + hostile}})
	b.WriteString("\n")
	renderPeers(&b, now, []*pb.Peer{{Address: "192.0.2.1", Asn: 65000, State: pb.PeerState_PEER_STATE_ACTIVE, Since: ts,
		LastError: `notification-received code 6(cease) subcode 2(administrative shutdown): "x"` + hostile, Description: "edge\a"}})
	b.WriteString("\n")
	renderStatus(&b, now, &pb.Node{Version: "v1", GoVersion: "go", StartTime: ts, Uptime: durationpb.New(time.Minute),
		Drain: &pb.Drain{Drained: true, Reason: hostile}})
	b.WriteString("\n")
	for _, ev := range []*pb.Event{
		{Seq: 1, Time: ts, Kind: &pb.Event_Check{Check: &pb.CheckTransition{Check: "cmd\x1b[31m", From: pb.CheckStatus_CHECK_STATUS_UP,
			To: pb.CheckStatus_CHECK_STATUS_DOWN, Last: res}}},
		{Seq: 2, Time: ts, Kind: &pb.Event_Vip{Vip: &pb.VIPTransition{Vip: "web", From: pb.VIPState_VIP_STATE_UP,
			To: pb.VIPState_VIP_STATE_DOWN, Reason: hostile}}},
	} {
		b.WriteString(eventLine(ev) + "\n")
	}
	out := b.String()
	if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && unprintable(r) }); i >= 0 {
		t.Errorf("raw control character %q at %d:\n%s", out[i], i, out)
	}
	golden(t, "control-chars", rewrite(out, []string{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?(Z|[+-]\d\d:\d\d)`, "TIMESTAMP",
		`\d\d:\d\d:\d\d\.\d{3}`, "HH:MM:SS.mmm"}))
}
