package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/anycastd/anycastd/config"
)

// Read-only queries of the embedded speaker for the gRPC API: per-session
// details and the routes each session advertises.

// MessageCounts counts BGP messages of one direction of a session.
type MessageCounts struct {
	Total, Open, Update, Notification, Keepalive, Refresh uint64
	// WithdrawUpdate counts UPDATEs that withdrew routes, WithdrawPrefix
	// the prefixes withdrawn.
	WithdrawUpdate, WithdrawPrefix uint64
}

// PeerDetail is a session with its counters.
type PeerDetail struct {
	PeerStatus
	RouterID string          // the peer's BGP identifier, once known
	Families []config.Family // configured on the session
	Sent     MessageCounts
	Received MessageCounts
	// Prefixes advertised to the peer, received from it, and accepted by
	// the import policy.
	PrefixesSent, PrefixesReceived, PrefixesAccepted uint64
	Flaps                                            uint32        // times the session went down after Established
	HoldTime                                         time.Duration // negotiated; 0 unless established
	// MaxReceivedPrefixes is the limit per family (0: none).
	MaxReceivedPrefixes uint32
}

// PeerDetails returns every configured session with its message and prefix
// counters, in no particular order.
func (g *GoBGP) PeerDetails(ctx context.Context) ([]PeerDetail, error) {
	var out []PeerDetail
	err := g.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		d := PeerDetail{PeerStatus: peerStatus(p)}
		d.LastError = g.lastError(d.Address)
		d.MaxPrefixesExceeded = g.exceededCount(d.Address)
		if s := p.GetState(); s != nil {
			d.RouterID = s.RouterId
			d.Flaps = s.Flops
			d.Sent = messageCounts(s.GetMessages().GetSent())
			d.Received = messageCounts(s.GetMessages().GetReceived())
		}
		if d.Established() {
			d.HoldTime = time.Duration(p.GetTimers().GetState().GetNegotiatedHoldTime()) * time.Second
		}
		for _, a := range p.GetAfiSafis() {
			fam, ok := configFamily(a.GetConfig().GetFamily())
			if !ok || (a.GetConfig() != nil && !a.GetConfig().Enabled) {
				continue
			}
			d.Families = append(d.Families, fam)
			d.MaxReceivedPrefixes = a.GetPrefixLimits().GetMaxPrefixes()
			if st := a.GetState(); st != nil {
				d.PrefixesSent += st.Advertised
				d.PrefixesReceived += st.Received
				d.PrefixesAccepted += st.Accepted
			}
		}
		slices.Sort(d.Families)
		out = append(out, d)
	})
	if err != nil {
		return nil, fmt.Errorf("listing peers: %w", err)
	}
	return out, nil
}

func messageCounts(m *api.Message) MessageCounts {
	if m == nil {
		return MessageCounts{}
	}
	return MessageCounts{
		Total: m.Total, Open: m.Open, Update: m.Update, Notification: m.Notification,
		Keepalive: m.Keepalive, Refresh: m.Refresh,
		WithdrawUpdate: m.WithdrawUpdate, WithdrawPrefix: m.WithdrawPrefix,
	}
}

func configFamily(f *api.Family) (config.Family, bool) {
	switch {
	case f.GetSafi() != api.Family_SAFI_UNICAST:
		return "", false
	case f.GetAfi() == api.Family_AFI_IP:
		return config.FamilyIPv4, true
	case f.GetAfi() == api.Family_AFI_IP6:
		return config.FamilyIPv6, true
	}
	return "", false
}

// AdvertisedRoute is a route in a session's Adj-RIB-Out: what the speaker
// sends the peer, after the export policy.
type AdvertisedRoute struct {
	Prefix           netip.Prefix
	NextHop          string
	ASPath           []uint32
	Origin           string // "igp", "egp", "incomplete"
	Communities      []config.Community
	LargeCommunities []config.LargeCommunity
	MED              *uint32
	LocalPref        *uint32
}

// AdvertisedRoutes returns the routes the speaker advertises to the peer at
// addr (GoBGP's Adj-RIB-Out, both unicast families), sorted by prefix. An
// address that is not a configured peer is an error.
func (g *GoBGP) AdvertisedRoutes(ctx context.Context, addr netip.Addr) ([]AdvertisedRoute, error) {
	var out []AdvertisedRoute
	var decodeErr error
	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := g.s.ListPath(apiutil.ListPathRequest{
			TableType: api.TableType_TABLE_TYPE_ADJ_OUT, Name: addr.String(), Family: fam,
		}, func(nlri bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if p.Filtered || p.Withdrawal {
					continue
				}
				r, err := advertisedRoute(nlri, p)
				if err != nil {
					decodeErr = fmt.Errorf("decoding route %s to %s: %w", nlri, addr, err)
					continue
				}
				out = append(out, r)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("listing routes advertised to %s: %w", addr, err)
		}
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	slices.SortFunc(out, func(a, b AdvertisedRoute) int { return netip.Prefix.Compare(a.Prefix, b.Prefix) })
	return out, nil
}

func advertisedRoute(nlri bgp.NLRI, p *apiutil.Path) (AdvertisedRoute, error) {
	var r AdvertisedRoute
	pfx, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return r, err
	}
	r.Prefix = pfx
	for _, a := range p.Attrs {
		r.addAttr(a)
	}
	return r, nil
}

func (r *AdvertisedRoute) addAttr(a bgp.PathAttributeInterface) {
	switch a := a.(type) {
	case *bgp.PathAttributeOrigin:
		r.Origin = map[uint8]string{0: "igp", 1: "egp", 2: "incomplete"}[a.Value]
	case *bgp.PathAttributeNextHop:
		r.NextHop = a.Value.String()
	case *bgp.PathAttributeMpReachNLRI:
		// Without the zone: on a link-local session GoBGP's Adj-RIB-Out
		// holds the session's local address with its zone ("fe80::2%eth0");
		// the wire carries the 16 bytes alone (RFC 2545 §3).
		r.NextHop = a.Nexthop.WithZone("").String()
		if a.LinkLocalNexthop.IsValid() {
			r.NextHop += "," + a.LinkLocalNexthop.WithZone("").String()
		}
	case *bgp.PathAttributeAsPath:
		for _, seg := range a.Value {
			r.ASPath = append(r.ASPath, seg.GetAS()...)
		}
	case *bgp.PathAttributeMultiExitDisc:
		v := a.Value
		r.MED = &v
	case *bgp.PathAttributeLocalPref:
		v := a.Value
		r.LocalPref = &v
	case *bgp.PathAttributeCommunities:
		for _, c := range a.Value {
			r.Communities = append(r.Communities, config.Community(c))
		}
	case *bgp.PathAttributeLargeCommunities:
		for _, c := range a.Values {
			r.LargeCommunities = append(r.LargeCommunities,
				config.LargeCommunity{Global: c.ASN, Local1: c.LocalData1, Local2: c.LocalData2})
		}
	}
}
