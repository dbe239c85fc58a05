package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux whatever the kernel's HZ).
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time (user + system) process pid has used, from
// /proc/PID/stat. Its resolution is one clock tick (10 ms), so over a
// 60-second window the share is exact to about 0.03 % of a core.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/PID/stat: %.80q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/PID/stat: %.80q", stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/PID/stat: %.80q", stat)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// statusKB returns "<field>: N kB" values (VmRSS, VmHWM, ...) of
// /proc/PID/status, in bytes.
func statusKB(pid int, fields ...string) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	return parseStatusKB(string(data), fields...)
}

func parseStatusKB(status string, fields ...string) (map[string]int64, error) {
	out := map[string]int64{}
	for line := range strings.SplitSeq(status, "\n") {
		for _, f := range fields {
			if rest, ok := strings.CutPrefix(line, f+":"); ok {
				n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("/proc/PID/status %s: %w", f, err)
				}
				out[f] = n * 1024
			}
		}
	}
	for _, f := range fields {
		if _, ok := out[f]; !ok {
			return nil, fmt.Errorf("no %s in /proc/PID/status", f)
		}
	}
	return out, nil
}

// cpuMeter measures the CPU share of processes over a window.
type cpuMeter struct {
	pids  map[string]int
	start time.Time
	cpu0  map[string]time.Duration
}

func startCPU(pids map[string]int) (*cpuMeter, error) {
	m := &cpuMeter{pids: pids, cpu0: map[string]time.Duration{}}
	for name, pid := range pids {
		c, err := cpuTime(pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m.cpu0[name] = c
	}
	m.start = time.Now()
	return m, nil
}

// shares returns each process's CPU use since the start, as a fraction of
// one core.
func (m *cpuMeter) shares() (map[string]float64, time.Duration, error) {
	out := map[string]float64{}
	wall := time.Since(m.start)
	for name, pid := range m.pids {
		c, err := cpuTime(pid)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = float64(c-m.cpu0[name]) / float64(wall)
	}
	return out, wall, nil
}

// seconds returns each process's CPU time since the start, and the wall
// time.
func (m *cpuMeter) seconds() (map[string]time.Duration, time.Duration, error) {
	out := map[string]time.Duration{}
	wall := time.Since(m.start)
	for name, pid := range m.pids {
		c, err := cpuTime(pid)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = c - m.cpu0[name]
	}
	return out, wall, nil
}

// Load is how busy the machine was over a window, in cores: everything,
// and everything but the processes of the lab and this program. Other work
// on the machine competes with what is measured.
type Load struct{ Machine, Others float64 }

func (l Load) String() string {
	return fmt.Sprintf("machine busy %.2f cores, of which %.2f outside the lab", l.Machine, l.Others)
}

// loadMeter measures Load over a window.
type loadMeter struct {
	busy0 time.Duration
	own   *cpuMeter
}

// startLoad starts measuring; own are the lab's processes (this program is
// added).
func startLoad(own map[string]int) (*loadMeter, error) {
	pids := map[string]int{"bench": os.Getpid()}
	for k, v := range own {
		if v != 0 {
			pids[k] = v
		}
	}
	busy, err := machineBusy()
	if err != nil {
		return nil, err
	}
	m, err := startCPU(pids)
	if err != nil {
		return nil, err
	}
	return &loadMeter{busy0: busy, own: m}, nil
}

func (m *loadMeter) load() Load {
	busy, err := machineBusy()
	if err != nil {
		return Load{}
	}
	wall := time.Since(m.own.start)
	var ownSum time.Duration
	for name, pid := range m.own.pids {
		if c, err := cpuTime(pid); err == nil { // a process that has gone counts as others
			ownSum += c - m.own.cpu0[name]
		}
	}
	machine := float64(busy-m.busy0) / float64(wall)
	return Load{Machine: machine, Others: max(0, machine-float64(ownSum)/float64(wall))}
}

// machineBusy returns the CPU time all cores have spent not idle, from
// /proc/stat.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat: %.80q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
