// Package daemon is anycastd's lifecycle: it builds the parts in dependency
// order (New), starts them (Start), moves them to a new configuration
// (Reload) and takes them down in the order RFC 8326 and the routers need
// (Shutdown). cmd/anycastd keeps flags, signals and exit codes.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/apiserver"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/hostaddr"
	"github.com/anycastd/anycastd/metrics"
)

// Options are what the daemon is started with.
type Options struct {
	// Path is the configuration file, read again by Reload.
	Path string
	// Config is Path's configuration, already loaded and valid.
	Config  *config.Config
	Logger  *slog.Logger
	Version string
	// StartTime is when the process started, for the API's uptime (zero:
	// when New was called).
	StartTime time.Time
	// Notify sends one sd_notify(3) message (lines joined by newlines) to
	// the service manager; nil: sd_notify to NOTIFY_SOCKET when it is set,
	// else nothing (notify.go says what is sent when).
	Notify func(state string) error
}

// Daemon is one running anycastd. Its parts each own their state: the
// announcer loop owns what is announced and the configuration in force, the
// health manager the checks, the speaker the BGP sessions, the host the VIP
// addresses; the daemon only wires them and orders their start and stop.
type Daemon struct {
	o       Options
	log     *slog.Logger
	host    *hostaddr.Host // nil: interface.manage = false
	speaker *announcer.GoBGP
	ann     *announcer.Announcer
	checks  *health.Manager
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	hub     *apiserver.Hub
	notify  *notifier
	api     *apiserver.Listeners // nil: no API
	fleet   *fleetPart           // nil: no [fleet]

	bfdMu sync.Mutex
	bfd   *bfdRunner // nil: no peer has BFD (yet)

	reloadMu sync.Mutex // one reload at a time (SIGHUP and the API)
	// keepAddrs: a planned restart; the VIP addresses stay (StopForRestart).
	keepAddrs atomic.Bool
	// restartReq: the API asked for a planned restart (restart.go).
	restartReq chan struct{}

	// Set by Start; undone by Shutdown in reverse.
	stops   []func() // run last first
	annStop context.CancelFunc
	annDone chan error
}

// New builds the daemon's parts in dependency order, without starting
// anything that runs or listens: the host addresses (which adopt or clean
// what a previous run left), the BGP speaker, the event fan-out, the
// announcer, the health manager, metrics and the API's event hub. It fails
// when the host addresses cannot be set up (no CAP_NET_ADMIN, say).
func New(o Options) (*Daemon, error) {
	if o.StartTime.IsZero() {
		o.StartTime = time.Now()
	}
	cfg := o.Config
	d := &Daemon{o: o, log: o.Logger, restartReq: make(chan struct{}, 1)}
	var opts announcer.Options
	if cfg.Interface.Manage {
		h, err := hostaddr.New(cfg, hostaddr.Options{Logger: d.log})
		if err != nil {
			return nil, err
		}
		d.host, opts.Addresses = h, h
	}
	d.speaker = announcer.NewGoBGP(d.log)
	d.hub = apiserver.NewHub(0)
	d.reg = prometheus.NewRegistry()
	if err := d.newFleet(cfg, &opts); err != nil {
		if d.host != nil {
			_ = d.host.Close()
		}
		return nil, err
	}
	ev := &events{hub: d.hub}
	opts.Observer = ev
	d.ann = announcer.New(cfg, d.speaker, d.log, opts)
	ev.ann = d.ann
	ev.bgpUp = d.fleetSessions()
	d.notify = newNotifier(o.Notify, d.log, d.serviceStatus, d.ann.Heartbeat)
	d.checks = health.NewManager(d.log, ev.CheckChanged)
	d.speaker.OnPeerState(ev.PeerChanged)
	d.metrics = metrics.New(d.reg, o.Version, metrics.Sources{
		Config:   func() *config.Config { return d.ann.Snapshot().Config },
		Snapshot: d.ann.Snapshot,
		Checks:   d.checks.States,
		Peers:    d.speaker.Peers,
		Fleet:    d.fleetSource(),
	}, metrics.Options{CheckDurationHistogram: cfg.Metrics.CheckDurationHistogram})
	d.metrics.PeersConfigured(cfg)
	d.metrics.ConfigLoaded(true, time.Now())
	if cfg.Metrics.GoBGPCollector {
		d.reg.MustRegister(d.speaker.Collector())
	}
	if cfg.Metrics.Listen != "" {
		// Per-check and per-VIP series cost memory (about 250 B a check
		// or VIP); only keep them when someone can scrape them ([metrics]
		// listen changes only with a restart).
		d.checks.OnResult(d.metrics.ProbeResult)
		ev.metrics = d.metrics
	}
	return d, nil
}

