// Package apiserver serves anycastd's gRPC API (api/anycastd/v1): the
// daemon's state for anycastctl and scripts, an event stream, and the
// control calls (drain, undrain, reload) for operators.
package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/anycastd/anycastd/announcer"
	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/bfd"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/health"
)

// Announcer is what the API needs of the announcer.
type Announcer interface {
	Snapshot() announcer.Snapshot
	Drain(ctx context.Context, vip, reason string, d time.Duration) error
	Undrain(ctx context.Context, vip string) error
}

// Speaker is what the API reads from the BGP speaker.
type Speaker interface {
	PeerDetails(ctx context.Context) ([]announcer.PeerDetail, error)
	AdvertisedRoutes(ctx context.Context, peer netip.Addr) ([]announcer.AdvertisedRoute, error)
}

// Options are the parts the API serves.
type Options struct {
	Version   string
	StartTime time.Time             // when the daemon started (zero: when New was called)
	Config    func() *config.Config // the configuration in force
	Announcer Announcer
	Checks    func() []health.CheckState
	Speaker   Speaker
	Hub       *Hub
	// Reload reloads the configuration and returns warnings about a
	// reload that went ahead; nil: reloading is not supported (Reload
	// answers UNIMPLEMENTED).
	Reload func(ctx context.Context) (warnings []string, err error)
	// Report sets the result of a push ("ttl") check; nil: not supported.
	Report func(check string, healthy bool, message string) error
	// Restart begins a planned restart (as SIGUSR2 does) and returns the
	// restart time the routers keep the routes for; an error refuses it
	// (FAILED_PRECONDITION). nil: Restart answers UNIMPLEMENTED.
	Restart func() (time.Duration, error)
	// BFD gives the BFD sessions (ListPeers shows each peer's); nil: none.
	BFD func() []bfd.SessionStatus
	// Fleet gives the fleet view ([fleet]; GetFleet), e.g. the guard's
	// View; nil, or a nil result: no [fleet] (GetFleet answers configured
	// false).
	Fleet func() *fleet.View
	// Limits bound what clients may hold (zero fields: the defaults, the
	// connection caps fitted to RLIMIT_NOFILE as New finds it).
	Limits Limits
	Logger *slog.Logger // nil: discard
}

// Server implements pb.AnycastdServiceServer.
type Server struct {
	pb.UnimplementedAnycastdServiceServer
	o      Options
	limits Limits        // o.Limits with the defaults filled in
	done   chan struct{} // closed on Stop: open event streams end
}

