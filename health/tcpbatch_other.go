//go:build !linux

package health

import (
	"context"
	"net/netip"
	"time"
)

// plainTCP is the batched prober of plain tcp checks, which only Linux
// has: elsewhere every tcp check dials with net.Dialer.
type plainTCP struct{}

// newPlainTCP returns nil: there is no batched prober.
func newPlainTCP(string, netip.Addr) *plainTCP { return nil }

func (*plainTCP) probe(context.Context, time.Time) error { panic("health: no batched tcp prober") }

func (*plainTCP) opError(err error) error { return err }
