//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anycastd/anycastd/integration/lab"
)

// The iBGP test topology (integration/testdata/ibgp): BIRD in the site's
// own AS, FRR in another.
const (
	ibgpTopo = "integration/testdata/ibgp/ibgp.clab.yml"
	vip70    = "203.0.113.70/32"
	siteEBGP = "198.18.71.2" // the site, as FRR sees it
)

var birdASPath = regexp.MustCompile(`BGP\.as_path:([ 0-9]*)`)

// birdVIP returns BIRD's route for prefix from its protocol edge: whether
// it has one, and its AS path.
func birdVIP(l *lab.Lab, prefix string) (bool, string, error) {
	out, err := l.Birdc("router", "show route for "+prefix+" all")
	switch {
	case err != nil && strings.Contains(err.Error(), "Network not found"):
		return false, "", nil // birdc exits 1 then
	case err != nil:
		return false, "", err
	}
	m := birdRouteLine.FindStringSubmatch(out)
	p := birdASPath.FindStringSubmatch(out)
	if m == nil || p == nil || m[1] != "edge" {
		return false, "", fmt.Errorf("BIRD: %s: unexpected route:\n%s", prefix, out)
	}
	return true, strings.TrimSpace(p[1]), nil
}

// TestIBGPPrependWithdraw (issue #16): a VIP with prepend = 2, anycastd in
// AS 64497 with BIRD in the same AS (iBGP) and FRR in AS 64500 (eBGP).
// BIRD gets the VIP without prepends, FRR with them; when the VIP's check
// fails both must lose it. Before the prepends moved to the export policy
// the path carried 64497 64497, which GoBGP never sends to an iBGP peer:
// BIRD never had the VIP.
func TestIBGPPrependWithdraw(t *testing.T) {
	needLab(t, lab.RoleBIRD, lab.RoleFRR)
	fail := filepath.Join(t.TempDir(), "fail")
	l := startLab(t, ibgpTopo, func(topo *lab.Topology) {
		conf, err := topo.Nodes["site"].File("anycastd.toml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(conf, []byte("FAIL_FILE")) {
			t.Fatal("site's anycastd.toml has no FAIL_FILE")
		}
		if err := topo.SetFile("site", "anycastd.toml", bytes.ReplaceAll(conf, []byte("FAIL_FILE"), []byte(fail))); err != nil {
			t.Fatal(err)
		}
	})

	took := eventually(t, 30*time.Second, 50*time.Millisecond, "BIRD (iBGP) has the VIP with an empty AS path", func() error {
		ok, path, err := birdVIP(l, vip70)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("BIRD has no route for %s", vip70)
		case path != "":
			return fmt.Errorf("BIRD: %s with AS path %q, want an empty one (no prepends towards iBGP)", vip70, path)
		}
		return nil
	})
	eventually(t, 10*time.Second, 50*time.Millisecond, "FRR (eBGP) has the VIP with 2 prepends", func() error {
		paths, err := frrPaths(l, "ebgp", vip70)
		if err != nil {
			return err
		}
		if len(paths) != 1 || paths[0].ASPath != "64497 64497 64497" || paths[0].Peer != siteEBGP {
			return fmt.Errorf("FRR: %s: %v, want one path from %s with AS path 64497 64497 64497", vip70, paths, siteEBGP)
		}
		return nil
	})
	t.Logf("BIRD (iBGP) has %s with an empty AS path and FRR (eBGP) with 64497 64497 64497, %v after the lab was up", vip70, ms(took))

	start := time.Now()
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bird := watchFrom(start, 10*time.Second, 20*time.Millisecond, func() error {
		ok, path, err := birdVIP(l, vip70)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("BIRD still has %s (AS path %q)", vip70, path)
		}
		return nil
	})
	frr := watchFrom(start, 10*time.Second, 20*time.Millisecond, func() error {
		paths, err := frrPaths(l, "ebgp", vip70)
		if err != nil {
			return err
		}
		if len(paths) > 0 {
			return fmt.Errorf("FRR still has %s: %v", vip70, paths)
		}
		return nil
	})
	tBIRD := bird.wait(t, "BIRD (iBGP) loses the VIP once its check fails")
	tFRR := frr.wait(t, "FRR (eBGP) loses the VIP once its check fails")
	t.Logf("check failing: BIRD lost %s after %v, FRR after %v", vip70, ms(tBIRD), ms(tFRR))

	// Told, not timed out: the sessions stayed up.
	out, err := l.Birdc("router", "show protocols")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^edge\s.*Established`).MatchString(out) {
		t.Errorf("BIRD protocol edge not Established:\n%s", out)
	}
	if err := established(l, "ebgp", siteEBGP)(); err != nil {
		t.Error(err)
	}
}
