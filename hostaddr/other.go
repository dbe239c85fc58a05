//go:build !linux

package hostaddr

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/anycastd/anycastd/config"
)

// Host manages VIP addresses through netlink, on Linux only.
type Host struct{}

// Options are the optional parts of New.
type Options struct {
	Namespace *netns.NsHandle
	Logger    *slog.Logger
}

var errNotLinux = errors.New("managing VIP addresses needs Linux; set [interface] manage = false")

// New fails: only Linux is supported.
func New(*config.Config, Options) (*Host, error) { return nil, errNotLinux }

func (*Host) Add(netip.Prefix, string) error { return errNotLinux }
func (*Host) Remove(netip.Prefix) error      { return errNotLinux }
func (*Host) Close() error                   { return nil }

// Watch fails: only Linux is supported.
func (*Host) Watch(func(netip.Prefix, bool)) (func(), error) { return nil, errNotLinux }

// Detach does nothing: only Linux is supported.
func (*Host) Detach() {}
