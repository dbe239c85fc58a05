package health

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

// probeCgroup is the cgroup v2 one exec probe runs in: created below the
// daemon's own cgroup, the command is started in it (clone3
// CLONE_INTO_CGROUP), so every process it starts is in it too, whatever
// process group or session it moves to; cgroup.kill (Linux 5.14) kills them
// all. A nil *probeCgroup does nothing.
type probeCgroup struct {
	dir string
	fd  *os.File // the directory, for CgroupFD
}

var (
	cgroupBaseOnce sync.Once
	cgroupBase     string // "" if cgroups cannot be used
	cgroupSeq      atomic.Uint64
)

// newProbeCgroup creates a cgroup for one probe; nil where there is no
// writable cgroup v2 hierarchy with cgroup.kill.
func newProbeCgroup() *probeCgroup {
	cgroupBaseOnce.Do(func() { cgroupBase = findCgroupBase() })
	if cgroupBase == "" {
		return nil
	}
	c, err := makeProbeCgroup(cgroupBase)
	if err != nil {
		return nil
	}
	return c
}

// makeProbeCgroup creates a probe's cgroup below base.
func makeProbeCgroup(base string) (*probeCgroup, error) {
	dir := filepath.Join(base, fmt.Sprintf("anycastd-probe-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	c := &probeCgroup{dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		c.remove()
		return nil, err
	}
	fd, err := os.Open(dir)
	if err != nil {
		c.remove()
		return nil, err
	}
	c.fd = fd
	return c, nil
}

// findCgroupBase returns the directory of the daemon's own cgroup v2 if a
// probe cgroup can be made below it, else "".
func findCgroupBase() string {
	own := ""
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.Lines(string(b)) {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
				own = p
			}
		}
	}
	if own == "" {
		return ""
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source ...
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		root, mnt := fields[3], unescapeMountinfo(fields[4])
		rel, ok := strings.CutPrefix(own, root)
		if !ok {
			continue
		}
		base := filepath.Join(mnt, rel)
		if c, err := makeProbeCgroup(base); err == nil {
			c.remove()
			return base
		}
	}
	return ""
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// attach makes the command start in the cgroup.
func (c *probeCgroup) attach(attr *syscall.SysProcAttr) {
	if c == nil {
		return
	}
	attr.UseCgroupFD = true
	attr.CgroupFD = int(c.fd.Fd())
}

// kill kills every process in the cgroup.
func (c *probeCgroup) kill() {
	if c == nil {
		return
	}
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
}

// remove deletes the cgroup once the processes in it have exited (a killed
// process leaves it at exit); it gives up after a few seconds.
func (c *probeCgroup) remove() {
	if c == nil {
		return
	}
	if c.fd != nil {
		c.fd.Close()
	}
	for range 500 {
		err := os.Remove(c.dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.EBUSY) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
