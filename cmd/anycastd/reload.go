package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/metrics"
)

// reloadConfig loads path and, if it is valid and reloadable, applies only
// the difference: checks first (new ones start rising), then the
// announcer (withdrawals of removed VIPs, policies, sessions, attributes).
// On any error nothing is applied and the running configuration stays.
func reloadConfig(ctx context.Context, logger *slog.Logger, path string, ann *announcer.Announcer,
	checks *health.Manager, m *metrics.Metrics) error {
	newCfg, err := config.Load(path)
	if err != nil {
		m.ConfigLoaded(false, time.Now())
		logger.Error("reload refused: the configuration has errors; the running one stays", "file", path, "err", err)
		return fmt.Errorf("%s: %w", path, err)
	}
	diff := config.Compare(ann.Snapshot().Config, newCfg)
	if refused := diff.Refused(); len(refused) > 0 {
		m.ConfigLoaded(false, time.Now())
		for _, c := range refused {
			logger.Error("reload refused; the running configuration stays", "change", c.String())
		}
		return fmt.Errorf("reload refused: %s", refused[0])
	}
	if diff.Empty() {
		m.ConfigLoaded(true, time.Now())
		logger.Info("reload: the configuration did not change", "file", path)
		return nil
	}
	for _, c := range diff.Changes {
		logger.Info("reload", "change", c.String())
	}
	started, stopped, restarted := checks.Update(newCfg.Checks)
	if err := ann.Reload(ctx, newCfg); err != nil {
		m.ConfigLoaded(false, time.Now())
		logger.Error("reload failed", "err", err)
		return err
	}
	m.ConfigLoaded(true, time.Now())
	logger.Info("configuration reloaded", "file", path, "checks_started", started, "checks_stopped", stopped,
		"checks_restarted", restarted)
	return nil
}
