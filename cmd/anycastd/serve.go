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
func serve(logger *slog.Logger, path string, cfg *config.Config) error {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

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
