package config

import (
	"strings"
	"testing"
	"time"
)

// TestGracefulRestartTime: the key is read as whole seconds, defaults to
// DefaultGracefulRestartTime, and a change of either graceful-restart key
// needs a restart (it is advertised in every session's OPEN).
func TestGracefulRestartTime(t *testing.T) {
	base := mustParse(t, diffBase)
	if base.BGP.GracefulRestart || base.BGP.GracefulRestartTime != DefaultGracefulRestartTime {
		t.Fatalf("defaults: graceful_restart %v, graceful_restart_time %s; want false, %s",
			base.BGP.GracefulRestart, base.BGP.GracefulRestartTime, DefaultGracefulRestartTime)
	}
	on := mustParse(t, strings.Replace(diffBase, "router_id = \"198.18.1.2\"\n",
		"router_id = \"198.18.1.2\"\ngraceful_restart = true\ngraceful_restart_time = \"4095s\"\n", 1))
	if !on.BGP.GracefulRestart || on.BGP.GracefulRestartTime != 4095*time.Second {
		t.Fatalf("got graceful_restart %v, graceful_restart_time %s; want true, 4095s", on.BGP.GracefulRestart, on.BGP.GracefulRestartTime)
	}
	d := Compare(base, on)
	if got := len(d.Refused()); got != 2 {
		t.Fatalf("Compare: %d refused changes, want 2:\n%s", got, d)
	}
	want := `! bgp.graceful_restart: false -> true needs a restart; a reload is refused
! bgp.graceful_restart_time: 2m0s -> 1h8m15s needs a restart; a reload is refused`
	if got := d.String(); got != want {
		t.Errorf("Compare:\n%s\nwant:\n%s", got, want)
	}
}
