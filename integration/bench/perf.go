package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// profiler records CPU profiles of anycastd with Linux perf, one file per
// phase of a run, when Env.PerfDir is set: perf record -g at 499 Hz, with
// Go's symbols (read them with `perf report -i FILE`).
type profiler struct {
	cmd  *exec.Cmd
	file string
}

// startPerf starts recording pid into DIR/name.data; nil if no directory
// is set or perf is missing (then it says so once).
func (e *Env) startPerf(pid int, name string) *profiler {
	if e.PerfDir == "" || pid == 0 {
		return nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		e.logf("perf: not installed; no profile")
		return nil
	}
	if err := os.MkdirAll(e.PerfDir, 0o755); err != nil {
		e.logf("perf: %v", err)
		return nil
	}
	file := filepath.Join(e.PerfDir, name+".data")
	cmd := exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.logf("perf: %v", err)
		return nil
	}
	return &profiler{cmd: cmd, file: file}
}

// stop ends the recording (perf writes the file on SIGINT).
func (p *profiler) stop(e *Env) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	e.logf("perf: profile in %s", p.file)
}
