//go:build !linux

package health

import "os/exec"

// waitExitedNoReap is only implemented on Linux; elsewhere stragglers in an
// exec check's process group are killed only when the probe's ctx ends.
func waitExitedNoReap(int) bool { return false }

// probeCgroup is a cgroup v2 of one exec probe; Linux only, so always nil
// here, and its methods do nothing.
type probeCgroup struct{}

func newProbeCgroup() *probeCgroup                                { return nil }
func (*probeCgroup) attach(*exec.Cmd)                             {}
func (*probeCgroup) shimInstead(error, func(string, ...any)) bool { return false }
func (*probeCgroup) kill()                                        {}
func (*probeCgroup) remove()                                      {}
