package announcer

import (
	"context"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// Graceful restart (RFC 4724) in the loop: End-of-RIB only once every VIP's
// first decision is known, and a planned restart that withdraws nothing.

// sessionGate is a speaker that, after Start, holds its sessions down until
// the loop releases them: the GoBGP adapter with graceful restart
// (gobgp_restart.go says why it cannot defer End-of-RIB itself).
type sessionGate interface {
	HoldingSessions() bool
	ReleaseSessions(ctx context.Context) error
}

// restartStopper is a speaker that can stop for a planned restart: it
// closes the sessions without NOTIFICATION and without withdrawing, so the
// routers keep the routes as stale (RFC 4724 §4.2).
type restartStopper interface {
	StopForRestart(ctx context.Context) error
}

// grNegotiation is a speaker that tells which established sessions
// negotiated graceful restart.
type grNegotiation interface {
	GracefulRestartNegotiated(ctx context.Context) (map[string]bool, error)
}

// releaseShare is the part of the Restart Time after the start by which the
// sessions come up even if some VIP has no decision yet: the routers count
// the Restart Time from the old process's exit, the session needs a few
// seconds (GoBGP connects 2–5 s after a session is enabled), and stale
// routes are dropped once it runs out (RFC 4724 §4.2).
const releaseShare = 0.75

// holdSessions starts holding the sessions after Start when the speaker
// does so (graceful restart): until every VIP has a first decision, or at
// the latest releaseShare of the Restart Time from now.
func (l *loop) holdSessions(start time.Time) {
	g, ok := l.speaker.(sessionGate)
	if !ok || !g.HoldingSessions() {
		return
	}
	l.gate = g
	l.releaseBy = start.Add(time.Duration(float64(l.cfg.BGP.GracefulRestartTime) * releaseShare))
	l.log.Info("graceful restart: the BGP sessions come up once every VIP has a first decision (its checks have risen or fallen), so End-of-RIB follows the decided routes; routers keep this node's routes from before the restart until then",
		"at_the_latest", l.releaseBy.Format(time.TimeOnly), "restart_time", l.cfg.BGP.GracefulRestartTime.String())
}

// undecided lists the VIPs without a first decision: not announced, not
// drained, and with a check that has neither risen nor fallen yet.
func undecided(cfg map[string]config.VIP, checks map[string]routes.CheckStatus, vips []routes.VIPStatus) []string {
	var out []string
	for _, st := range vips {
		if st.State.Announced() || st.State == routes.StateDisabled {
			continue
		}
		for _, c := range cfg[st.Name].Checks {
			if cs, ok := checks[c]; !ok || cs.Status == health.StatusUnknown {
				out = append(out, st.Name)
				break
			}
		}
	}
	return out
}

// maybeRelease brings the held sessions up once every VIP has a first
// decision and the speaker holds the decided table (ok: every call of this
// reconcile succeeded), or at releaseBy. It returns when the loop must run
// again for it.
func (l *loop) maybeRelease(ctx context.Context, vips []routes.VIPStatus, ok bool, now, next time.Time) time.Time {
	if l.gate == nil {
		return next
	}
	pending := undecided(l.vips, l.checks, vips)
	late := !now.Before(l.releaseBy)
	if !late && (len(pending) > 0 || !ok) {
		if l.releaseBy.Before(next) {
			return l.releaseBy
		}
		return next
	}
	if err := l.gate.ReleaseSessions(ctx); err != nil {
		l.log.Error("cannot bring up the BGP sessions; will retry", "err", err)
		if retry := now.Add(l.opts.RetryInterval); retry.Before(next) {
			return retry
		}
		return next
	}
	l.gate = nil
	if late && len(pending) > 0 {
		l.log.Warn("graceful restart: bringing up the BGP sessions before every VIP has a first decision, so the routers do not drop this node's routes at the end of the restart time; these VIPs are not announced until their checks rise",
			"undecided", strings.Join(pending, ","), "announced", len(l.announced))
		return next
	}
	l.log.Info("graceful restart: every VIP has a first decision: bringing up the BGP sessions; End-of-RIB follows the routes",
		"announced", len(l.announced))
	return next
}

// StopForRestart makes the loop, when its context ends, stop for a planned
// restart instead of withdrawing: the speaker stops without withdrawing or
// NOTIFICATION and the VIP addresses stay (with graceful restart the
// routers keep the routes as stale for the Restart Time; the next start
// sends them again and End-of-RIB). Call it before cancelling Run's
// context. A speaker that cannot stop so is stopped as usual.
func (a *Announcer) StopForRestart() { a.keepRoutes.Store(true) }

// stopForRestart is the loop's end for a planned restart: nothing is
// withdrawn, the sessions close without NOTIFICATION, the addresses stay
// (the daemon leaves them too: the next run adopts them).
func (l *loop) stopForRestart() {
	ctx := context.Background()
	rs, ok := l.speaker.(restartStopper)
	if !ok {
		l.log.Warn("this BGP speaker cannot stop for a restart: withdrawing as for a stop")
		l.shutdown()
		return
	}
	if n, ok := l.speaker.(grNegotiation); ok {
		if neg, err := n.GracefulRestartNegotiated(ctx); err == nil {
			for peer, on := range neg {
				if !on {
					l.log.Warn("planned restart: this router did not negotiate graceful restart: it drops this node's routes when the session closes", "peer", peer)
				}
			}
		}
	}
	l.log.Info("planned restart: stopping BGP without withdrawing; routers that negotiated graceful restart keep the routes as stale until anycastd is back",
		"routes", len(l.announced), "restart_time", l.cfg.BGP.GracefulRestartTime.String())
	if err := rs.StopForRestart(ctx); err != nil {
		l.log.Error("stopping BGP for a restart", "err", err)
	}
	l.status = nil
	l.publish()
}

// heldFlushTimeout bounds how long a stop waits for held sessions to come
// up and send End-of-RIB (GoBGP connects 2–5 s after a session is enabled,
// then defers up to grDeferralTime).
const heldFlushTimeout = 10 * time.Second

// flushHeld runs at a stop (after the withdrawals) while the sessions are
// still held after a start with graceful restart: the routers still keep
// the previous run's routes as stale, and would go on sending traffic here
// until their restart time ran out. So the sessions come up with nothing
// announced, and End-of-RIB makes the routers drop those routes (RFC 4724
// §4.2). It waits, at most heldFlushTimeout, until every session has sent
// an UPDATE (End-of-RIB) per family.
func (l *loop) flushHeld(ctx context.Context) {
	if l.gate == nil {
		return
	}
	l.log.Warn("stopping before the BGP sessions came up after a graceful restart: bringing them up with nothing announced, so the routers drop this node's routes now (End-of-RIB) rather than at the end of the restart time")
	if err := l.gate.ReleaseSessions(ctx); err != nil {
		l.log.Error("cannot bring up the BGP sessions: the routers keep this node's routes until the restart time runs out", "err", err)
		return
	}
	l.gate = nil
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(heldFlushTimeout)
	for {
		sent, err := l.speaker.SentUpdates(ctx)
		done := err == nil
		for _, p := range l.cfg.BGP.Peers {
			if sent[p.Address] < uint64(len(p.Families)) {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			l.log.Warn("not every router got End-of-RIB before the stop: those keep this node's routes until the restart time runs out",
				"waited", heldFlushTimeout.String())
			return
		}
	}
}