// New returns a Server over the parts in o.
func New(o Options) *Server {
	if o.StartTime.IsZero() {
		o.StartTime = time.Now()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Hub == nil {
		o.Hub = NewHub(0)
	}
	return &Server{o: o, limits: o.Limits.withDefaults(openFilesLimit()), done: make(chan struct{})}
}

// Limits returns the limits in force: Options.Limits with the defaults
// filled in.
func (s *Server) Limits() Limits { return s.limits }

var _ pb.AnycastdServiceServer = (*Server)(nil)

// GetStatus implements pb.AnycastdServiceServer.
func (s *Server) GetStatus(ctx context.Context, _ *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	cfg := s.o.Config()
	snap := s.o.Announcer.Snapshot()
	n := &pb.Node{
		Version:           s.o.Version,
		GoVersion:         runtime.Version(),
		StartTime:         timestamp(s.o.StartTime),
		Uptime:            durationpb.New(time.Since(s.o.StartTime).Truncate(time.Second)),
		Asn:               cfg.BGP.ASN,
		RouterId:          cfg.BGP.RouterID.String(),
		Drain:             &pb.Drain{Drained: snap.NodeDrained, Reason: snap.NodeReason, Waiting: snap.DrainWaiting},
		Vips:              uint32(len(cfg.VIPs)),
		PrefixesAnnounced: uint32(len(snap.Announced)),
		Peers:             uint32(len(cfg.BGP.Peers)),
	}
	for _, v := range snap.VIPs {
		if announced(vipState(v.State)) {
			n.VipsAnnounced++
		}
	}
	peers, err := s.o.Speaker.PeerDetails(ctx)
	if err != nil {
		return nil, internal(err)
	}
	for _, p := range peers {
		if p.Established() {
			n.PeersEstablished++
		}
	}
	return &pb.GetStatusResponse{Node: n}, nil
}

// ListVIPs implements pb.AnycastdServiceServer.
func (s *Server) ListVIPs(_ context.Context, req *pb.ListVIPsRequest) (*pb.ListVIPsResponse, error) {
	cfg := s.o.Config()
	if req.Name != "" && !hasVIP(cfg, req.Name) {
		return nil, status.Errorf(codes.NotFound, "no VIP named %q", req.Name)
	}
	snap := s.o.Announcer.Snapshot()
	states := make(map[string]*pb.VIP, len(snap.VIPs))
	for _, v := range snap.VIPs {
		states[v.Name] = &pb.VIP{
			State: vipState(v.State), Reason: v.Reason, Since: timestamp(v.Since),
			Require: uint32(v.Require), Passing: uint32(v.Passing),
		}
	}
	checks := make(map[string]health.Status)
	for _, c := range s.o.Checks() {
		checks[c.Name] = c.Status
	}
	ann := make(map[netip.Prefix]*pb.RouteAttributes, len(snap.Announced))
	for _, r := range snap.Announced {
		ann[r.Prefix] = routeAttributes(r)
	}
	resp := &pb.ListVIPsResponse{}
	for _, v := range cfg.VIPs {
		if req.Name != "" && v.Name != req.Name {
			continue
		}
		out, ok := states[v.Name]
		if !ok { // not yet computed: the announcer has not started
			out = &pb.VIP{Reason: "not evaluated yet", Require: uint32(v.Require)}
		}
		out.Name = v.Name
		for _, p := range v.Prefixes {
			attrs, up := ann[p]
			out.Prefixes = append(out.Prefixes, &pb.VIPPrefix{Prefix: p.String(), Announced: up, Attributes: attrs})
		}
		for _, c := range v.Checks {
			out.Checks = append(out.Checks, &pb.CheckRef{Name: c, Status: checkStatus(checks[c])})
		}
		resp.Vips = append(resp.Vips, out)
	}
	return resp, nil
}

// ListChecks implements pb.AnycastdServiceServer.
func (s *Server) ListChecks(_ context.Context, req *pb.ListChecksRequest) (*pb.ListChecksResponse, error) {
	cfg := s.o.Config()
	if req.Name != "" {
		if _, ok := cfg.CheckByName(req.Name); !ok {
			return nil, status.Errorf(codes.NotFound, "no check named %q", req.Name)
		}
	}
	states := make(map[string]health.CheckState)
	for _, st := range s.o.Checks() {
		states[st.Name] = st
	}
	guards := make(map[string][]string)
	for _, v := range cfg.VIPs {
		for _, c := range v.Checks {
			guards[c] = append(guards[c], v.Name)
		}
	}
	resp := &pb.ListChecksResponse{}
	for _, c := range cfg.Checks {
		if req.Name != "" && c.Name != req.Name {
			continue
		}
		st, ok := states[c.Name]
		out := &pb.Check{
			Name: c.Name, Type: string(c.Type), Target: checkTarget(c),
			Status: checkStatus(st.Status), Rise: uint32(c.Rise), Fall: uint32(c.Fall),
			Interval: durationpb.New(c.Interval), Timeout: durationpb.New(c.Timeout),
			Vips: guards[c.Name],
		}
		if ok {
			out.Since = timestamp(st.Since)
			out.ConsecutivePasses = uint32(st.ConsecutivePasses)
			out.ConsecutiveFailures = uint32(st.ConsecutiveFailures)
			out.TotalPasses, out.TotalFailures = st.TotalPasses, st.TotalFailures
			hist := st.History
			if n := int(req.Results); n > 0 && len(hist) > n {
				hist = hist[len(hist)-n:]
			}
			for _, r := range hist {
				out.Results = append(out.Results, probeResult(r))
			}
		}
		resp.Checks = append(resp.Checks, out)
	}
	return resp, nil
}

// ListPeers implements pb.AnycastdServiceServer.
func (s *Server) ListPeers(ctx context.Context, req *pb.ListPeersRequest) (*pb.ListPeersResponse, error) {
	cfg := s.o.Config()
	only, err := s.peerArg(cfg, req.Address)
	if err != nil {
		return nil, err
	}
	details, err := s.peerDetails(ctx)
	if err != nil {
		return nil, err
	}
	var sessions []bfd.SessionStatus
	if s.o.BFD != nil {
		sessions = s.o.BFD()
	}
	resp := &pb.ListPeersResponse{}
	for _, pc := range cfg.BGP.Peers {
		if only.IsValid() && pc.Address != only {
			continue
		}
		p := peerMessage(cfg, pc, details[pc.Address])
		if pc.BFD != nil {
			p.Bfd = bfdMessage(sessions, pc)
		}
		resp.Peers = append(resp.Peers, p)
	}
	return resp, nil
}

func (s *Server) peerDetails(ctx context.Context) (map[netip.Addr]announcer.PeerDetail, error) {
	list, err := s.o.Speaker.PeerDetails(ctx)
	if err != nil {
		return nil, internal(err)
	}
	m := make(map[netip.Addr]announcer.PeerDetail, len(list))
	for _, d := range list {
		m[d.Address] = d
	}
	return m, nil
}

// peerArg parses an optional peer address argument; it must be a
// configured peer.
func (s *Server) peerArg(cfg *config.Config, arg string) (netip.Addr, error) {
	if arg == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(arg)
	if err != nil {
		return a, status.Errorf(codes.InvalidArgument, "peer %q is not an IP address", arg)
	}
	for _, p := range cfg.BGP.Peers {
		if p.Address == a {
			return a, nil
		}
	}
	return a, status.Errorf(codes.NotFound, "no peer %s is configured", a)
}

func peerMessage(cfg *config.Config, pc config.Peer, d announcer.PeerDetail) *pb.Peer {
	out := &pb.Peer{
		Address: pc.Address.String(), Asn: pc.ASN, Description: pc.Description,
		State: peerState(d.State), Since: timestamp(d.Since), Internal: pc.Internal(cfg.BGP.ASN),
		RouterId: d.RouterID, Sent: messageCounts(d.Sent), Received: messageCounts(d.Received),
		PrefixesSent: d.PrefixesSent, PrefixesReceived: d.PrefixesReceived, PrefixesAccepted: d.PrefixesAccepted,
		Flaps: d.Flaps, LastError: d.LastError,
		MaxReceivedPrefixes: pc.MaxReceivedPrefixes, MaxPrefixesExceeded: d.MaxPrefixesExceeded,
	}
	for _, f := range pc.Families {
		out.Families = append(out.Families, string(f))
	}
	if d.Established() {
		if !d.Since.IsZero() {
			out.Uptime = durationpb.New(time.Since(d.Since).Truncate(time.Second))
		}
		out.HoldTime = durationpb.New(d.HoldTime)
	}
	return out
}

// bfdMessage is the BFD session of peer pc; state "down" until the
// manager has it.
func bfdMessage(sessions []bfd.SessionStatus, pc config.Peer) *pb.BFDSession {
	for _, st := range sessions {
		if st.Key.Peer != pc.Address || st.Removing {
			continue
		}
		return &pb.BFDSession{
			State: st.State.String(), Diag: st.Diag.String(), Since: timestamp(st.Since),
			TxInterval: durationpb.New(st.TxInterval), DetectionTime: durationpb.New(st.DetectTime),
			Multihop: st.Key.Multihop,
		}
	}
	return &pb.BFDSession{State: bfd.StateDown.String(), Diag: bfd.DiagNone.String(), Multihop: pc.MultihopTTL > 0}
}

func messageCounts(m announcer.MessageCounts) *pb.MessageCounts {
	return &pb.MessageCounts{
		Total: m.Total, Open: m.Open, Update: m.Update, Notification: m.Notification,
		Keepalive: m.Keepalive, Refresh: m.Refresh, WithdrawUpdate: m.WithdrawUpdate, WithdrawPrefix: m.WithdrawPrefix,
	}
}

// ListRoutes implements pb.AnycastdServiceServer.
func (s *Server) ListRoutes(ctx context.Context, req *pb.ListRoutesRequest) (*pb.ListRoutesResponse, error) {
	cfg := s.o.Config()
	only, err := s.peerArg(cfg, req.Peer)
	if err != nil {
		return nil, err
	}
	details, err := s.peerDetails(ctx)
	if err != nil {
		return nil, err
	}
	owner := make(map[netip.Prefix]string)
	for _, v := range cfg.VIPs {
		for _, p := range v.Prefixes {
			owner[p] = v.Name
		}
	}
	resp := &pb.ListRoutesResponse{}
	for _, pc := range cfg.BGP.Peers {
		if only.IsValid() && pc.Address != only {
			continue
		}
		d := details[pc.Address]
		pr := &pb.PeerRoutes{Peer: pc.Address.String(), State: peerState(d.State)}
		resp.Peers = append(resp.Peers, pr)
		if !d.Established() {
			continue // nothing is advertised on a session that is down
		}
		rs, err := s.o.Speaker.AdvertisedRoutes(ctx, pc.Address)
		if err != nil {
			return nil, internal(err)
		}
		for _, r := range rs {
			pr.Routes = append(pr.Routes, &pb.AdvertisedRoute{
				Prefix: r.Prefix.String(), Vip: owner[r.Prefix], NextHop: r.NextHop,
				AsPath: r.ASPath, Origin: r.Origin,
				Communities: communities(r.Communities), LargeCommunities: largeCommunities(r.LargeCommunities),
				Med: r.MED, LocalPref: r.LocalPref,
			})
		}
	}
	return resp, nil
}

// WatchEvents implements pb.AnycastdServiceServer. A watcher that does not
// read is cut off: when the hub's buffer for it is full, or when one Send
// waits longer than Limits.SendTimeout.
func (s *Server) WatchEvents(req *pb.WatchEventsRequest, stream pb.AnycastdService_WatchEventsServer) error {
	if !req.Follow {
		for _, ev := range s.o.Hub.Events(req.AfterSeq) {
			if err := s.send(stream, ev); err != nil {
				return err
			}
		}
		return nil
	}
	history, events, cancel := s.o.Hub.Subscribe(req.AfterSeq)
	defer cancel()
	for _, ev := range history {
		if err := s.send(stream, ev); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-s.done:
			return status.Error(codes.Unavailable, "anycastd is stopping")
		case ev, ok := <-events:
			if !ok {
				return status.Error(codes.ResourceExhausted, "event stream fell behind; watch again with after_seq to resume")
			}
			if err := s.send(stream, ev); err != nil {
				return err
			}
		}
	}
}

