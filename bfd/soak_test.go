//go:build linux

package bfd

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The soak test (make soak-bfd): soakSessions BFD sessions at 3 × 50 ms
// between two Managers in this process, over the kernel's UDP sockets on
// loopback (OSTransport), for the duration in ANYCASTD_SOAK_BFD (a Go
// duration: "10m"). Session i (from 1) runs between 127.1.0.i and 127.2.0.i
// (lo covers 127.0.0.0/8), so every session has its own PeerKey, listening
// socket and sender on each side. make soak-bfd runs it in a network
// namespace of its own, so port 3784 is free whatever else runs here.
//
// It passes when every session comes Up, no session leaves Up for the
// whole duration (a Down there is a false Down: nothing failed), and every
// session is still Up at the end. It prints the state changes, the CPU the
// process used, the machine's load and both Managers' Stats.

const (
	soakSessions = 100
	soakInterval = 50 * time.Millisecond
	soakMult     = 3
	soakEnv      = "ANYCASTD_SOAK_BFD"
)

// soakCounter counts the state changes of one Manager.
type soakCounter struct {
	mu      sync.Mutex
	byEdge  map[[2]State]int // {from, to} → count
	byDiag  map[Diag]int     // changes out of Up, by local diagnostic
	up      int              // sessions Up now
	allUpAt time.Time        // when up first reached soakSessions
	leftUp  []Change         // changes out of Up after allUpAt
}

func newSoakCounter() *soakCounter {
	return &soakCounter{byEdge: map[[2]State]int{}, byDiag: map[Diag]int{}}
}

func (c *soakCounter) onChange(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byEdge[[2]State{ch.From, ch.To}]++
	if ch.To == StateUp {
		c.up++
		if c.up == soakSessions && c.allUpAt.IsZero() {
			c.allUpAt = ch.Time
		}
	}
	if ch.From == StateUp {
		c.up--
		c.byDiag[ch.Diag]++
		if !c.allUpAt.IsZero() {
			c.leftUp = append(c.leftUp, ch)
		}
	}
}

