//go:build integration

package integration

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anycastd/anycastd/integration/lab"
)

// bgpPath is one path of a prefix in FRR's BGP table.
type bgpPath struct {
	Peer    string // address of the peer it came from
	ASPath  string
	NextHop string
	Best    bool
}

func (p bgpPath) String() string {
	best := ""
	if p.Best {
		best = " (best)"
	}
	return fmt.Sprintf("from %s as-path [%s] next-hop %s%s", p.Peer, p.ASPath, p.NextHop, best)
}

// frrPaths returns the paths router holds for prefix.
func frrPaths(l *lab.Lab, router, prefix string) ([]bgpPath, error) {
	var out bgpPrefixJSON
	if err := l.VtyshJSON(router, "show bgp ipv4 unicast "+prefix+" json", &out); err != nil {
		return nil, err
	}
	var paths []bgpPath
	for _, p := range out.Paths {
		bp := bgpPath{Peer: p.Peer.PeerID, ASPath: p.ASPath.String, Best: p.Bestpath != nil && p.Bestpath.Overall}
		if len(p.Nexthops) > 0 {
			bp.NextHop = p.Nexthops[0].IP
		}
		paths = append(paths, bp)
	}
	return paths, nil
}

// bestFrom is a condition: router's best path for prefix comes from peer,
// and (if also is not empty) router also holds paths from those peers.
func bestFrom(l *lab.Lab, router, prefix, peer string, also ...string) func() error {
	return func() error {
		paths, err := frrPaths(l, router, prefix)
		if err != nil {
			return err
		}
		best := slices.IndexFunc(paths, func(p bgpPath) bool { return p.Best })
		if best < 0 || paths[best].Peer != peer {
			return fmt.Errorf("%s: %s: want the best path from %s, have %v", router, prefix, peer, paths)
		}
		for _, a := range also {
			if !slices.ContainsFunc(paths, func(p bgpPath) bool { return p.Peer == a }) {
				return fmt.Errorf("%s: %s: no path from %s: %v", router, prefix, a, paths)
			}
		}
		return nil
	}
}

// noPathFrom is a condition: router holds no path for prefix from peer.
func noPathFrom(l *lab.Lab, router, prefix, peer string) func() error {
	return func() error {
		paths, err := frrPaths(l, router, prefix)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(paths, func(p bgpPath) bool { return p.Peer == peer }) {
			return fmt.Errorf("%s: %s: still a path from %s: %v", router, prefix, peer, paths)
		}
		return nil
	}
}

// frrNeighbor returns the session state with peer and why it was last
// reset.
func frrNeighbor(l *lab.Lab, router, peer string) (state, lastReset string, err error) {
	var out map[string]struct {
		BGPState       string `json:"bgpState"`
		LastResetDueTo string `json:"lastResetDueTo"`
	}
	if err := l.VtyshJSON(router, "show bgp neighbors "+peer+" json", &out); err != nil {
		return "", "", err
	}
	n, ok := out[peer]
	if !ok {
		return "", "", fmt.Errorf("%s has no neighbor %s", router, peer)
	}
	return n.BGPState, n.LastResetDueTo, nil
}

// established is a condition: router's session with peer is Established.
func established(l *lab.Lab, router, peer string) func() error {
	return func() error {
		state, _, err := frrNeighbor(l, router, peer)
		if err != nil {
			return err
		}
		if state != "Established" {
			return fmt.Errorf("%s: session with %s is %s", router, peer, state)
		}
		return nil
	}
}

// frrAdjRIB returns the prefixes router received from peer (before
// policy; needs soft-reconfiguration inbound) or advertised to it:
// which is "received-routes" or "advertised-routes".
func frrAdjRIB(l *lab.Lab, router, peer, which string) ([]string, error) {
	var out map[string]any
	if err := l.VtyshJSON(router, fmt.Sprintf("show bgp ipv4 unicast neighbors %s %s json", peer, which), &out); err != nil {
		return nil, err
	}
	key := map[string]string{"received-routes": "receivedRoutes", "advertised-routes": "advertisedRoutes"}[which]
	routes, ok := out[key].(map[string]any)
	if !ok {
		if len(out) == 0 || out["totalPrefixCounter"] != nil {
			return nil, nil // nothing received / advertised
		}
		return nil, fmt.Errorf("%s: %s %s: unexpected output %v", router, peer, which, out)
	}
	return slices.Sorted(maps.Keys(routes)), nil
}

// receivedExactly is a condition: router received exactly want from peer.
func receivedExactly(l *lab.Lab, router, peer string, want ...string) func() error {
	return func() error {
		got, err := frrAdjRIB(l, router, peer, "received-routes")
		if err != nil {
			return err
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s received from %s: [%s], want exactly [%s]", router, peer, strings.Join(got, " "), strings.Join(want, " "))
		}
		return nil
	}
}
