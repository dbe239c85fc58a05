package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
)

// fleetServer answers GetFleet and Drain as a daemon with [fleet] (or
// without: fleet nil) would.
type fleetServer struct {
	pb.UnimplementedAnycastdServiceServer
	fleet   *pb.Fleet
	waiting string // DrainResponse.status
}

func (s *fleetServer) GetFleet(_ context.Context, req *pb.GetFleetRequest) (*pb.GetFleetResponse, error) {
	if s.fleet == nil {
		return &pb.GetFleetResponse{}, nil
	}
	if req.Vip == "" {
		return &pb.GetFleetResponse{Configured: true, Fleet: s.fleet}, nil
	}
	for _, v := range s.fleet.Vips {
		if v.Name == req.Vip {
			f := proto.Clone(s.fleet).(*pb.Fleet)
			f.Vips = []*pb.FleetVIP{v}
			return &pb.GetFleetResponse{Configured: true, Fleet: f}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no VIP named %q here nor at another site", req.Vip)
}

func (s *fleetServer) Drain(context.Context, *pb.DrainRequest) (*pb.DrainResponse, error) {
	return &pb.DrainResponse{Status: s.waiting}, nil
}

// serveFake serves srv on a unix socket and returns its path.
func serveFake(t *testing.T, srv pb.AnycastdServiceServer) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "actl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterAnycastdServiceServer(g, srv)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return path
}

var fleetNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func tsAgo(ago time.Duration) *timestamppb.Timestamp { return timestamppb.New(fleetNow.Add(-ago)) }

// testFleet: three sites; web guarded here (ams1/edge1), up at fra1, down
// at lhr1, which holds the one drain slot; api configured here and
// published by nobody; dns only at fra1.
func testFleet() *pb.Fleet {
	return &pb.Fleet{
		Site: "ams1", Node: "edge1", MaxDrained: 1,
		Coordinator: &pb.FleetCoordinator{Connected: true, Since: tsAgo(2 * time.Hour)},
		DrainSlots:  []*pb.FleetDrainSlot{{Site: "lhr1", Node: "edge1", Since: tsAgo(3 * time.Minute), Reason: "kernel upgrade"}},
		Vips: []*pb.FleetVIP{
			{Name: "web", MinSites: 2, AnnouncingSites: 2, KnownSites: 3, Nodes: []*pb.FleetVIPNode{
				{Site: "ams1", Node: "edge1", State: pb.VIPState_VIP_STATE_GUARDED, Since: tsAgo(4 * time.Minute),
					Reason: "only 1 other site announces it, min_sites 2"},
				{Site: "ams1", Node: "edge2", State: pb.VIPState_VIP_STATE_DOWN, Since: tsAgo(4 * time.Minute)},
				{Site: "fra1", Node: "edge1", State: pb.VIPState_VIP_STATE_UP, Since: tsAgo(26 * time.Hour)},
				{Site: "lhr1", Node: "edge1", State: pb.VIPState_VIP_STATE_DISABLED, Since: tsAgo(3 * time.Minute),
					Reason: "drained: kernel upgrade"},
			}},
			{Name: "api", MinSites: 1},
			{Name: "dns", AnnouncingSites: 1, KnownSites: 2, Nodes: []*pb.FleetVIPNode{
				{Site: "fra1", Node: "edge1", State: pb.VIPState_VIP_STATE_UP, Since: tsAgo(time.Hour)},
				{Site: "lhr1", Node: "edge2", State: pb.VIPState_VIP_STATE_UP, Since: tsAgo(time.Hour), NoBgp: true},
			}},
		},
	}
}

// The table, against a golden file; the coordinator lost and a VIP filter.
func TestFleetTable(t *testing.T) {
	var b strings.Builder
	renderFleet(&b, fleetNow, testFleet())
	golden(t, "fleet", b.String())

	f := testFleet()
	f.Coordinator = &pb.FleetCoordinator{Since: tsAgo(90 * time.Second), Error: "context deadline exceeded"}
	f.MaxDrained, f.DrainSlots = 0, nil
	if got, want := fleetSummary(fleetNow, f),
		"this node: ams1/edge1 (*); coordinator LOST for 1m30s (context deadline exceeded); drain slots: no limit, 0 held"; got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
}

// anycastctl fleet over the API: the table, one VIP, -o json, an unknown
// VIP, and a daemon without [fleet].
func TestFleetCommand(t *testing.T) {
	socket := serveFake(t, &fleetServer{fleet: testFleet()})
	out, errOut, code := ctl(t, context.Background(), "--socket", socket, "fleet")
	if code != exitOK || !strings.HasPrefix(out, "this node: ams1/edge1 (*); coordinator connected for ") ||
		!strings.Contains(out, "edge1*") || strings.Count(out, "\nweb ") != 4 {
		t.Errorf("fleet: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = ctl(t, context.Background(), "--socket", socket, "fleet", "dns")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || len(lines) != 5 || !strings.HasPrefix(lines[3], "dns ") || !strings.Contains(lines[4], "up (no BGP session)") {
		t.Errorf("fleet dns: exit %d\n%s", code, out)
	}
	out, _, code = ctl(t, context.Background(), "--socket", socket, "fleet", "-o", "json")
	var resp pb.GetFleetResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil || code != exitOK || !resp.Configured ||
		resp.Fleet.Vips[0].Nodes[0].State != pb.VIPState_VIP_STATE_GUARDED || !strings.Contains(out, `"VIP_STATE_GUARDED"`) {
		t.Errorf("fleet -o json: exit %d, %v\n%s", code, err, out)
	}
	_, errOut, code = ctl(t, context.Background(), "--socket", socket, "fleet", "nope")
	if code != exitDaemonError || !strings.Contains(errOut, `no VIP named "nope"`) {
		t.Errorf("fleet nope: exit %d, %q", code, errOut)
	}
	if _, errOut, code = ctl(t, context.Background(), "fleet", "a", "b"); code != exitUsage {
		t.Errorf("fleet a b: exit %d, %q; want usage", code, errOut)
	}

	none := serveFake(t, &fleetServer{})
	out, errOut, code = ctl(t, context.Background(), "--socket", none, "fleet")
	if code != exitDaemonError || out != "" || !strings.Contains(errOut, "no [fleet] in its configuration") {
		t.Errorf("fleet without [fleet]: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = ctl(t, context.Background(), "--socket", none, "fleet", "-o", "json")
	resp.Reset()
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil || code != exitDaemonError || resp.Configured {
		t.Errorf("fleet -o json without [fleet]: exit %d, %v\n%s", code, err, out)
	}
}

// A drain waiting for a fleet drain slot says so, and what holds them.
func TestDrainWaitingForSlot(t *testing.T) {
	socket := serveFake(t, &fleetServer{waiting: "waiting for a drain slot: 1 of 1 held by ams2/edge1"})
	out, errOut, code := ctl(t, context.Background(), "--socket", socket, "drain", "web")
	want := "drain of VIP web requested, not yet in effect: waiting for a drain slot: 1 of 1 held by ams2/edge1; " +
		"it stays in service until a slot is free (anycastctl fleet shows who holds them)\n"
	if code != exitOK || out != want {
		t.Errorf("drain: exit %d %q\n got %q\nwant %q", code, errOut, out, want)
	}
	socket = serveFake(t, &fleetServer{})
	if out, _, _ := ctl(t, context.Background(), "--socket", socket, "drain"); !strings.HasPrefix(out, "draining the node") {
		t.Errorf("drain in effect says %q", out)
	}
}