// send sends ev, waiting at most Limits.SendTimeout for the client to take
// it. On the timeout the handler returns, which ends the stream and with
// it the Send still waiting.
func (s *Server) send(stream pb.AnycastdService_WatchEventsServer, ev *pb.Event) error {
	done := make(chan error, 1)
	go func() { done <- stream.Send(&pb.WatchEventsResponse{Event: ev}) }()
	t := time.NewTimer(s.limits.SendTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return status.Errorf(codes.ResourceExhausted,
			"the client took no event for %s; watch again with after_seq to resume", s.limits.SendTimeout)
	}
}

// maxReason is the longest drain reason accepted, in bytes.
const maxReason = 256

// Drain implements pb.AnycastdServiceServer.
func (s *Server) Drain(ctx context.Context, req *pb.DrainRequest) (*pb.DrainResponse, error) {
	vip, err := s.target(req.Vip, req.All, "drain")
	if err != nil {
		return nil, err
	}
	if len(req.Reason) > maxReason || strings.ContainsFunc(req.Reason, unicode.IsControl) {
		return nil, status.Errorf(codes.InvalidArgument, "reason: at most %d bytes, one line", maxReason)
	}
	var d time.Duration
	if req.Duration != nil {
		if err := req.Duration.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "duration: %v", err)
		}
		if d = req.Duration.AsDuration(); d < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "duration: %s is negative", d)
		}
	}
	if err := s.o.Announcer.Drain(ctx, vip, req.Reason, d); err != nil {
		return nil, controlErr(err)
	}
	s.o.Logger.Info("drain requested over the API", "vip", vip, "reason", req.Reason, "for", d)
	// A drain waiting for a fleet drain slot ([fleet] max_drained) says so.
	return &pb.DrainResponse{Status: s.o.Announcer.Snapshot().DrainWaiting}, nil
}

