package config

import "fmt"

// fleetChanges reports a change of [fleet] through add (Compare's). The
// coordinator, this node's identity in it and its lease need a restart
// (the node's keys live under that lease and prefix); max_drained,
// on_coordinator_lost and timeout take effect at a reload.
func fleetChanges(old, new *Fleet, add func(kind, what, format string, args ...any)) {
	switch {
	case old == nil && new == nil:
		return
	case old == nil:
		add("!", "fleet", "[fleet] added: needs a restart; a reload is refused")
		return
	case new == nil:
		add("!", "fleet", "[fleet] removed: needs a restart; a reload is refused")
		return
	}
	restartOnly := func(f Fleet) Fleet {
		return Fleet{EtcdEndpoints: f.EtcdEndpoints, Site: f.Site, Node: f.Node, KeyPrefix: f.KeyPrefix,
			CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile, LeaseTTL: f.LeaseTTL}
	}
	live := func(f Fleet) Fleet {
		return Fleet{MaxDrained: f.MaxDrained, OnCoordinatorLost: f.OnCoordinatorLost, Timeout: f.Timeout}
	}
	if s := fieldsIn("fleet.", restartOnly(*old), restartOnly(*new)); s != "" {
		add("!", "fleet", "%s needs a restart; a reload is refused", s)
	}
	if s := fieldsIn("fleet.", live(*old), live(*new)); s != "" {
		add("~", "fleet", "%s", s)
	}
}

// minSitesNote says what a change of a VIP's min_sites does.
func minSitesNote(o, n VIP) string {
	if o.MinSites == n.MinSites {
		return ""
	}
	if n.MinSites == 0 {
		return "; the fleet guard no longer holds it (min_sites 0)"
	}
	return fmt.Sprintf("; the fleet guard takes its decision again with min_sites %d", n.MinSites)
}
