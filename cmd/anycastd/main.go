// Command anycastd announces service VIPs over BGP while their health checks
// pass, and withdraws them when they fail.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/anycastd/anycastd/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultGCPercent is the garbage collector's target (GOGC) unless the
// GOGC environment variable sets one: anycastd's heap is mostly long-lived
// (configuration, checks, routes) and its steady allocation rate low, so a
// collection at 50 % growth instead of Go's 100 % costs little CPU and keeps
// the resident size near 1.5 times the live heap instead of 2 (10,000 VIPs
// and tcp checks: 197 -> 137 MB, CPU unchanged within the noise).
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "migrate" {
		return runMigrate(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("anycastd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/anycastd/anycastd.toml", "configuration `file`")
	checkConfig := fs.Bool("check-config", false, "validate the configuration (-config, or the file given as argument), print what would be announced, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "", "log format: text or json (default: [log] format, else text)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default: [log] level, else info)")
	diffWith := fs.String("diff", "", "with -check-config: also show what a reload from the running configuration in `file` to the checked one would change; exit 1 if it would be refused")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: anycastd [flags]\n       anycastd -check-config [FILE] [-diff RUNNING]\n       anycastd migrate exabgp|anycast-healthchecker|keepalived [flags] FILE...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard) // parse errors are printed below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h asked for it: stdout, exit 0
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "anycastd: %v\n", err)
		fs.Usage()
		return 2
	}
	fs.SetOutput(stderr)
	if *showVersion {
		fmt.Fprintf(stdout, "anycastd %s\n", version)
		return 0
	}
	if *checkConfig && fs.NArg() >= 1 {
		*configPath = fs.Arg(0)
		// Flags may follow the file: -check-config NEW -diff OLD.
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "anycastd: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if *diffWith != "" && !*checkConfig {
		// Never start the daemon on a command line meant to compare files.
		fmt.Fprintln(stderr, "anycastd: -diff works only with -check-config")
		return 2
	}

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "anycastd: %s:\n%v\n", *configPath, err)
		return 1
	}
	if *checkConfig {
		describe(stdout, *configPath, cfg)
		if *diffWith == "" {
			return 0
		}
		running, err := config.Load(*diffWith)
		if err != nil {
			fmt.Fprintf(stderr, "anycastd: %s:\n%v\n", *diffWith, err)
			return 1
		}
		d := config.Compare(running, cfg)
		fmt.Fprintf(stdout, "\nA reload from %s would change:\n%s\n", *diffWith, d)
		fleetRemovals(stdout, running, cfg)
		if len(d.Refused()) > 0 {
			fmt.Fprintln(stdout, "\nThis reload would be refused: restart anycastd to apply it.")
			return 1
		}
		return 0
	}

	logger, err := newLogger(stderr, pick(*logFormat, cfg.Log.Format), pick(*logLevel, cfg.Log.Level))
	if err != nil {
		fmt.Fprintf(stderr, "anycastd: %v\n", err)
		return 2
	}
	// What logs without a logger of its own (the exec checks' one-time
	// notes) goes to the same place, in the same format.
	slog.SetDefault(logger)
	if err := serve(logger, *configPath, cfg); err != nil {
		if errors.Is(err, errPlannedRestart) {
			logger.Info("stopped for a planned restart: exiting with status 75 (EX_TEMPFAIL) so that the supervisor starts anycastd again",
				"exit_status", exitPlannedRestart)
			return exitPlannedRestart
		}
		logger.Error("anycastd failed", "err", err)
		return 1
	}
	return 0
}

// exitPlannedRestart is the exit status after a planned restart (SIGUSR2,
// the API's Restart, with graceful restart): EX_TEMPFAIL, "try again", so
// that a supervisor restarts anycastd even where it restarts only on
// failure (systemd: Restart=on-failure with RestartForceExitStatus=75 and
// SuccessExitStatus=75, as contrib/systemd/anycastd.service has; Docker's
// on-failure policy); 0 would mean "stopped for good".
const exitPlannedRestart = 75

// errPlannedRestart is serve's answer when it stopped for a planned
// restart.
var errPlannedRestart = errors.New("stopped for a planned restart")

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
