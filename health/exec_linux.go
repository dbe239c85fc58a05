package health

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// cloneRefused is set once the kernel or a seccomp filter refused clone3
// with CLONE_INTO_CGROUP (Linux before 5.7; systemd answers every clone3
// with ENOSYS under RestrictNamespaces=): from then on each probe moves
// itself into its cgroup through shimShell before it execs the command.
var cloneRefused atomic.Bool

// shimShell runs shimScript: it writes its own pid (the probe's, as it
// then execs the command) into the cgroup.procs file named by $0, before
// anything of the probe can fork. A refused write costs only the cgroup
// (the process group still holds the probe).
const (
	shimShell  = "/bin/sh"
	shimScript = `echo $$ >"$0" 2>/dev/null; exec "$@"`
)

// attach makes the command start in the cgroup: through clone3, or where
// that was refused, through shimShell (the command then sees its resolved
// path as argv[0]).
func (c *probeCgroup) attach(cmd *exec.Cmd) {
	if c == nil {
		return
	}
	if !cloneRefused.Load() {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(c.fd.Fd())
		return
	}
	cmd.Args = append([]string{"sh", "-c", shimScript, filepath.Join(c.dir, "cgroup.procs"), cmd.Path}, cmd.Args[1:]...)
	cmd.Path = shimShell
}

// shimInstead is told why starting a probe in c failed; it reports whether
// the start should be tried again through shimShell: when clone3 itself
// was refused (ENOSYS, EINVAL, E2BIG) and the shell exists. The first time
// it says so in the log.
func (c *probeCgroup) shimInstead(err error, log func(msg string, args ...any)) bool {
	if c == nil || cloneRefused.Load() {
		return false
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.E2BIG) {
		return false
	}
	if _, serr := os.Stat(shimShell); serr != nil {
		return false
	}
	if !cloneRefused.Swap(true) {
		log("exec checks: clone3 into a cgroup was refused (systemd's RestrictNamespaces= refuses it; Linux before 5.7 lacks it): each probe now moves itself into its cgroup through "+shimShell,
			"err", err)
	}
	return true
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
