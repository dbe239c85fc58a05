package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/anycastd/anycastd/bfd"
)

// bfdMetrics are the BFD sessions' series, one set per peer (a handful).
type bfdMetrics struct {
	up          *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

func newBFDMetrics(reg prometheus.Registerer) *bfdMetrics {
	b := &bfdMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "bfd_session_up",
			Help: "Whether the BFD session with the peer is Up (1) or not (0) (RFC 5880).",
		}, []string{"peer"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bfd_session_transitions_total",
			Help: "BFD session state changes, by the state reached and the local diagnostic (RFC 5880 §4.1).",
		}, []string{"peer", "to", "diag"}),
	}
	reg.MustRegister(b.up, b.transitions)
	return b
}

// BFDChanged records a BFD session's state change. Safe for concurrent
// use; a nil *Metrics does nothing.
func (m *Metrics) BFDChanged(c bfd.Change) {
	if m == nil {
		return
	}
	peer := c.Key.Peer.String()
	v := 0.0
	if c.To == bfd.StateUp {
		v = 1
	}
	m.bfd.up.WithLabelValues(peer).Set(v)
	m.bfd.transitions.WithLabelValues(peer, c.To.String(), c.Diag.String()).Inc()
}
