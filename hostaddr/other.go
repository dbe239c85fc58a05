//go:build !linux

package routes

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/anycastd/anycastd/config"
)

// Host manages VIP addresses through netlink, on Linux only.
type Host struct{}

// HostOptions are the optional parts of NewHost.
type HostOptions struct {
	Namespace *netns.NsHandle
	Logger    *slog.Logger
}

var errNotLinux = errors.New("managing VIP addresses needs Linux; set [interface] manage = false")

// NewHost fails: only Linux is supported.
func NewHost(*config.Config, HostOptions) (*Host, error) { return nil, errNotLinux }

func (*Host) Add(netip.Prefix) error    { return errNotLinux }
func (*Host) Remove(netip.Prefix) error { return errNotLinux }
func (*Host) Close() error              { return nil }

// Watch fails: only Linux is supported.
func (*Host) Watch(func(netip.Prefix, bool)) (func(), error) { return nil, errNotLinux }
