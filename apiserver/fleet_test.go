package apiserver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
	"github.com/anycastd/anycastd/routes"
)

// testView is a fleet of three sites: web announced by ams1 (this node,
// guarded) and fra1, down at lhr1; dns published by fra1 only.
func testView() *fleet.View {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return &fleet.View{
		Site: "ams1", Node: "edge1", MaxDrained: 1,
		Coordinator: fleet.Coordinator{Connected: true, Since: t0},
		Entries: []fleet.Entry{
			{VIP: "dns", Site: "fra1", Node: "edge1", State: routes.StateUp, Since: t0},
			{VIP: "web", Site: "ams1", Node: "edge1", State: routes.StateGuarded, Since: t0.Add(time.Minute),
				Reason: "only 1 other site announces it, min_sites 2"},
			{VIP: "web", Site: "fra1", Node: "edge1", State: routes.StateUp, Since: t0},
			{VIP: "web", Site: "fra1", Node: "edge2", State: routes.StateDown, Since: t0},
			{VIP: "web", Site: "lhr1", Node: "edge1", State: routes.StateDown, Since: t0, Reason: "web is down"},
		},
		Slots: []fleet.Slot{{Site: "lhr1", Node: "edge1", Since: t0, Reason: "kernel upgrade"}},
	}
}

