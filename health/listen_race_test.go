//go:build race

package health

// raceEnabled: the race detector is on (it allocates).
const raceEnabled = true
