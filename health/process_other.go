//go:build !linux

package health

import "errors"

// pidfd is only implemented on Linux.
type pidfd struct{}

func openPidfd(int) (*pidfd, error) { return nil, errors.New("pidfd: only supported on Linux") }
func (*pidfd) exited() bool         { return false }
func (*pidfd) wait() error          { return errors.New("pidfd: only supported on Linux") }
func (*pidfd) close()               {}
