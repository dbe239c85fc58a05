package announcer

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/anycastd/anycastd/routes"
)

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func familyOf(p netip.Prefix) *api.Family {
	if p.Addr().Is4() {
		return familyIPv4
	}
	return familyIPv6
}

// buildPath turns a route into a GoBGP path. The next hop is left unspecified
// (0.0.0.0 or ::): GoBGP fills in the session's local address, and the export
// policy overrides it where a peer has next_hop_ipv4/next_hop_ipv6 configured.
func buildPath(r routes.Route, localASN uint32) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{
		Prefix:    r.Prefix.Addr().String(),
		PrefixLen: uint32(r.Prefix.Bits()),
	})
	if err != nil {
		return nil, err
	}
	fam := familyOf(r.Prefix)
	attrs := []proto.Message{&api.OriginAttribute{Origin: 0}} // IGP
	if r.Prefix.Addr().Is4() {
		attrs = append(attrs, &api.NextHopAttribute{NextHop: "0.0.0.0"})
	} else {
		attrs = append(attrs, &api.MpReachNLRIAttribute{
			Family:   fam,
			NextHops: []string{"::"},
			Nlris:    []*anypb.Any{nlri},
		})
	}
	if r.Prepend > 0 {
		nums := make([]uint32, r.Prepend)
		for i := range nums {
			nums[i] = localASN
		}
		attrs = append(attrs, &api.AsPathAttribute{Segments: []*api.AsSegment{
			{Type: api.AsSegment_AS_SEQUENCE, Numbers: nums},
		}})
	}
	if r.MED != nil {
		attrs = append(attrs, &api.MultiExitDiscAttribute{Med: *r.MED})
	}
	if r.LocalPref != nil {
		attrs = append(attrs, &api.LocalPrefAttribute{LocalPref: *r.LocalPref})
	}
	if len(r.Communities) > 0 {
		cs := make([]uint32, len(r.Communities))
		for i, c := range r.Communities {
			cs[i] = uint32(c)
		}
		attrs = append(attrs, &api.CommunitiesAttribute{Communities: cs})
	}
	if len(r.LargeCommunities) > 0 {
		ls := make([]*api.LargeCommunity, len(r.LargeCommunities))
		for i, c := range r.LargeCommunities {
			ls[i] = &api.LargeCommunity{GlobalAdmin: c.Global, LocalData1: c.Local1, LocalData2: c.Local2}
		}
		attrs = append(attrs, &api.LargeCommunitiesAttribute{Communities: ls})
	}
	pattrs := make([]*anypb.Any, len(attrs))
	for i, a := range attrs {
		if pattrs[i], err = anypb.New(a); err != nil {
			return nil, fmt.Errorf("encoding path attribute: %w", err)
		}
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: pattrs}, nil
}
