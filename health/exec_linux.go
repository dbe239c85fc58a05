package health

import (
	"errors"

	"golang.org/x/sys/unix"
)

// waitExitedNoReap blocks until process pid has exited, without reaping it
// (waitid with WNOWAIT), and reports whether it could tell. While the exited
// process stays unreaped its pid, and so its process group id, is not reused.
func waitExitedNoReap(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil
	}
}
