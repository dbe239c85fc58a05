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
// bgp.graceful_restart; without it SIGUSR2 drains, withdraws and stops as
// SIGTERM does): nothing is withdrawn, the routers keep the routes as stale
// until the next start; another signal exits at once. Either way serve
// returns errPlannedRestart, for exit status 75.
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
	// Reloads run beside the loop, so that a signal is taken at once even
	// while a large or slow file is being read. Leaving the loop cancels a
	// reload under way.
	reloadCtx, cancelReload := context.WithCancel(context.Background())
	defer cancelReload()
	reloads := newReloader(func() { _, _ = d.Reload(reloadCtx) })
	restart := false // SIGUSR2 without graceful restart: exit 75 after the stop
	for {
		select {
		case err := <-d.Done():
			d.Abort()
			if err == nil {
				err = errors.New("announcer stopped unexpectedly")
			}
			return err
		case <-hup:
			if reloads.busy {
				logger.Info("SIGHUP during a reload: reloading again once it is done", "file", path)
			} else {
				logger.Info("SIGHUP: reloading the configuration", "file", path)
			}
			reloads.request()
			continue
		case <-reloads.done:
			if reloads.finished() {
				logger.Info("reloading the configuration again, for a SIGHUP received during the reload", "file", path)
			}
			continue
		case <-d.RestartRequested():
			logger.Info("restart requested over the API: stopping for a restart: nothing is withdrawn; routers keep the routes until anycastd is back (graceful restart)")
			cancelReload()
			return stopForRestart(logger, d, signals, reloads)
		case <-usr2:
			if d.GracefulRestart() {
				logger.Info("SIGUSR2: stopping for a restart: nothing is withdrawn; routers keep the routes until anycastd is back (graceful restart)")
				cancelReload()
				return stopForRestart(logger, d, signals, reloads)
			}
			logger.Warn("SIGUSR2: bgp.graceful_restart is off, so the routers would drop the routes at once: draining, withdrawing and stopping as for SIGTERM, then exiting with status 75 to be started again",
				"drain_time", d.DrainTime())
			restart = true
		case sig := <-signals:
			logger.Info("signal received: draining all VIPs, then withdrawing and stopping (a second signal skips the drain)",
				"signal", sig.String(), "drain_time", d.DrainTime())
		}
		break
	}
	cancelReload()
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
	// A reload still under way (told to stop) ends before the daemon
	// stops, so that it cannot start checks that Stop has stopped.
	reloads.wait(exit)
	if err := d.Stop(exit); err != nil || !restart {
		return err
	}
	return errPlannedRestart
}

// stopForRestart stops d for a planned restart; a SIGTERM or SIGINT
// meanwhile exits at once.
func stopForRestart(logger *slog.Logger, d *lifecycle.Daemon, signals <-chan os.Signal, reloads *reloader) error {
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
	reloads.wait(exit)
	if err := d.StopForRestart(exit); err != nil {
		return err
	}
	return errPlannedRestart
}

// reloader runs reloads in a goroutine, one at a time: a request during a
// reload is kept (any number of them as one) and runs when it ends. Its
// methods are called from one goroutine, the signal loop, which receives
// from done after each reload and then calls finished.
type reloader struct {
	run   func()
	done  chan struct{}
	busy  bool // a reload is running
	again bool // and another was requested meanwhile
}

func newReloader(run func()) *reloader {
	return &reloader{run: run, done: make(chan struct{}, 1)}
}

// request starts a reload, or if one is running, has another follow it; it
// reports whether it started one.
func (r *reloader) request() bool {
	if r.busy {
		r.again = true
		return false
	}
	r.start()
	return true
}

// finished is called after a receive from done; it starts the reload that
// was requested meanwhile, if any, and reports whether it did.
func (r *reloader) finished() bool {
	r.busy = false
	if !r.again {
		return false
	}
	r.again = false
	r.start()
	return true
}

// wait waits for the reload under way, if any, to end, or for ctx to be
// done. It is for after the loop, which no longer receives from done.
func (r *reloader) wait(ctx context.Context) {
	if !r.busy {
		return
	}
	select {
	case <-r.done:
		r.busy = false
	case <-ctx.Done():
	}
}

func (r *reloader) start() {
	r.busy = true
	go func() {
		r.run()
		r.done <- struct{}{}
	}()
}
