package config

import "time"

// The defaults and limits of [bgp.peer.bfd] (FRR's bfdd has the same
// defaults: 300ms × 3, a 900 ms detection time).
const (
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
	minBFDInterval       = 10 * time.Millisecond
	maxBFDInterval       = 60 * time.Second
)

// bfd validates [bgp.peer.bfd].
func (s scope) bfd(r *rawBFD) *BFD {
	bs := scope{c: s.c, path: s.path + ".bfd", node: r.Pos.Node, hdr: r.Pos.At}
	b := &BFD{MinTx: DefaultBFDInterval, MinRx: DefaultBFDInterval, Multiplier: DefaultBFDMultiplier}
	for _, k := range []struct {
		key string
		raw any
		dst *time.Duration
	}{{"min_tx", r.MinTx, &b.MinTx}, {"min_rx", r.MinRx, &b.MinRx}} {
		d, ok := bs.duration(k.key, k.raw)
		switch {
		case !ok:
		case d < minBFDInterval || d > maxBFDInterval:
			bs.keyErr(k.key, "%s is outside %s..%s", d, minBFDInterval, maxBFDInterval)
		case d%time.Microsecond != 0:
			bs.keyErr(k.key, "%s is not a whole number of microseconds (BFD carries µs)", d)
		default:
			*k.dst = d
		}
	}
	if x, ok := bs.integer("multiplier", r.Multiplier, 1, 255); ok {
		b.Multiplier = uint8(x)
	}
	return b
}
