//go:build linux

package hostaddr

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a new temporary directory, and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestHostStateFileSystemFull fills the state file system until a journal
// record no longer fits: Add fails, the journal holds no torn record, and
// once there is room again a restart takes over every address anycastd
// added.
func TestHostStateFileSystemFull(t *testing.T) {
	n := newTestNS(t)
	dir := mountTmpfs(t, 16<<10)
	var prefixes []netip.Prefix
	for i := range 500 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i >> 8), byte(i)}), 32))
	}
	cfg := hostConfig("lo", dir, prefixes...)
	h1, _ := newHost(t, n, cfg)
	filler := fill(t, dir)

	// Records are appended until one crosses into a page the full file
	// system does not have: that write is cut short.
	failed := -1
	for i, p := range prefixes {
		err := h1.Add(p, "web")
		if err == nil {
			continue
		}
		if !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Add(%s): %v, want ENOSPC", p, err)
		}
		failed = i
		break
	}
	if failed < 0 {
		t.Fatal("every Add succeeded on a full file system")
	}
	t.Logf("Add %d (%s) failed", failed, prefixes[failed])
	added, rest := prefixes[:failed], prefixes[failed:]
	n.wantAddrs(t, "lo", added, rest[:1])

	data, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Errorf("journal ends in a torn record: %q", data[max(0, len(data)-40):])
	}
	st, err := parseJournal(data)
	if err != nil {
		t.Fatalf("journal after the failed Add: %v", err)
	}
	if len(st.Torn) > 0 || len(st.Owned) != len(added) || st.Owned[rest[0]] {
		t.Errorf("journal after the failed Add: owns %d (the failed one: %v), torn %q; want %d", len(st.Owned), st.Owned[rest[0]], st.Torn, len(added))
	}

	// Room again: the next records follow, then a crash.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, h1, rest[:2]...)
	h1.abandon()

	h2, logs := newHost(t, n, cfg)
	all := prefixes[:failed+2]
	for _, p := range all {
		if !h2.owned[p] {
			t.Fatalf("after the restart %s is not anycastd's", p)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("restart warned:\n%s", logs)
	}
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, all)
}

// TestHostJournalWithTornRecord starts over a journal where a torn record
// was followed by the next one: the start skips the fragment with a warning
// and keeps what the records say.
func TestHostJournalWithTornRecord(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "addr", "add", p4.String(), "dev", "lo")
	n.ip(t, "addr", "add", p4b.String(), "dev", "lo")
	writeJournal(t, n, dir, bootID(), "add "+p4.String()+"\n", "add 203.0.113.4add "+p4b.String()+"\n")
	h, logs := newHost(t, n, hostConfig("lo", dir, p4, p4b))
	if !h.owned[p4] || !h.owned[p4b] {
		t.Errorf("owned = %v, want %s and %s", h.owned, p4, p4b)
	}
	if !strings.Contains(logs.String(), `level=WARN msg="state file: skipped a record`) || !strings.Contains(logs.String(), `203.0.113.4\"`) {
		t.Errorf("no warning about the torn record:\n%s", logs)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p4b})
}