// Undrain implements pb.AnycastdServiceServer.
func (s *Server) Undrain(ctx context.Context, req *pb.UndrainRequest) (*pb.UndrainResponse, error) {
	vip, err := s.target(req.Vip, req.All, "undrain")
	if err != nil {
		return nil, err
	}
	if err := s.o.Announcer.Undrain(ctx, vip); err != nil {
		return nil, controlErr(err)
	}
	s.o.Logger.Info("undrain requested over the API", "vip", vip)
	return &pb.UndrainResponse{}, nil
}

// target checks the vip/all pair of a drain or undrain: exactly one, and
// the VIP configured. It returns the VIP name, "" for the node.
func (s *Server) target(vip string, all bool, verb string) (string, error) {
	switch {
	case vip != "" && all:
		return "", status.Errorf(codes.InvalidArgument, "%s: name a VIP or set all, not both", verb)
	case vip == "" && !all:
		return "", status.Errorf(codes.InvalidArgument, "%s: name a VIP, or set all for the whole node", verb)
	case all:
		return "", nil
	}
	if !hasVIP(s.o.Config(), vip) {
		return "", status.Errorf(codes.NotFound, "no VIP named %q", vip)
	}
	return vip, nil
}

// Reload implements pb.AnycastdServiceServer.
func (s *Server) Reload(ctx context.Context, _ *pb.ReloadRequest) (*pb.ReloadResponse, error) {
	if s.o.Reload == nil {
		return nil, status.Error(codes.Unimplemented, "this anycastd cannot reload its configuration over the API yet; restart it to apply a new configuration")
	}
	warnings, err := s.o.Reload(ctx)
	if err != nil {
		if c := status.Code(err); c != codes.Unknown {
			return nil, err
		}
		if errors.Is(err, announcer.ErrNotConverged) {
			// In force; the speaker catches up by itself.
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return nil, status.Errorf(codes.FailedPrecondition, "reload refused, the running configuration stays: %v", err)
	}
	s.o.Logger.Info("configuration reloaded over the API")
	return &pb.ReloadResponse{Warnings: warnings}, nil
}

// Restart implements pb.AnycastdServiceServer.
func (s *Server) Restart(context.Context, *pb.RestartRequest) (*pb.RestartResponse, error) {
	if s.o.Restart == nil {
		return nil, status.Error(codes.Unimplemented, "this anycastd cannot restart over the API; send it SIGUSR2")
	}
	rt, err := s.o.Restart()
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	s.o.Logger.Info("planned restart requested over the API")
	return &pb.RestartResponse{RestartTimeSeconds: uint32(rt / time.Second)}, nil
}

// ReportCheck implements pb.AnycastdServiceServer.
func (s *Server) ReportCheck(_ context.Context, req *pb.ReportCheckRequest) (*pb.ReportCheckResponse, error) {
	if s.o.Report == nil {
		return nil, status.Error(codes.Unimplemented, "this anycastd takes no check reports")
	}
	if req.Check == "" {
		return nil, status.Error(codes.InvalidArgument, "check: name the check to report on")
	}
	if _, ok := s.o.Config().CheckByName(req.Check); !ok {
		return nil, status.Errorf(codes.NotFound, "no check named %q", req.Check)
	}
	if len(req.Message) > 4096 {
		return nil, status.Error(codes.InvalidArgument, "message: at most 4096 bytes")
	}
	if err := s.o.Report(req.Check, req.Healthy, req.Message); err != nil {
		if errors.Is(err, health.ErrUnknownCheck) {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		return nil, status.Error(codes.FailedPrecondition, err.Error()) // not a ttl check
	}
	return &pb.ReportCheckResponse{}, nil
}

func hasVIP(cfg *config.Config, name string) bool {
	return slices.ContainsFunc(cfg.VIPs, func(v config.VIP) bool { return v.Name == name })
}

// controlErr maps an announcer error to a status.
func controlErr(err error) error {
	switch {
	case errors.Is(err, announcer.ErrUnknownVIP):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	return status.Error(codes.Unavailable, err.Error()) // the announcer is stopping
}

func internal(err error) error { return status.Error(codes.Internal, err.Error()) }
