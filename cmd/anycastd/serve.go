package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/apiserver"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/metrics"
	"github.com/anycastd/anycastd/routes"
)

// serve wires the parts together and runs until SIGTERM or SIGINT; SIGHUP
// reloads the configuration from path.
func serve(logger *slog.Logger, path string, cfg *config.Config) error {
	logger.Info("anycastd starting", "version", version, "asn", cfg.BGP.ASN,
		"router_id", cfg.BGP.RouterID, "peers", len(cfg.BGP.Peers), "vips", len(cfg.VIPs), "checks", len(cfg.Checks))

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var opts announcer.Options
	var host *routes.Host
	if cfg.Interface.Manage {
		h, err := routes.NewHost(cfg, routes.HostOptions{Logger: logger})
		if err != nil {
			return err
		}
		host, opts.Addresses = h, h
		// Whatever the way out, what anycastd added goes (a no-op once the
		// announcer has closed it after withdrawing the routes).
		defer func() {
			if err := host.Close(); err != nil {
				logger.Error("removing VIP addresses", "err", err)
			}
		}()
	}

	speaker := announcer.NewGoBGP(logger)
	var ann *announcer.Announcer
	var checks *health.Manager
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, version, metrics.Sources{
		Config:   func() *config.Config { return ann.Snapshot().Config },
		Snapshot: func() announcer.Snapshot { return ann.Snapshot() },
		Checks:   func() []health.CheckState { return checks.States() },
		Peers:    speaker.Peers,
	})
	m.ConfigLoaded(true, time.Now())
	if cfg.Metrics.GoBGPCollector {
		reg.MustRegister(speaker.Collector())
	}
	hub := apiserver.NewHub(0)           // API
	opts.Observer = vipObservers{m, hub} // API: metrics and the API's event hub

	ann = announcer.New(cfg, speaker, logger, opts)
	speaker.OnPeerState(func(p announcer.PeerStatus) {
		m.PeerStateChanged(p)
		ann.PeerChanged(p)
		hub.PeerStateChanged(p) // API
	})
	checks = health.NewManager(logger, checkPublishers(hub.CheckChanged, ann.Publish)) // API: hub.CheckChanged
	if cfg.Metrics.Listen != "" {
		// Per-check series cost memory (about 3 KB a check); only keep them
		// when someone can scrape them.
		checks.OnResult(m.ProbeResult)
	}
	reload := func(ctx context.Context) error { return reloadConfig(ctx, logger, path, ann, checks, m) }

	if cfg.Metrics.Listen != "" {
		srv, err := metrics.Listen(cfg.Metrics.Listen, reg, logger)
		if err != nil {
			return err
		}
		go func() {
			if err := srv.Serve(); err != nil {
				logger.Error("metrics server failed", "err", err)
			}
		}()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		logger.Info("serving metrics", "addr", srv.Addr().String())
	}
	// API
	stopAPI, err := startAPI(logger, cfg, hub, ann, checks, speaker, reload)
	if err != nil {
		return err
	}
	defer stopAPI()

	stopWatch := func() {}
	if host != nil {
		var err error
		if stopWatch, err = host.Watch(ann.AddressChanged); err != nil {
			return err
		}
	}
	annCtx, stopAnn := context.WithCancel(context.Background())
	defer stopAnn()
	annDone := make(chan error, 1)
	go func() {
		err := ann.Run(annCtx)
		stopWatch() // AddressChanged no longer blocks once Run has returned
		annDone <- err
	}()

	if err := checks.Start(context.Background(), cfg.Checks); err != nil {
		stopAnn()
		<-annDone
		return err
	}

wait:
	for {
		select {
		case err := <-annDone:
			checks.Stop()
			if err == nil {
				err = errors.New("announcer stopped unexpectedly")
			}
			return err
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration", "file", path)
			_ = reload(context.Background())
		case sig := <-signals:
			logger.Info("signal received: draining all VIPs, then withdrawing and stopping (a second signal skips the drain)",
				"signal", sig.String(), "drain_time", ann.Snapshot().Config.Node.DrainTime)
			break wait
		}
	}
	// RFC 8326: announce with GRACEFUL_SHUTDOWN for the drain time, so the
	// routers move traffic away before the routes go.
	drainCtx, skipDrain := context.WithCancel(context.Background())
	go func() {
		select {
		case sig := <-signals:
			logger.Warn("second signal: skipping the drain", "signal", sig.String())
			skipDrain()
		case <-drainCtx.Done():
		}
	}()
	if err := ann.DrainForShutdown(drainCtx); err == nil {
		_ = ann.WaitDrained(drainCtx)
	}
	skipDrain()
	checks.Stop()
	stopAnn()
	select {
	case err := <-annDone:
		if err != nil {
			return err
		}
	case sig := <-signals:
		logger.Warn("second signal: exiting without waiting for withdrawals", "signal", sig.String())
		return nil
	}
	logger.Info("anycastd stopped")
	return nil
}