func TestGetFleet(t *testing.T) {
	var mu sync.Mutex
	view := testView()
	_, l := testServer(t, config.API{}, Options{Fleet: func() *fleet.View {
		mu.Lock()
		defer mu.Unlock()
		return view
	}})
	c := pb.NewAnycastdServiceClient(client(t, unixTarget(l), nil))
	ctx := context.Background()

	resp, err := c.GetFleet(ctx, &pb.GetFleetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	f := resp.Fleet
	if !resp.Configured || f.Site != "ams1" || f.Node != "edge1" || f.MaxDrained != 1 || !f.Coordinator.GetConnected() {
		t.Errorf("GetFleet = %v", resp)
	}
	if len(f.DrainSlots) != 1 || f.DrainSlots[0].Site != "lhr1" || f.DrainSlots[0].Reason != "kernel upgrade" {
		t.Errorf("drain slots = %v", f.DrainSlots)
	}
	// The configured VIP first (with this node's min_sites: the default
	// without [fleet] in testConfig is 0), then the other sites' ones.
	if len(f.Vips) != 2 || f.Vips[0].Name != "web" || f.Vips[1].Name != "dns" {
		t.Fatalf("vips = %v, want web then dns", f.Vips)
	}
	web := f.Vips[0]
	if web.AnnouncingSites != 2 || web.KnownSites != 3 || len(web.Nodes) != 4 {
		t.Errorf("web = %v, want 2 of 3 sites announcing, 4 nodes", web)
	}
	if n := web.Nodes[0]; n.Site != "ams1" || n.State != pb.VIPState_VIP_STATE_GUARDED ||
		!strings.Contains(n.Reason, "min_sites 2") || n.Since.AsTime() != view.Entries[1].Since {
		t.Errorf("web at ams1 = %v", n)
	}
	if dns := f.Vips[1]; dns.MinSites != 0 || dns.AnnouncingSites != 1 || len(dns.Nodes) != 1 {
		t.Errorf("dns = %v", dns)
	}

	one, err := c.GetFleet(ctx, &pb.GetFleetRequest{Vip: "dns"})
	if err != nil || len(one.Fleet.Vips) != 1 || one.Fleet.Vips[0].Name != "dns" {
		t.Errorf("GetFleet dns = %v, %v", one, err)
	}
	for _, tt := range []struct {
		vip  string
		code codes.Code
	}{
		{"nope", codes.NotFound},
		{"web\n", codes.InvalidArgument},
		{"a/b", codes.InvalidArgument},
		{strings.Repeat("x", 300), codes.InvalidArgument},
	} {
		if _, err := c.GetFleet(ctx, &pb.GetFleetRequest{Vip: tt.vip}); status.Code(err) != tt.code {
			t.Errorf("GetFleet(%q) = %v, want %s", tt.vip, err, tt.code)
		}
	}

	// The view is read at each call: the coordinator lost shows at once.
	mu.Lock()
	view = testView()
	view.Coordinator = fleet.Coordinator{Since: time.Now(), Err: "context deadline exceeded"}
	mu.Unlock()
	resp, err = c.GetFleet(ctx, &pb.GetFleetRequest{})
	if co := resp.GetFleet().GetCoordinator(); err != nil || co.Connected || co.Error != "context deadline exceeded" {
		t.Errorf("coordinator lost: %v, %v", co, err)
	}
}

// Without [fleet] (no func, or a nil view): configured false, nothing else;
// a configured VIP is no error, an unknown one still is.
func TestGetFleetNotConfigured(t *testing.T) {
	for name, fn := range map[string]func() *fleet.View{"no func": nil, "nil view": func() *fleet.View { return nil }} {
		_, l := testServer(t, config.API{}, Options{Fleet: fn})
		c := pb.NewAnycastdServiceClient(client(t, unixTarget(l), nil))
		resp, err := c.GetFleet(context.Background(), &pb.GetFleetRequest{Vip: "web"})
		if err != nil || resp.Configured || resp.Fleet != nil {
			t.Errorf("%s: GetFleet = %v, %v; want configured false", name, resp, err)
		}
		if _, err := c.GetFleet(context.Background(), &pb.GetFleetRequest{Vip: "nope"}); status.Code(err) != codes.NotFound {
			t.Errorf("%s: GetFleet(nope) = %v, want NotFound", name, err)
		}
	}
}

// GetFleet is a read: open on a plain TCP listener.
func TestGetFleetOverPlainTCP(t *testing.T) {
	_, l := testServer(t, config.API{TCPListen: "127.0.0.1:0"}, Options{Fleet: testView})
	c := pb.NewAnycastdServiceClient(client(t, "passthrough:///"+l.Addrs()[1].String(), nil))
	if resp, err := c.GetFleet(context.Background(), &pb.GetFleetRequest{}); err != nil || !resp.Configured {
		t.Errorf("GetFleet over plain TCP = %v, %v", resp, err)
	}
}

// A drain waiting for a fleet drain slot says so; one in effect says
// nothing.
func TestDrainStatus(t *testing.T) {
	ann, l := testServer(t, config.API{}, Options{})
	c := pb.NewAnycastdServiceClient(client(t, unixTarget(l), nil))
	resp, err := c.Drain(context.Background(), &pb.DrainRequest{Vip: "web"})
	if err != nil || resp.Status != "" {
		t.Errorf("Drain = %v, %v; want an empty status", resp, err)
	}
	ann.mu.Lock()
	ann.snap.DrainWaiting = "waiting for a drain slot: 1 of 1 held by ams2/edge1"
	ann.mu.Unlock()
	resp, err = c.Drain(context.Background(), &pb.DrainRequest{All: true})
	if err != nil || resp.Status != "waiting for a drain slot: 1 of 1 held by ams2/edge1" {
		t.Errorf("Drain while waiting = %v, %v", resp, err)
	}
}

// Every state a VIP can be in has its own API name.
func TestEveryVIPStateConverts(t *testing.T) {
	seen := map[pb.VIPState]routes.State{}
	for _, s := range append(routes.States, routes.StateRemoved) {
		v := vipState(s)
		if v == pb.VIPState_VIP_STATE_UNSPECIFIED {
			t.Errorf("routes.State %q converts to UNSPECIFIED", s)
		}
		if o, dup := seen[v]; dup {
			t.Errorf("%q and %q both convert to %s", o, s, v)
		}
		seen[v] = s
	}
	if got := protojsonEnum(vipState(routes.StateGuarded)); got != `"VIP_STATE_GUARDED"` {
		t.Errorf("guarded = %s", got)
	}
	if !announced(vipState(routes.StateGuarded)) {
		t.Error("a guarded VIP does not count as announced (GetStatus vips_announced)")
	}
}

func protojsonEnum(s pb.VIPState) string {
	b, _ := protojson.Marshal(&pb.VIP{State: s})
	_, v, _ := strings.Cut(string(b), ":")
	return strings.TrimSuffix(v, "}")
}
