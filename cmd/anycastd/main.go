// Command anycastd announces service VIPs over BGP while their health checks
// pass, and withdraws them when they fail.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("anycastd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/anycastd/anycastd.toml", "configuration `file`")
	checkConfig := fs.Bool("check-config", false, "validate the configuration (-config, or the file given as argument), print what would be announced, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "", "log format: text or json (default: [log] format, else text)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default: [log] level, else info)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: anycastd [flags]\n       anycastd -check-config [FILE]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "anycastd %s\n", version)
		return 0
	}
	if *checkConfig && fs.NArg() == 1 {
		*configPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "anycastd: unexpected arguments: %v\n", fs.Args())
		return 2
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "anycastd: %s:\n%v\n", *configPath, err)
		return 1
	}
	if *checkConfig {
		describe(stdout, *configPath, cfg)
		return 0
	}

	logger, err := newLogger(stderr, pick(*logFormat, cfg.Log.Format), pick(*logLevel, cfg.Log.Level))
	if err != nil {
		fmt.Fprintf(stderr, "anycastd: %v\n", err)
		return 2
	}
	if err := serve(logger, cfg); err != nil {
		logger.Error("anycastd failed", "err", err)
		return 1
	}
	return 0
}

func pick(flagValue, configValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return configValue
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level == "" {
		level = "info"
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// serve wires the parts together and runs until SIGTERM or SIGINT.
func serve(logger *slog.Logger, cfg *config.Config) error {
	logger.Info("anycastd starting", "version", version, "asn", cfg.BGP.ASN,
		"router_id", cfg.BGP.RouterID, "peers", len(cfg.BGP.Peers), "vips", len(cfg.VIPs), "checks", len(cfg.Checks))

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

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
	ann := announcer.New(cfg, announcer.NewGoBGP(logger), logger, opts)
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

	checks := health.NewManager(logger, ann.Publish)
	if err := checks.Start(context.Background(), cfg.Checks); err != nil {
		stopAnn()
		<-annDone
		return err
	}

	select {
	case err := <-annDone:
		checks.Stop()
		if err == nil {
			err = errors.New("announcer stopped unexpectedly")
		}
		return err
	case sig := <-signals:
		logger.Info("signal received: withdrawing all VIPs and stopping", "signal", sig.String())
	}
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
