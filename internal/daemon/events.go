package daemon

import (
	"github.com/anycastd/anycastd/announcer"
	"github.com/anycastd/anycastd/apiserver"
	"github.com/anycastd/anycastd/health"
	"github.com/anycastd/anycastd/metrics"
)

// events is the one place every transition fans out from: a check's status
// (from its probe's goroutine), a BGP session's state (from GoBGP's event
// watcher) and a VIP's state (from the announcer loop). The API's event
// hub and metrics go first, since they never block; the announcer last,
// since taking a check event waits for its loop.
type events struct {
	hub     *apiserver.Hub
	metrics *metrics.Metrics // nil without a metrics listener
	ann     *announcer.Announcer
	// bgpUp, with [fleet], keeps the guard told whether any session is
	// established (fleet.go); nil without.
	bgpUp func(announcer.PeerEvent)
}

var _ announcer.Observer = (*events)(nil)

func (e *events) CheckChanged(ev health.Event) {
	e.hub.CheckChanged(ev)
	e.ann.CheckChanged(ev)
}

func (e *events) PeerChanged(ev announcer.PeerEvent) {
	e.hub.PeerChanged(ev)
	if e.metrics != nil {
		e.metrics.PeerChanged(ev)
	}
	e.ann.PeerChanged(ev)
	if e.bgpUp != nil {
		e.bgpUp(ev)
	}
}

func (e *events) VIPChanged(ev announcer.VIPEvent) {
	e.hub.VIPChanged(ev)
	if e.metrics != nil {
		e.metrics.VIPChanged(ev)
	}
}
