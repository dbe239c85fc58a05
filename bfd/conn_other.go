//go:build !linux

package bfd

import (
	"errors"
	"net/netip"
)

// errUnsupported is returned by Listen and Dial on systems other than
// Linux: the transport needs Linux's IP_PKTINFO and IP_RECVTTL.
var errUnsupported = errors.New("bfd: transport only on Linux")

// Listener receives Control packets; on this system it cannot be opened.
type Listener struct{}

// Listen returns an error on this system.
func Listen(port int, addrs ...netip.Addr) (*Listener, error) { return nil, errUnsupported }

// Read returns an error on this system.
func (l *Listener) Read(b []byte) (n int, src, dst netip.Addr, ttl uint8, err error) {
	return 0, netip.Addr{}, netip.Addr{}, 0, errUnsupported
}

// Addrs gives nothing on this system.
func (l *Listener) Addrs() []netip.AddrPort { return nil }

// Close does nothing on this system.
func (l *Listener) Close() error { return nil }

// Sender sends Control packets; on this system it cannot be opened.
type Sender struct{}

// Dial returns an error on this system.
func Dial(local, peer netip.Addr, port int, ttl uint8) (*Sender, error) {
	return nil, errUnsupported
}

// Write returns an error on this system.
func (s *Sender) Write(b []byte) error { return errUnsupported }

// LocalAddr gives the zero AddrPort on this system.
func (s *Sender) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// RemoteAddr gives the zero AddrPort on this system.
func (s *Sender) RemoteAddr() netip.AddrPort { return netip.AddrPort{} }

// Close does nothing on this system.
func (s *Sender) Close() error { return nil }