// Start starts serving, each part before those that need it: the metrics
// and API listeners, the address watch, the announcer loop (the BGP
// speaker, policies, sessions), then the checks, which feed it. On an
// error what started is stopped again (addresses anycastd added are
// removed) and the error says what could not start.
func (d *Daemon) Start() error {
	cfg := d.o.Config
	d.log.Info("anycastd starting", "version", d.o.Version, "asn", cfg.BGP.ASN,
		"router_id", cfg.BGP.RouterID, "peers", len(cfg.BGP.Peers), "vips", len(cfg.VIPs), "checks", len(cfg.Checks))
	raiseOpenFiles(d.log) // before the API sizes its connection caps
	if d.host != nil {
		// Whatever the way out, what anycastd added goes (a no-op once the
		// announcer has closed it after withdrawing the routes).
		d.stops = append(d.stops, func() {
			if d.keepAddrs.Load() {
				d.host.Detach()
				d.log.Info("planned restart: VIP addresses stay on the interface; the next start adopts them")
				return
			}
			if err := d.host.Close(); err != nil {
				d.log.Error("removing VIP addresses", "err", err)
			}
		})
	}
	if err := d.startMetrics(cfg); err != nil {
		d.undo()
		return err
	}
	if err := d.startAPI(cfg); err != nil {
		d.undo()
		return err
	}
	d.startFleet() // before the loop: it reports every VIP's first state
	stopWatch := func() {}
	if d.host != nil {
		var err error
		if stopWatch, err = d.host.Watch(d.ann.AddressChanged); err != nil {
			d.undo()
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.annStop, d.annDone = cancel, make(chan error, 1)
	go func() {
		err := d.ann.Run(ctx)
		stopWatch() // AddressChanged no longer blocks once Run has returned
		d.annDone <- err
	}()
	if err := d.checks.Start(context.Background(), cfg.Checks); err != nil {
		cancel()
		<-d.annDone
		d.undo()
		return err
	}
	d.syncBFD(cfg)
	go releaseMemory()
	d.notify.ready()
	return nil
}

// releaseMemory returns the memory freed since the configuration was
// decoded to the system at once. Decoding a large configuration leaves
// short-lived garbage of about 60 bytes per byte of TOML (about 100 MB at
// 10,000 VIPs), which Go would otherwise hand back only gradually, keeping
// the resident size high for minutes.
func releaseMemory() { debug.FreeOSMemory() }

// undo runs the stops of what started, last first.
func (d *Daemon) undo() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	d.stops = nil
}

func (d *Daemon) startMetrics(cfg *config.Config) error {
	if cfg.Metrics.Listen == "" {
		return nil
	}
	srv, err := metrics.Listen(cfg.Metrics.Listen, d.reg, d.log)
	if err != nil {
		return err
	}
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Error("metrics server failed", "err", err)
		}
	}()
	d.stops = append(d.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	d.log.Info("serving metrics", "addr", srv.Addr().String())
	return nil
}

// startAPI serves the gRPC API as cfg.API says (nothing when it is
// disabled).
func (d *Daemon) startAPI(cfg *config.Config) error {
	if cfg.API.Listen == "" && cfg.API.TCPListen == "" {
		return nil
	}
	srv := apiserver.New(apiserver.Options{
		Version:   d.o.Version,
		StartTime: d.o.StartTime,
		Config:    func() *config.Config { return d.ann.Snapshot().Config }, // the one in force, after reloads
		Announcer: d.ann,
		Checks:    d.checks.States,
		Speaker:   announcer.SpeakerReader(d.speaker),
		Hub:       d.hub,
		Reload:    d.Reload,
		Report:    d.checks.Report,
		Restart:   d.RequestRestart,
		BFD:       d.bfdSessions,
		Fleet:     d.fleetSource(),
		Logger:    d.log,
	})
	l, err := srv.Listen(cfg.API)
	if err != nil {
		return err
	}
	lim := srv.Limits()
	for _, a := range l.Addrs() {
		maxConns := lim.TCPConns // shared by the TCP listeners
		if a.Network() == "unix" {
			maxConns = lim.UnixConns
		}
		d.log.Info("serving the API", "addr", a.Network()+"://"+a.String(), "max_conns", maxConns)
	}
	d.stops = append(d.stops, l.Stop)
	d.api = l
	d.notify.setHealth = l.SetHealth
	return nil
}

// Done is closed-by-value when the announcer loop has ended by itself (its
// speaker could not start): the error says why. Valid after Start.
func (d *Daemon) Done() <-chan error { return d.annDone }

// DrainTime is the drain time of the configuration in force.
func (d *Daemon) DrainTime() time.Duration { return d.ann.Snapshot().Config.Node.DrainTime }

