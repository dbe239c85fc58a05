package health

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pidfd is a process file descriptor, registered with the runtime's poller:
// it becomes readable when the process exits, and a goroutine waiting for
// that costs no thread.
type pidfd struct {
	f  *os.File
	rc syscall.RawConn
}

// openPidfd opens a pidfd for pid. The error is errNoProcess if pid names no
// process, or only a zombie.
func openPidfd(pid int) (*pidfd, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) {
		// Before Linux 5.10 there is no PIDFD_NONBLOCK.
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			err = unix.SetNonblock(fd, true)
			if err != nil {
				unix.Close(fd)
			}
		}
	}
	if errors.Is(err, unix.ESRCH) {
		return nil, errNoProcess
	}
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &pidfd{f: f, rc: rc}
	if p.exited() {
		p.close()
		return nil, errNoProcess
	}
	return p, nil
}

// exited reports whether the process has exited. It is false once the pidfd
// is closed.
func (p *pidfd) exited() bool {
	var done bool
	if err := p.rc.Control(func(fd uintptr) { done = pollIn(int(fd)) }); err != nil {
		return false
	}
	return done
}

// wait blocks until the process has exited (nil) or the pidfd is closed.
func (p *pidfd) wait() error {
	return p.rc.Read(func(fd uintptr) bool { return pollIn(int(fd)) })
}

// close closes the pidfd; a wait in progress returns. It may be called more
// than once.
func (p *pidfd) close() { _ = p.f.Close() }

// pollIn reports whether fd is readable now.
func pollIn(fd int) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0
	}
}
