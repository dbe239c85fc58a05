package announcer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/anycastd/anycastd/config"
)

// Reload moves the announcer to cfg, a configuration that config.Compare
// accepts as a reload of the current one. Only the difference reaches the
// routers: removed VIPs are withdrawn (first), added ones are announced once
// their checks rise, changed attributes go out as one replacing UPDATE, and
// only sessions whose own settings changed are reset. It returns once the
// new configuration is in force.
func (a *Announcer) Reload(ctx context.Context, cfg *config.Config) error {
	return a.control(ctx, controlReq{reload: cfg})
}

// reload applies a new configuration in the loop.
func (l *loop) reload(new *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := l.cfg
	if refused := config.Compare(old, new).Refused(); len(refused) > 0 {
		return fmt.Errorf("reload refused: %s", refused[0])
	}

	// Withdraw first: a prefix that is no longer configured goes before the
	// export policy stops allowing it (a policy change does not withdraw
	// what was already sent).
	keep := make(map[netip.Prefix]bool)
	for _, v := range new.VIPs {
		for _, p := range v.Prefixes {
			keep[p] = true
		}
	}
	var gone []netip.Prefix
	for p := range l.announced {
		if !keep[p] {
			gone = append(gone, p)
		}
	}
	slices.SortFunc(gone, comparePrefix)
	for _, p := range gone {
		r := l.announced[p]
		if err := l.speaker.Withdraw(ctx, p); err != nil {
			return fmt.Errorf("reload: withdrawing %s: %w", p, err)
		}
		delete(l.announced, p)
		l.log.Info("withdrawn", "vip", r.VIP, "prefix", p, "from", l.states[r.VIP].State, "to", "removed",
			"reason", "no longer configured (reload)")
		if l.opts.Addresses != nil {
			if err := l.opts.Addresses.Remove(p); err != nil {
				l.log.Error("removing the address of a removed VIP", "vip", r.VIP, "prefix", p, "err", err)
			}
		}
	}

	if err := l.speaker.Reconfigure(ctx, old, new); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	l.cfg = new
	l.vips = make(map[string]config.VIP, len(new.VIPs))
	for _, v := range new.VIPs {
		l.vips[v.Name] = v
	}
	for name := range l.states {
		if _, ok := l.vips[name]; !ok {
			delete(l.states, name)
			delete(l.drains, name)
			delete(l.held, name)
			delete(l.flaps, name)
		}
	}
	for p := range l.missing {
		if !keep[p] {
			delete(l.missing, p)
		}
	}
	l.log.Info("configuration reloaded", "vips", len(new.VIPs), "checks", len(new.Checks), "peers", len(new.BGP.Peers))
	return nil
}
