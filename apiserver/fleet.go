package apiserver

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
)

// maxVIPName is the longest VIP name GetFleet accepts, in bytes: longer
// than any name a config holds (etcd keys carry them) but bounded.
const maxVIPName = 253

// GetFleet implements pb.AnycastdServiceServer: the fleet view of
// Options.Fleet, read-only like ListVIPs.
func (s *Server) GetFleet(_ context.Context, req *pb.GetFleetRequest) (*pb.GetFleetResponse, error) {
	if err := vipNameArg(req.Vip); err != nil {
		return nil, err
	}
	cfg := s.o.Config()
	var v *fleet.View
	if s.o.Fleet != nil {
		v = s.o.Fleet()
	}
	if v == nil {
		if req.Vip != "" && !hasVIP(cfg, req.Vip) {
			return nil, status.Errorf(codes.NotFound, "no VIP named %q", req.Vip)
		}
		return &pb.GetFleetResponse{}, nil
	}
	f := fleetMessage(cfg, v, req.Vip)
	if req.Vip != "" && len(f.Vips) == 0 {
		return nil, status.Errorf(codes.NotFound, "no VIP named %q here nor at another site", req.Vip)
	}
	return &pb.GetFleetResponse{Configured: true, Fleet: f}, nil
}

// vipNameArg checks an optional VIP name argument: what a config could
// name (letters, digits, '.', '_', '-'), at most maxVIPName bytes.
func vipNameArg(name string) error {
	if len(name) > maxVIPName {
		return status.Errorf(codes.InvalidArgument, "vip: at most %d bytes", maxVIPName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return status.Errorf(codes.InvalidArgument, "vip %q: a VIP name has only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// fleetMessage converts v: the VIPs configured here in config order, then
// those only other sites publish, sorted by name; only is a filter ("":
// all).
func fleetMessage(cfg *config.Config, v *fleet.View, only string) *pb.Fleet {
	f := &pb.Fleet{
		Site: v.Site, Node: v.Node, MaxDrained: uint32(max(v.MaxDrained, 0)),
		Coordinator: &pb.FleetCoordinator{
			Connected: v.Coordinator.Connected, Since: timestamp(v.Coordinator.Since), Error: v.Coordinator.Err,
		},
	}
	for _, sl := range v.Slots {
		f.DrainSlots = append(f.DrainSlots, &pb.FleetDrainSlot{Site: sl.Site, Node: sl.Node, Since: timestamp(sl.Since), Reason: sl.Reason})
	}
	nodes := map[string][]*pb.FleetVIPNode{}
	var others []string
	for _, e := range v.Entries {
		if _, ok := nodes[e.VIP]; !ok && !hasVIP(cfg, e.VIP) {
			others = append(others, e.VIP)
		}
		nodes[e.VIP] = append(nodes[e.VIP], &pb.FleetVIPNode{
			Site: e.Site, Node: e.Node, State: vipState(e.State), Since: timestamp(e.Since), Reason: e.Reason,
			NoBgp: e.NoBGP,
		})
	}
	slices.Sort(others)
	add := func(name string, minSites int) {
		if only != "" && name != only {
			return
		}
		ann, known := v.Sites(name)
		f.Vips = append(f.Vips, &pb.FleetVIP{
			Name: name, MinSites: uint32(max(minSites, 0)),
			AnnouncingSites: uint32(ann), KnownSites: uint32(known), Nodes: nodes[name],
		})
	}
	for _, vc := range cfg.VIPs {
		add(vc.Name, vc.MinSites)
	}
	for _, name := range others {
		add(name, 0)
	}
	return f
}
