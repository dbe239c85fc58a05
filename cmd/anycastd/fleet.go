package main

import (
	"context"
	"fmt"
	"io"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/fleet"
)

// fleetRemovals prints, for -check-config -diff with [fleet], the VIPs
// whose removal would leave fewer than min_sites sites announcing them
// fleet-wide, read from etcd now (bounded by [fleet] timeout). It warns;
// it refuses nothing.
func fleetRemovals(w io.Writer, running, cfg *config.Config) {
	if running.Fleet == nil {
		return
	}
	removed := false
	keep := make(map[string]bool, len(cfg.VIPs))
	for _, v := range cfg.VIPs {
		keep[v.Name] = true
	}
	for _, v := range running.VIPs {
		removed = removed || (!keep[v.Name] && v.MinSites > 0)
	}
	if !removed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*running.Fleet.Timeout)
	defer cancel()
	view, err := fleet.ReadView(ctx, running.Fleet)
	if err != nil {
		fmt.Fprintf(w, "\nWarning: cannot read the fleet from etcd (%v): VIP removals were not checked against min_sites.\n", err)
		return
	}
	for _, msg := range fleet.RemovalWarnings(view, running, cfg) {
		fmt.Fprintf(w, "\nWarning: %s.\n", msg)
	}
}