// Reload reads the configuration file again and, if it is valid and
// config.Compare accepts it, puts it in force: the announcer first (it owns
// the reload: removed VIPs are withdrawn, the speaker takes the new
// configuration, only the difference reaches the routers), then the checks
// follow (new ones start rising, removed ones stop, changed ones restart).
// A file with errors or a refused change leaves everything as it was and
// returns an error naming the problem. An error wrapping
// announcer.ErrNotConverged means the configuration is in force but the
// speaker is still catching up. warnings (logged too) are about a reload
// that went ahead: with [fleet], removed VIPs that leave fewer than their
// min_sites sites announcing them.
func (d *Daemon) Reload(ctx context.Context) (warnings []string, err error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify.reloading()
	defer d.notify.reloaded()
	path := d.o.Path
	newCfg, err := config.Load(path)
	if err != nil {
		d.metrics.ConfigLoaded(false, time.Now())
		var cerr *config.Error
		if errors.As(err, &cerr) {
			// One line per problem: readable in a text log too.
			d.log.Error("reload refused: the configuration has errors; the running one stays", "file", path,
				"problems", len(cerr.Problems))
			for _, p := range cerr.Problems {
				d.log.Error("configuration problem", "file", path, "line", p.Line, "problem", p.String())
			}
		} else {
			d.log.Error("reload refused: the configuration cannot be read; the running one stays", "file", path, "err", err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	diff := config.Compare(d.ann.Snapshot().Config, newCfg)
	if refused := diff.Refused(); len(refused) > 0 {
		d.metrics.ConfigLoaded(false, time.Now())
		for _, c := range refused {
			d.log.Error("reload refused; the running configuration stays", "change", c.String())
		}
		return nil, fmt.Errorf("%s: %s", refused[0].What, refused[0].Detail)
	}
	if diff.Empty() {
		d.metrics.ConfigLoaded(true, time.Now())
		d.log.Info("reload: the configuration did not change", "file", path)
		return nil, nil
	}
	for _, c := range diff.Changes {
		d.log.Info("reload", "change", c.String())
	}
	warnings = d.fleetRemovalWarnings(d.ann.Snapshot().Config, newCfg)
	annErr := d.ann.Reload(ctx, newCfg)
	if annErr != nil && !errors.Is(annErr, announcer.ErrNotConverged) {
		d.metrics.ConfigLoaded(false, time.Now())
		d.log.Error("reload failed; the running configuration stays", "err", annErr)
		return warnings, annErr
	}
	started, stopped, restarted := d.checks.Update(newCfg.Checks)
	d.syncBFD(newCfg)
	d.reloadFleet(newCfg)
	d.metrics.PeersConfigured(newCfg)
	d.metrics.ConfigLoaded(true, time.Now())
	d.log.Info("configuration reloaded", "file", path, "checks_started", started, "checks_stopped", stopped,
		"checks_restarted", restarted)
	go releaseMemory()
	return warnings, annErr
}

// Shutdown, step one: the RFC 8326 drain. Every VIP is announced with
// GRACEFUL_SHUTDOWN (and local-pref 0 to iBGP peers) for the drain time, so
// the routers move traffic away before the routes go. It returns when the
// drain time is over and the routes are withdrawn, or when ctx is done
// (skipping the rest of the drain).
func (d *Daemon) Drain(ctx context.Context) {
	drain := d.DrainTime()
	if f := d.ann.Snapshot().Config.Fleet; f != nil && f.MaxDrained > 0 {
		// A stop waits for a fleet drain slot at most the drain time.
		d.notify.stopping(fmt.Sprintf("stopping: waiting up to %v for a fleet drain slot, then draining every VIP for %v (RFC 8326), then withdrawing", drain, drain),
			2*drain+stopAllowance)
	} else {
		d.notify.stopping(fmt.Sprintf("stopping: draining every VIP for %v (RFC 8326), then withdrawing", drain),
			drain+stopAllowance)
	}
	if err := d.ann.DrainForShutdown(ctx); err == nil {
		_ = d.ann.WaitDrained(ctx)
	}
}

// Shutdown, step two: the checks stop; the announcer withdraws every route,
// waits (bounded) for the withdrawals to leave, stops BGP and removes the
// VIP addresses; then the API and metrics listeners close. When exit is
// done first, Stop returns without waiting for the announcer (the process
// is about to end). It returns the announcer's error, if it ended with one.
func (d *Daemon) Stop(exit context.Context) error {
	d.notify.close() // the loop stops beating from here on
	if d.keepAddrs.Load() {
		d.notify.stopping("stopping for a planned restart: closing the BGP sessions, keeping the routes (graceful restart) and the VIP addresses", stopAllowance)
	} else {
		d.notify.stopping("stopping: withdrawing every route, closing the BGP sessions, removing the VIP addresses", stopAllowance)
	}
	d.checks.Stop()
	d.annStop()
	select {
	case err := <-d.annDone:
		d.stopBFD() // after the BGP sessions closed: no BFD Down resets them
		d.undo()
		d.log.Info("anycastd stopped")
		return err
	case <-exit.Done():
		d.log.Warn("exiting without waiting for withdrawals")
		return nil
	}
}

// Abort stops everything at once after the announcer ended by itself
// (Done): the checks, then the listeners and addresses.
func (d *Daemon) Abort() {
	d.notify.close()
	d.notify.stopping("stopping: the announcer ended", stopAllowance)
	d.checks.Stop()
	d.stopBFD()
	d.undo()
}
