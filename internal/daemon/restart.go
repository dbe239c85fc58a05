package daemon

import (
	"context"
	"errors"
	"time"
)

// GracefulRestart reports whether the configuration in force has graceful
// restart on, which a planned restart (StopForRestart) needs.
func (d *Daemon) GracefulRestart() bool { return d.ann.Snapshot().Config.BGP.GracefulRestart }

// StopForRestart stops for a planned restart, e.g. an upgrade (SIGUSR2):
// the checks stop; the BGP sessions close without withdrawing anything and
// without NOTIFICATION (GoBGP's StopBgpRequest.AllowGracefulRestart), so
// routers that negotiated graceful restart keep this node's routes as
// stale for bgp.graceful_restart_time (RFC 4724 §4.2); the VIP addresses
// stay on the interface and in the journal, for the next start to adopt;
// then the API and metrics listeners close. The next start brings the
// sessions up once every VIP has a first decision, sends the decided
// routes and End-of-RIB, and the routers drop what was not sent again.
// Like Stop, it returns early when exit is done.
func (d *Daemon) StopForRestart(exit context.Context) error {
	d.keepAddrs.Store(true)
	d.ann.StopForRestart()
	return d.Stop(exit)
}

// RequestRestart asks for a planned restart (the API's Restart): the
// process that serves the daemon stops it with StopForRestart
// (RestartRequested). It returns the restart time the routers keep the
// routes for, or an error without graceful restart.
func (d *Daemon) RequestRestart() (time.Duration, error) {
	cfg := d.ann.Snapshot().Config
	if !cfg.BGP.GracefulRestart {
		return 0, errors.New("bgp.graceful_restart is off: a restart would make the routers drop this node's routes at once; stop and start anycastd instead")
	}
	select {
	case d.restartReq <- struct{}{}:
	default: // already asked
	}
	return cfg.BGP.GracefulRestartTime, nil
}

// RestartRequested delivers a value when RequestRestart was called.
func (d *Daemon) RestartRequested() <-chan struct{} { return d.restartReq }
