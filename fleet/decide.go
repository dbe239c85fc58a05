package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// keys builds and parses the store's keys under prefix.
type keys struct{ prefix string }

func prefixOf(cfg *config.Fleet) string {
	if cfg.KeyPrefix == "" {
		return config.DefaultFleetKeyPrefix
	}
	return cfg.KeyPrefix
}

func (k keys) vips() string              { return k.prefix + "vips/" }
func (k keys) drains() string            { return k.prefix + "drains/" }
func (k keys) vip(vip string) string     { return k.prefix + "vips/" + vip + "/" }
func (k keys) vipLock(vip string) string { return k.prefix + "locks/vip/" + vip + "/" }
func (k keys) drainLock() string         { return k.prefix + "locks/drain/" }
func (k keys) entry(vip, site, node string) string {
	return k.vip(vip) + site + "/" + node
}
func (k keys) slot(site, node string) string { return k.drains() + site + "/" + node }

// parseEntry splits a vips/ key into VIP, site and node (a VIP name may
// hold "/", a site or node never does).
func (k keys) parseEntry(key string) (vip, site, node string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.vips())
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", "", false
	}
	node, rest = rest[i+1:], rest[:i]
	j := strings.LastIndexByte(rest, '/')
	if j <= 0 || node == "" {
		return "", "", "", false
	}
	return rest[:j], rest[j+1:], node, rest[j+1:] != ""
}

// parseSlot splits a drains/ key into site and node.
func (k keys) parseSlot(key string) (site, node string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.drains())
	if !ok {
		return "", "", false
	}
	site, node, ok = strings.Cut(rest, "/")
	return site, node, ok && site != "" && node != "" && !strings.Contains(node, "/")
}

// apply applies one key's value (nil: deleted) to a view's maps; it
// returns the VIP of an entry ("" for a slot or a key it ignores).
func (k keys) apply(entries map[string]map[string]Entry, slots map[string]Slot, kv KV) string {
	if vip, site, node, ok := k.parseEntry(kv.Key); ok {
		id := site + "/" + node
		if kv.Value == nil {
			if m := entries[vip]; m != nil {
				delete(m, id)
				if len(m) == 0 {
					delete(entries, vip)
				}
			}
			return vip
		}
		var e Entry
		if json.Unmarshal(kv.Value, &e) != nil {
			e = Entry{State: routes.State("invalid")}
		}
		e.VIP, e.Site, e.Node = vip, site, node
		if entries[vip] == nil {
			entries[vip] = map[string]Entry{}
		}
		entries[vip][id] = e
		return vip
	}
	if site, node, ok := k.parseSlot(kv.Key); ok {
		id := site + "/" + node
		if kv.Value == nil {
			delete(slots, id)
			return ""
		}
		var s Slot
		_ = json.Unmarshal(kv.Value, &s)
		s.Site, s.Node = site, node
		slots[id] = s
	}
	return ""
}

