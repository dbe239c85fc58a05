package health

import (
	"os"
	"testing"
)

// Where clone3 into a cgroup is refused (systemd's RestrictNamespaces=
// answers ENOSYS), each probe moves itself into its cgroup through
// /bin/sh: a grandchild that calls setsid still dies with the probe.
func TestExecCheckerDetachedGrandchildViaShell(t *testing.T) {
	if _, err := os.Stat(shimShell); err != nil {
		t.Skip("no " + shimShell)
	}
	was := cloneRefused.Swap(true)
	t.Cleanup(func() { cloneRefused.Store(was) })
	detachedGrandchild(t)
}
