package apiserver

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// Conversions from the daemon's types to the API's.

var vipStates = map[routes.State]pb.VIPState{
	"up":       pb.VIPState_VIP_STATE_UP,
	"degraded": pb.VIPState_VIP_STATE_DEGRADED,
	"down":     pb.VIPState_VIP_STATE_DOWN,
	"draining": pb.VIPState_VIP_STATE_DRAINING,
	"disabled": pb.VIPState_VIP_STATE_DISABLED,
	"held":     pb.VIPState_VIP_STATE_HELD,
	"removed":  pb.VIPState_VIP_STATE_REMOVED,
	// Kept announced by the fleet guard.
	routes.StateGuarded: pb.VIPState_VIP_STATE_GUARDED,
}

// vipState maps a routes.State; one this API does not know (and "none")
// is UNSPECIFIED.
func vipState(s routes.State) pb.VIPState { return vipStates[s] }

// announced reports whether a VIP in state s is announced.
func announced(s pb.VIPState) bool {
	return s == pb.VIPState_VIP_STATE_UP || s == pb.VIPState_VIP_STATE_DEGRADED || s == pb.VIPState_VIP_STATE_DRAINING ||
		s == pb.VIPState_VIP_STATE_GUARDED
}

func checkStatus(s health.Status) pb.CheckStatus {
	switch s {
	case health.StatusUp:
		return pb.CheckStatus_CHECK_STATUS_UP
	case health.StatusDown:
		return pb.CheckStatus_CHECK_STATUS_DOWN
	}
	return pb.CheckStatus_CHECK_STATUS_UNKNOWN
}

var peerStates = map[string]pb.PeerState{
	"idle":        pb.PeerState_PEER_STATE_IDLE,
	"connect":     pb.PeerState_PEER_STATE_CONNECT,
	"active":      pb.PeerState_PEER_STATE_ACTIVE,
	"opensent":    pb.PeerState_PEER_STATE_OPENSENT,
	"openconfirm": pb.PeerState_PEER_STATE_OPENCONFIRM,
	"established": pb.PeerState_PEER_STATE_ESTABLISHED,
}

func peerState(s string) pb.PeerState { return peerStates[s] }

var outcomes = map[string]pb.Outcome{
	"pass":    pb.Outcome_OUTCOME_PASS,
	"fail":    pb.Outcome_OUTCOME_FAIL,
	"timeout": pb.Outcome_OUTCOME_TIMEOUT,
	"error":   pb.Outcome_OUTCOME_ERROR,
}

func probeResult(r health.Result) *pb.ProbeResult {
	return &pb.ProbeResult{
		Time:    timestamp(r.Time),
		Latency: durationpb.New(r.Latency),
		Outcome: outcomes[r.Outcome()],
		Error:   r.Err,
		Output:  r.Output,
	}
}

// timestamp converts t; the zero time is unset.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// wellKnown names the communities that have a name in the config.
var wellKnown = map[config.Community]string{
	config.CommunityGracefulShutdown: "graceful-shutdown",
	config.CommunityBlackhole:        "blackhole",
	config.CommunityNoExport:         "no-export",
	config.CommunityNoAdvertise:      "no-advertise",
}

func communities(cs []config.Community) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		if n, ok := wellKnown[c]; ok {
			out = append(out, n)
		} else {
			out = append(out, c.String())
		}
	}
	return out
}

func largeCommunities(ls []config.LargeCommunity) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.String())
	}
	return out
}

func routeAttributes(r routes.Route) *pb.RouteAttributes {
	return &pb.RouteAttributes{
		Communities:      communities(r.Communities),
		LargeCommunities: largeCommunities(r.LargeCommunities),
		Med:              r.MED,
		LocalPref:        r.LocalPref,
		Prepend:          uint32(max(r.Prepend, 0)),
	}
}

// checkTarget says what a check probes, in a few words.
func checkTarget(c config.Check) string {
	switch {
	case c.TCP != nil:
		return c.TCP.Address
	case c.HTTP != nil:
		if c.HTTP.Method != "" && c.HTTP.Method != "GET" {
			return c.HTTP.Method + " " + c.HTTP.URL
		}
		return c.HTTP.URL
	case c.DNS != nil:
		return fmt.Sprintf("%s %s @%s", c.DNS.QueryName, c.DNS.QueryType, c.DNS.Server)
	case c.GRPC != nil:
		if c.GRPC.Service != "" {
			return c.GRPC.Address + " " + c.GRPC.Service
		}
		return c.GRPC.Address
	case c.Exec != nil:
		if c.Exec.Shell && len(c.Exec.Command) == 3 {
			return c.Exec.Command[2]
		}
		return strings.Join(c.Exec.Command, " ")
	case c.Process != nil:
		if c.Process.Unit != "" {
			return c.Process.Unit
		}
		return c.Process.PIDFile
	case c.Listen != nil:
		addr := "*"
		if c.Listen.Addr.IsValid() {
			addr = c.Listen.Addr.String()
		}
		return fmt.Sprintf("%s %s", c.Listen.Protocol, net.JoinHostPort(addr, strconv.Itoa(int(c.Listen.Port))))
	case c.TTL != nil:
		return fmt.Sprintf("reports every %s", c.TTL.TTL)
	}
	return ""
}
