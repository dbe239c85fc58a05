package config

import (
	"strings"
	"time"
)

// Defaults of [node] and of a VIP's flap hold-down.
const (
	DefaultDrainTime  = 5 * time.Second
	DefaultMaxFlaps   = 6
	DefaultFlapWindow = 5 * time.Minute
	DefaultHoldDown   = 2 * time.Minute
)

// node validates [node].
func (c *collector) node(r *rawNode) Node {
	n := Node{DrainTime: DefaultDrainTime}
	if r == nil {
		return n
	}
	s := scope{c: c, path: "node", node: r.Pos.Node, hdr: r.Pos.At}
	if d, ok := s.nonNegative("drain_time", r.DrainTime); ok {
		n.DrainTime = d
	}
	n.MaintenanceFile = s.absPath("maintenance_file", r.MaintenanceFile)
	if d, ok := s.nonNegative("startup_delay", r.StartupDelay); ok {
		n.StartupDelay = d
	}
	return n
}

// behaviour validates a VIP's drain, degrade and flap hold-down keys.
func (s scope) behaviour(v *VIP, r *rawVIP) {
	if d, ok := s.nonNegative("drain_time", r.DrainTime); ok {
		v.DrainTime = d
	}
	v.MaintenanceFile = s.absPath("maintenance_file", r.MaintenanceFile)
	v.OnFailure = OnFailureWithdraw
	if x, ok := s.oneOf("on_failure", r.OnFailure, OnFailureWithdraw, OnFailureDegrade); ok {
		v.OnFailure = x
	}
	if r.Degraded != nil {
		v.Degraded = s.degraded(r.Degraded, v)
	}
	if v.OnFailure == OnFailureDegrade && v.Degraded == nil {
		s.keyErr("on_failure", `"degrade" needs a [vip.degraded] table with the degraded attributes`)
	}

	v.FlapHoldDown = FlapHoldDown{MaxFlaps: DefaultMaxFlaps, Window: DefaultFlapWindow, HoldDown: DefaultHoldDown}
	if x, ok := s.integer("max_flaps", r.MaxFlaps, 0, 1000); ok {
		v.FlapHoldDown.MaxFlaps = int(x)
	}
	if d, ok := s.positive("flap_window", r.FlapWindow); ok {
		v.FlapHoldDown.Window = d
	}
	if d, ok := s.positive("hold_down", r.HoldDown); ok {
		v.FlapHoldDown.HoldDown = d
	}
}

// degraded validates [vip.degraded].
func (s scope) degraded(r *rawDegraded, v *VIP) *Degraded {
	ds := scope{c: s.c, path: s.path + ".degraded", node: r.Pos.Node, hdr: r.Pos.At}
	d := &Degraded{}
	if x, ok := ds.integer("prepend", r.Prepend, 0, maxPrepend); ok {
		d.Prepend = int(x)
	}
	if x, ok := ds.integer("med", r.MED, 0, maxUint32); ok {
		u := uint32(x)
		d.MED = &u
	}
	d.Communities = ds.communities("communities", r.Communities)
	d.LargeCommunities = ds.largeCommunities("large_communities", r.LargeCommunities)
	if x, ok := ds.integer("min_passing", r.MinPassing, 1, 1000); ok {
		switch {
		case v.Require > 0 && int(x) >= v.Require:
			ds.keyErr("min_passing", "%d must be below require (%d): it is the lower threshold for a degraded announcement", x, v.Require)
		default:
			d.MinPassing = int(x)
		}
	}
	return d
}

func (s scope) nonNegative(key string, v any) (time.Duration, bool) {
	d, ok := s.duration(key, v)
	if ok && d < 0 {
		s.keyErr(key, "%s must not be negative", d)
		return 0, false
	}
	return d, ok
}

func (s scope) positive(key string, v any) (time.Duration, bool) {
	d, ok := s.duration(key, v)
	if ok && d <= 0 {
		s.keyErr(key, "%s must be positive", d)
		return 0, false
	}
	return d, ok
}

// absPath returns v, which must be an absolute path ("" if unset).
func (s scope) absPath(key string, v any) string {
	x, ok := s.str(key, v)
	if !ok || x == "" {
		return ""
	}
	if !strings.HasPrefix(x, "/") || strings.ContainsRune(x, 0) {
		s.keyErr(key, "%q must be an absolute path", x)
	}
	return x
}
