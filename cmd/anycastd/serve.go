package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/anycastd/anycastd/config"
	lifecycle "github.com/anycastd/anycastd/internal/daemon"
)

// startTime is when the process started, for the API's uptime.
var startTime = time.Now()

// serve runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the
// configuration from path. A second SIGTERM or SIGINT skips the rest of the
// drain; one more exits without waiting for the withdrawals to leave.
// SIGUSR2 (or the API's Restart) stops for a planned restart (with
// bgp.graceful_restart; without it SIGUSR2 stops as SIGTERM does): nothing
// is withdrawn, the routers keep the routes as stale until the next start;
// another signal exits at once.
func serve(logger *slog.Logger, path string, cfg *config.Config) error {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)

	d, err := lifecycle.New(lifecycle.Options{Path: path, Config: cfg, Logger: logger, Version: version, StartTime: startTime})
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		return err
	}
	for {
		select {
		case err := <-d.Done():
			d.Abort()
			if err == nil {
				err = errors.New("announcer stopped unexpectedly")
			}
			return err
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration", "file", path)
			_ = d.Reload(context.Background())
			continue
		case <-d.RestartRequested():
			logger.Info("restart requested over the API: stopping for a restart: nothing is withdrawn; routers keep the routes until anycastd is back (graceful restart)")
			return stopForRestart(logger, d, signals)
		case <-usr2:
			if d.GracefulRestart() {
				logger.Info("SIGUSR2: stopping for a restart: nothing is withdrawn; routers keep the routes until anycastd is back (graceful restart)")
				return stopForRestart(logger, d, signals)
			}
			logger.Warn("SIGUSR2: bgp.graceful_restart is off, so the routers would drop the routes at once: draining, withdrawing and stopping as for SIGTERM",
				"drain_time", d.DrainTime())
		case sig := <-signals:
			logger.Info("signal received: draining all VIPs, then withdrawing and stopping (a second signal skips the drain)",
				"signal", sig.String(), "drain_time", d.DrainTime())
		}
		break
	}
	drain, skipDrain := context.WithCancel(context.Background())
	exit, exitNow := context.WithCancel(context.Background())
	defer skipDrain()
	defer exitNow()
	go func() {
		for {
			select {
			case sig := <-signals:
				if drain.Err() == nil {
					logger.Warn("second signal: skipping the drain", "signal", sig.String())
					skipDrain()
					continue
				}
				logger.Warn("another signal: exiting without waiting for withdrawals", "signal", sig.String())
				exitNow()
				return
			case <-exit.Done():
				return
			}
		}
	}()
	d.Drain(drain)
	skipDrain()
	return d.Stop(exit)
}

// stopForRestart stops d for a planned restart; a SIGTERM or SIGINT
// meanwhile exits at once.
func stopForRestart(logger *slog.Logger, d *lifecycle.Daemon, signals <-chan os.Signal) error {
	exit, exitNow := context.WithCancel(context.Background())
	defer exitNow()
	go func() {
		select {
		case sig := <-signals:
			logger.Warn("another signal: exiting at once", "signal", sig.String())
			exitNow()
		case <-exit.Done():
		}
	}()
	return d.StopForRestart(exit)
}
