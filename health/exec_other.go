//go:build !linux

package health

// waitExitedNoReap is only implemented on Linux; elsewhere stragglers in an
// exec check's process group are killed only when the probe's ctx ends.
func waitExitedNoReap(int) bool { return false }
