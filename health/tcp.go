package health

import (
	"context"
	"fmt"
	"net"

	"github.com/anycastd/anycastd/config"
)

// tcpChecker passes when a TCP connection to address can be opened.
type tcpChecker struct {
	address string
}

func newTCPChecker(c config.TCPCheck) (*tcpChecker, error) {
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return nil, fmt.Errorf("tcp address %q: %w", c.Address, err)
	}
	return &tcpChecker{address: c.Address}, nil
}

// Check implements Checker. The connection is closed right after it is
// established; nothing is sent.
func (t *tcpChecker) Check(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.address)
	if err != nil {
		return err
	}
	return conn.Close()
}