// otherSites returns the distinct sites, sorted, announcing among
// entries, leaving out this node's own (site, node).
func otherSites(entries []Entry, site, node string) []string {
	set := map[string]bool{}
	for _, e := range entries {
		if e.Announcing() && (e.Site != site || e.Node != node) {
			set[e.Site] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// reasonOf words a decision.
func reasonOf(others []string, minSites int) string {
	n := len(others)
	list := ""
	if n > 0 && n <= 5 {
		list = " (" + strings.Join(others, ", ") + ")"
	}
	switch {
	case n == 0:
		return fmt.Sprintf("no other site announces it, min_sites %d", minSites)
	case n < minSites && n == 1:
		return fmt.Sprintf("only 1 other site announces it%s, min_sites %d", list, minSites)
	case n < minSites:
		return fmt.Sprintf("only %d other sites announce it%s, min_sites %d", n, list, minSites)
	case n == 1:
		return fmt.Sprintf("1 other site announces it%s, min_sites %d", list, minSites)
	default:
		return fmt.Sprintf("%d other sites announce it%s, min_sites %d", n, list, minSites)
	}
}

// lostReason is the reason of a verdict taken without the store.
func lostReason(mode string) string {
	if mode == config.CoordinatorLostLocal {
		return `the fleet coordinator (etcd) cannot be reached: deciding locally (on_coordinator_lost = "local")`
	}
	return `the fleet coordinator (etcd) cannot be reached: health-driven withdrawals wait (on_coordinator_lost = "hold")`
}

// decision is the outcome of one floor decision.
type decision struct {
	vip     string
	seq     uint64
	gen     int
	guarded bool
	others  int
	reason  string
	entry   Entry // what was written as this node's entry
	took    time.Duration
	err     error
}

// decide takes vip's floor decision under its lock, within timeout: count
// the other sites announcing it, and write this node's entry before
// unlocking: guarded, or (permitted) withdrawn; reported is the node's
// latest entry of vip (its state, reason and BGP flag), kept where the
// decision does not change it.
func decide(ctx context.Context, st Store, s Session, k keys, vip, site, node string, minSites int, timeout time.Duration, reported Entry) (d decision) {
	start := time.Now()
	d.vip = vip
	defer func() { d.took = time.Since(start) }() // also when etcd fails: that wait is what it cost
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unlock, err := s.Lock(ctx, k.vipLock(vip))
	if err != nil {
		d.err = fmt.Errorf("locking %s: %w", vip, err)
		return d
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		_ = unlock(uctx)
		cancel()
	}()
	kvs, _, err := st.Get(ctx, k.vip(vip))
	if err != nil {
		d.err = fmt.Errorf("reading %s: %w", vip, err)
		return d
	}
	entries, slots := map[string]map[string]Entry{}, map[string]Slot{}
	for _, kv := range kvs {
		k.apply(entries, slots, kv)
	}
	var list []Entry
	for _, e := range entries[vip] {
		list = append(list, e)
	}
	others := otherSites(list, site, node)
	d.others = len(others)
	d.guarded = len(others) < minSites
	d.reason = reasonOf(others, minSites)
	d.entry = decidedEntry(reported, vip, site, node, d.guarded, d.reason)
	b, _ := json.Marshal(d.entry)
	if err := s.Write(ctx, []Op{{Key: k.entry(vip, site, node), Value: b}}); err != nil {
		d.err = fmt.Errorf("writing %s: %w", vip, err)
	}
	return d
}

// drainAttempt is the outcome of one try for a drain slot.
type drainAttempt struct {
	gen     int
	granted bool
	detail  string
	err     error
}

// takeSlot tries for a drain slot under the drain lock: granted when this
// node's site holds one already or fewer than maxDrained sites hold one.
func takeSlot(ctx context.Context, st Store, s Session, k keys, site, node, reason string, maxDrained int, timeout time.Duration) drainAttempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	unlock, err := s.Lock(ctx, k.drainLock())
	if err != nil {
		return drainAttempt{err: fmt.Errorf("locking the drain slots: %w", err)}
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		_ = unlock(uctx)
		cancel()
	}()
	kvs, _, err := st.Get(ctx, k.drains())
	if err != nil {
		return drainAttempt{err: fmt.Errorf("reading the drain slots: %w", err)}
	}
	slots := map[string]Slot{}
	k.applyAll(nil, slots, kvs)
	sites, holders := map[string]bool{}, []string{}
	for id, sl := range slots {
		if sl.Site == site && sl.Node == node {
			continue
		}
		sites[sl.Site] = true
		holders = append(holders, id)
	}
	if !sites[site] && len(sites) >= maxDrained {
		sort.Strings(holders)
		return drainAttempt{detail: fmt.Sprintf("waiting for a drain slot: %d of %d held by %s", len(sites), maxDrained, strings.Join(holders, ", "))}
	}
	b, _ := json.Marshal(Slot{Since: time.Now(), Reason: reason})
	if err := s.Write(ctx, []Op{{Key: k.slot(site, node), Value: b}}); err != nil {
		return drainAttempt{err: fmt.Errorf("writing the drain slot: %w", err)}
	}
	return drainAttempt{granted: true}
}

// applyAll applies kvs; entries may be nil to skip them.
func (k keys) applyAll(entries map[string]map[string]Entry, slots map[string]Slot, kvs []KV) {
	if entries == nil {
		entries = map[string]map[string]Entry{}
	}
	for _, kv := range kvs {
		k.apply(entries, slots, kv)
	}
}

// decidedEntry is this node's entry of vip after a decision: guarded (since
// when it was first), or withdrawn where it is announced now; otherwise the
// reported entry as it is.
func decidedEntry(reported Entry, vip, site, node string, guarded bool, reason string) Entry {
	e := reported
	e.VIP, e.Site, e.Node = vip, site, node
	now := time.Now()
	switch {
	case guarded:
		if e.State != routes.StateGuarded {
			e.Since = now
		}
		e.State, e.Reason = routes.StateGuarded, "guarded by the fleet: "+reason
	case e.State == "" || e.InRIB():
		e.State, e.Since, e.Reason = routes.StateDown, now, "withdrawing, the fleet guard permits it: "+reason
	}
	return e
}
