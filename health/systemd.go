package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// systemdBus asks systemd over D-Bus for a service's MainPID. It connects on
// first use (the system bus, else, as root, systemd's private socket) and
// again after the connection broke. Without D-Bus or systemd every call
// fails and says why (the caller wraps ErrCannotRun).
type systemdBus struct {
	mu     sync.Mutex
	conn   *sddbus.Conn
	closed bool
}

// MainPID implements mainPIDGetter.
func (b *systemdBus) MainPID(ctx context.Context, unit string) (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("closed")
	}
	if b.conn != nil && !b.conn.Connected() {
		b.conn.Close()
		b.conn = nil
	}
	if b.conn == nil {
		conn, err := dialSystemd()
		if err != nil {
			return 0, fmt.Errorf("cannot reach systemd over D-Bus: %w", err)
		}
		b.conn = conn
	}
	prop, err := b.conn.GetServicePropertyContext(ctx, unit, "MainPID")
	if err != nil {
		return 0, fmt.Errorf("asking systemd for MainPID: %w", err)
	}
	pid, ok := prop.Value.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("systemd answered MainPID %s", prop.Value)
	}
	return pid, nil
}

// dialSystemd connects to systemd. The connection lives until Close (a
// context given here would end it), so it is made with none.
func dialSystemd() (*sddbus.Conn, error) {
	conn, err := sddbus.NewSystemConnectionContext(context.Background())
	if err != nil && os.Geteuid() == 0 {
		if c, err2 := sddbus.NewSystemdConnectionContext(context.Background()); err2 == nil {
			return c, nil
		}
	}
	return conn, err
}

// Close implements io.Closer.
func (b *systemdBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
	return nil
}