// summary gives the counts as "down→init 100, init→up 100, ...".
func (c *soakCounter) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, from := range []State{StateAdminDown, StateDown, StateInit, StateUp} {
		for _, to := range []State{StateAdminDown, StateDown, StateInit, StateUp} {
			if n := c.byEdge[[2]State{from, to}]; n > 0 {
				parts = append(parts, fmt.Sprintf("%v→%v %d", from, to, n))
			}
		}
	}
	for d, n := range c.byDiag {
		parts = append(parts, fmt.Sprintf("left up with %v %d", d, n))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(t *testing.T) (user, sys time.Duration) {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// machineCPU reads the first line of /proc/stat: busy and total jiffies
// of all CPUs.
func machineCPU(t *testing.T) (busy, total uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatalf("read /proc/stat: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q: %v", line, err)
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func soakAddr(net byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, net, byte(i / 250), byte(1 + i%250)})
}

func TestSoakBFD(t *testing.T) {
	env := os.Getenv(soakEnv)
	if env == "" {
		t.Skipf("soak test: set %s to a duration (make soak-bfd: %s=10m) to run %d sessions at %d × %v for that long",
			soakEnv, soakEnv, soakSessions, soakMult, soakInterval)
	}
	dur, err := time.ParseDuration(env)
	if err != nil || dur <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", soakEnv, env)
	}

	var addrsA, addrsB []netip.Addr
	for i := range soakSessions {
		addrsA = append(addrsA, soakAddr(1, i))
		addrsB = append(addrsB, soakAddr(2, i))
	}
	ca, cb := newSoakCounter(), newSoakCounter()
	ma := NewManager(OSTransport{Addrs: addrsA}, ca.onChange)
	defer ma.Close()
	mb := NewManager(OSTransport{Addrs: addrsB}, cb.onChange)
	defer mb.Close()

	cfg := Config{DesiredMinTx: soakInterval, RequiredMinRx: soakInterval, DetectMult: soakMult}
	start := time.Now()
	for i := range soakSessions {
		ma.Set(PeerKey{Peer: addrsB[i], Local: addrsA[i]}, cfg, 0)
		mb.Set(PeerKey{Peer: addrsA[i], Local: addrsB[i]}, cfg, 0)
	}

	// All Up, negotiated at 50 ms (the session sends at most every second
	// until Up, so this takes a few seconds).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if allUp(t, ma, false) && allUp(t, mb, false) {
			break
		}
		if time.Now().After(deadline) {
			allUp(t, ma, true)
			allUp(t, mb, true)
			t.Fatalf("not every session Up after 30 s: A %s; B %s", ca.summary(), cb.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("all %d sessions Up on both sides after %v (negotiated TX %v, detection time %v)",
		soakSessions, time.Since(start).Round(time.Millisecond), soakInterval, soakMult*soakInterval)

	u0, s0 := cpuTime(t)
	busy0, total0 := machineCPU(t)
	load0 := loadavg()
	soakStart := time.Now()
	end := soakStart.Add(dur)
	lastReport := soakStart
	for now := time.Now(); now.Before(end); now = time.Now() {
		// Report once a minute; the verdict comes from the counters.
		if now.Sub(lastReport) >= time.Minute {
			lastReport = now
			ca.mu.Lock()
			da := len(ca.leftUp)
			ca.mu.Unlock()
			cb.mu.Lock()
			db := len(cb.leftUp)
			cb.mu.Unlock()
			t.Logf("%v: left Up: A %d, B %d; load %s", now.Sub(soakStart).Round(time.Second), da, db, loadavg())
		}
		time.Sleep(min(time.Second, time.Until(end)))
	}
	elapsed := time.Since(soakStart)
	u1, s1 := cpuTime(t)
	busy1, total1 := machineCPU(t)
	load1 := loadavg()
	endUpA, endUpB := allUp(t, ma, true), allUp(t, mb, true)

	var pkts [2][2]uint64 // manager, in/out
	for i, m := range []*Manager{ma, mb} {
		for _, s := range m.Sessions() {
			pkts[i][0] += s.PacketsIn
			pkts[i][1] += s.PacketsOut
		}
	}
	cpu := (u1 - u0) + (s1 - s0)
	machine := 100 * float64(busy1-busy0) / float64(max(total1-total0, 1))
	report := []string{
		fmt.Sprintf("BFD soak: %d sessions at %d × %v, two Managers over UDP on loopback, for %v",
			soakSessions, soakMult, soakInterval, elapsed.Round(time.Second)),
		fmt.Sprintf("state changes A: %s", ca.summary()),
		fmt.Sprintf("state changes B: %s", cb.summary()),
		fmt.Sprintf("left Up after all were Up (false Down): A %d, B %d", len(ca.leftUp), len(cb.leftUp)),
		fmt.Sprintf("packets A in %d out %d; B in %d out %d (%.0f/s both ways)",
			pkts[0][0], pkts[0][1], pkts[1][0], pkts[1][1],
			float64(pkts[0][1]+pkts[1][1])/time.Since(start).Seconds()),
		fmt.Sprintf("process CPU over the soak: user %v, system %v = %.1f %% of one core",
			(u1 - u0).Round(time.Millisecond), (s1 - s0).Round(time.Millisecond),
			100*cpu.Seconds()/elapsed.Seconds()),
		fmt.Sprintf("machine: %.0f %% busy over the soak (all CPUs); load average %s at start, %s at end",
			machine, load0, load1),
		fmt.Sprintf("Stats A: %+v", ma.Stats()),
		fmt.Sprintf("Stats B: %+v", mb.Stats()),
	}
	fmt.Println(strings.Join(report, "\n"))

	for name, c := range map[string]*soakCounter{"A": ca, "B": cb} {
		for i, ch := range c.leftUp {
			if i == 20 {
				t.Errorf("%s: %d more", name, len(c.leftUp)-i)
				break
			}
			t.Errorf("%s: false Down at %v into the soak: %v %v→%v diag %v (remote %v)",
				name, ch.Time.Sub(soakStart).Round(time.Millisecond), ch.Key, ch.From, ch.To, ch.Diag, ch.Remote)
		}
	}
	if !endUpA || !endUpB {
		t.Errorf("not every session Up at the end")
	}
}

// allUp tells whether m has soakSessions sessions, all Up at a 50 ms
// transmit interval; with report, it says what is not.
func allUp(t *testing.T, m *Manager, report bool) bool {
	t.Helper()
	ss := m.Sessions()
	ok := len(ss) == soakSessions
	if !ok && report {
		t.Errorf("%d sessions, want %d", len(ss), soakSessions)
	}
	for _, s := range ss {
		if s.State != StateUp || s.TxInterval != soakInterval || s.Err != nil {
			ok = false
			if report {
				t.Errorf("session %v: %v, TX %v, err %v", s.Key, s.State, s.TxInterval, s.Err)
			}
		}
	}
	return ok
}
