//go:build !linux

package health

import "errors"

const (
	afInet  = 2
	afInet6 = 10
)

// diagConn is only implemented on Linux.
type diagConn struct{}

func (*diagConn) dump(uint8, bool, int, func(uint8, uint16, []byte, bool) bool) error {
	return errors.New("sock_diag: only supported on Linux")
}

func (*diagConn) close() error { return nil }

func (*diagConn) lookup(uint8, bool, []byte, uint16) bool { return false }
