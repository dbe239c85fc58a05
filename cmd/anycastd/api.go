package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/apiserver"
	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/routes"
)

// vipObservers tells several observers of every VIP transition (metrics and
// the API's event hub), in order.
type vipObservers []announcer.Observer

func (o vipObservers) VIPStateChanged(vip string, from, to routes.State, reason string) {
	for _, x := range o {
		x.VIPStateChanged(vip, from, to, reason)
	}
}

// checkPublishers returns a health publish callback that calls each of fs
// in order (the hub's, which never blocks, before the announcer's).
func checkPublishers(fs ...func(health.Event)) func(health.Event) {
	return func(ev health.Event) {
		for _, f := range fs {
			f(ev)
		}
	}
}

// startTime is when the process started, for the API's uptime.
var startTime = time.Now()

// startAPI serves the gRPC API as cfg.API says (nothing when it is
// disabled) and returns the function that stops it. reload may be nil
// (Reload then answers UNIMPLEMENTED).
func startAPI(logger *slog.Logger, cfg *config.Config, hub *apiserver.Hub, ann *announcer.Announcer,
	checks *health.Manager, speaker *announcer.GoBGP, reload func(context.Context) error) (stop func(), err error) {
	if cfg.API.Listen == "" && cfg.API.TCPListen == "" {
		return func() {}, nil
	}
	opts := apiserver.Options{
		Version:   version,
		StartTime: startTime,
		Config:    func() *config.Config { return ann.Snapshot().Config }, // the one in force, after reloads
		Announcer: ann,
		Checks:    checks.States,
		Speaker:   speaker,
		Hub:       hub,
		Reload:    reload,
		Report:    checks.Report,
		Logger:    logger,
	}
	l, err := apiserver.New(opts).Listen(cfg.API)
	if err != nil {
		return nil, err
	}
	for _, a := range l.Addrs() {
		logger.Info("serving the API", "addr", a.Network()+"://"+a.String())
	}
	return l.Stop, nil
}
