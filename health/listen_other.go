//go:build !linux

package health

import "errors"

const (
	afInet  = 2
	afInet6 = 10
)

// diagConn is only implemented on Linux.
type diagConn struct{}

func (*diagConn) find(uint8, bool, uint16, func(uint8, []byte, bool) bool) (bool, error) {
	return false, errors.New("sock_diag: only supported on Linux")
}

func (*diagConn) close() error { return nil }

func (*diagConn) lookup(uint8, bool, []byte, uint16) bool { return false }
