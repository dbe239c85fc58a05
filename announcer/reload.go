package announcer

import (
	"context"
	"fmt"

	"github.com/anycastd/anycastd/config"
)

// Reload puts cfg in force: a configuration that config.Compare accepts as
// a reload of the one in force (else an error saying what it refuses, and
// nothing changes). The loop owns the whole reload: the desired table
// follows cfg at once, and only the difference reaches the routers —
// removed VIPs are withdrawn first, then the speaker takes cfg (the export
// policy; only sessions whose own settings changed are reset), then added
// VIPs are announced once their checks rise and changed attributes go out
// as one replacing UPDATE. It returns once that has run: nil, or an error
// wrapping ErrNotConverged when cfg is in force but the speaker could not
// take it yet (the loop retries; the caller must still move the checks to
// cfg).
func (a *Announcer) Reload(ctx context.Context, cfg *config.Config) error {
	return a.control(ctx, controlReq{reload: cfg})
}

// reload puts a new configuration in force in the loop; reconcile applies
// it.
func (l *loop) reload(cfg *config.Config) error {
	if refused := config.Compare(l.cfg, cfg).Refused(); len(refused) > 0 {
		return fmt.Errorf("%s: %s", refused[0].What, refused[0].Detail)
	}
	l.setConfig(cfg)
	l.converged, l.configureErr = false, nil
	l.pollMaintenance()
	l.log.Info("configuration in force", "vips", len(cfg.VIPs), "checks", len(cfg.Checks), "peers", len(cfg.BGP.Peers))
	return nil
}
