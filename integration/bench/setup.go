package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// Env is what every run needs.
type Env struct {
	Root     string            // repository root
	Programs map[string]string // anycastd, siteweb, benchlisten (this program)
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Keep keeps the labs' work directories (logs, configs).
	Keep bool
	// PerfDir, when set, gets a perf profile of anycastd per phase of each
	// scale run.
	PerfDir string
}

func (e *Env) logf(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "  "+format+"\n", args...)
	}
}

// setup is one running lab: the router, the edge, and the instruments.
type setup struct {
	lab     *lab.Lab
	fib     *FIB // the router's kernel FIB
	bgpdLog *Log // the router's bgpd log
	anyLog  *Log // the edge's anycastd log
	vty     *Vty // the router's bgpd
	peers   int
	v6      bool
}

// start builds the bench topology with the given configurations. listeners
// (may be empty) are host:port addresses for a listener process on the edge.
func start(ctx context.Context, env *Env, rc RouterConfig, ec EdgeConfig, listeners []string) (*setup, error) {
	topo, err := lab.Load(filepath.Join(env.Root, TopologyFile))
	if err != nil {
		return nil, err
	}
	// Session 0's addresses are in the file; the others are added here.
	for k := 1; k < max(rc.Peers, ec.Peers); k++ {
		topo.Nodes[routerNode].Exec = append(topo.Nodes[routerNode].Exec,
			fmt.Sprintf("ip addr add %s/24 dev eth1", routerAddr(k, false)),
			fmt.Sprintf("ip -6 addr add %s/64 dev eth1 nodad", routerAddr(k, true)))
		topo.Nodes[edgeNode].Exec = append(topo.Nodes[edgeNode].Exec,
			fmt.Sprintf("ip addr add %s/24 dev eth1", edgeAddr(k, false)),
			fmt.Sprintf("ip -6 addr add %s/64 dev eth1 nodad", edgeAddr(k, true)))
	}
	if len(listeners) > 0 {
		topo.Nodes[edgeNode].Exec = append(topo.Nodes[edgeNode].Exec,
			fmt.Sprintf(`sh -c "benchlisten listeners %s &"`, strings.Join(listeners, " ")))
	}
	if err := topo.SetFile(routerNode, "frr.conf", []byte(rc.FRRConf())); err != nil {
		return nil, err
	}
	if err := topo.SetFile(edgeNode, "anycastd.toml", []byte(ec.AnycastdTOML())); err != nil {
		return nil, err
	}
	opts := lab.Options{
		Programs:     env.Programs,
		KeepWorkDir:  env.Keep,
		AnycastdArgs: []string{"-log-format", "json"},
	}
	l, err := lab.Start(ctx, topo, opts)
	if err != nil {
		return nil, err
	}
	s := &setup{lab: l, peers: rc.Peers, v6: rc.IPv6}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	// Only VIP ranges: the router's connected routes are in 2001:db8::/32
	// and 198.18.60.0/24.
	if s.fib, err = WatchFIB(l.Namespace(routerNode), netip.MustParsePrefix("203.0.113.0/24"), scaleRange, scaleRange4); err != nil {
		return nil, err
	}
	if s.vty, err = DialVty(filepath.Join(l.NodeDir(routerNode), "bgpd.vty")); err != nil {
		return nil, fmt.Errorf("connecting to bgpd's vty: %w", err)
	}
	s.bgpdLog = FRRLog(filepath.Join(l.NodeDir(routerNode), "bgpd.log"))
	s.anyLog = AnycastdLog(filepath.Join(l.NodeDir(edgeNode), "anycastd.log"))
	env.logf("lab %s up (work dir %s)", l.ID, l.NodeDir(""))
	ok = true
	return s, nil
}

func (s *setup) close() {
	if s.fib != nil {
		s.fib.Close()
	}
	if s.vty != nil {
		s.vty.Close()
	}
	s.lab.Close()
}

func (s *setup) afi() string {
	if s.v6 {
		return "ipv6"
	}
	return "ipv4"
}

// waitEstablished waits until the router has every session established.
func (s *setup) waitEstablished(ctx context.Context) error {
	for {
		sum, err := s.vty.summary(s.afi())
		if err == nil {
			up := 0
			for _, p := range sum.Peers {
				if p.State == "Established" {
					up++
				}
			}
			if up == s.peers {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d sessions: %w (last: %v)", s.peers, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitPaths waits until bgpd holds n paths for prefix.
func (s *setup) waitPaths(ctx context.Context, prefix netip.Prefix, n int) error {
	for {
		got, err := s.vty.paths(s.afi(), prefix.String())
		if err == nil && got == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d paths to %s (have %d): %w", n, prefix, got, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}
