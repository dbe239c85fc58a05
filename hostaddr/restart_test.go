//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHostRestartKeepsOwnership(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "addr", "add", p4c.String(), "dev", "lo") // the operator's
	h1, _ := newHost(t, n, hostConfig("lo", dir, p4, p4b, p4c, p6))
	mustAdd(t, h1, p4, p4b, p4c, p6)
	h1.abandon() // a crash: nothing removed

	// p4b is no longer configured: removed at start. p4 and p6 are still
	// anycastd's, p4c still the operator's.
	h2, _ := newHost(t, n, hostConfig("lo", dir, p4, p4c, p6))
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p4c, p6}, []netip.Prefix{p4b})
	mustAdd(t, h2, p4, p4c, p6)
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6})
}

func TestHostRestartKeepsCreatedLink(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	h1, _ := newHost(t, n, hostConfig("acd0", dir, p4))
	mustAdd(t, h1, p4)
	h1.abandon()
	h2, _ := newHost(t, n, hostConfig("acd0", dir, p4))
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	if n.link(t, "acd0") != nil {
		t.Errorf("acd0, created by the first run, still exists after the second closed")
	}
}

func TestHostInterfaceChanged(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	h1, _ := newHost(t, n, hostConfig("acd0", dir, p4, p6))
	mustAdd(t, h1, p4, p6)
	h1.abandon()
	// Now configured on lo: what the first run added goes, with its link.
	h2, _ := newHost(t, n, hostConfig("lo", dir, p4, p6))
	if n.link(t, "acd0") != nil {
		t.Errorf("acd0, created by the first run for another interface name, still exists")
	}
	mustAdd(t, h2, p4, p6)
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6}, nil)
	if err := h2.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", nil, []netip.Prefix{p4, p6})
}

// writeJournal writes a state file as a run in n that crashed would have.
func writeJournal(t *testing.T, n *testNS, dir, boot string, records ...string) {
	t.Helper()
	lo := n.link(t, "lo")
	s := fmt.Sprintf("%s\nboot %s\nnetns %s\nlink lo %d\n%s", journalHeader, boot, n.h.UniqueId(),
		lo.Attrs().Index, strings.Join(records, ""))
	if err := os.WriteFile(filepath.Join(dir, journalName), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostCrashMidway(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	// p4: recorded, then a crash before it was added. p6: recorded and
	// added. p4b: added, and no longer configured. p4c: recorded but the
	// last write was cut short.
	n.ip(t, "addr", "add", p6.String(), "dev", "lo", "nodad")
	n.ip(t, "addr", "add", p4b.String(), "dev", "lo")
	n.ip(t, "addr", "add", p4c.String(), "dev", "lo")
	writeJournal(t, n, dir, bootID(),
		"add "+p4.String()+"\n", "add "+p6.String()+"\n", "add "+p4b.String()+"\n", "add 203.0.113.44/3")

	h, _ := newHost(t, n, hostConfig("lo", dir, p4, p6, p4c))
	n.wantAddrs(t, "lo", []netip.Prefix{p6, p4c}, []netip.Prefix{p4, p4b})
	mustAdd(t, h, p4, p6, p4c)
	n.wantAddrs(t, "lo", []netip.Prefix{p4, p6, p4c}, nil)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4c}, []netip.Prefix{p4, p6})
}

func TestHostIgnoresJournalOfAnotherBoot(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	n.ip(t, "link", "set", "lo", "up")
	n.ip(t, "addr", "add", p4.String(), "dev", "lo")
	writeJournal(t, n, dir, "00000000-0000-0000-0000-000000000000", "add "+p4.String()+"\n")
	h, _ := newHost(t, n, hostConfig("lo", dir, p4))
	mustAdd(t, h, p4)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	n.wantAddrs(t, "lo", []netip.Prefix{p4}, nil)
}

func TestHostStateDirLocked(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	newHost(t, n, hostConfig("lo", dir, p4))
	_, err := New(hostConfig("lo", dir, p4), Options{Namespace: &n.h})
	if err == nil || !strings.Contains(err.Error(), "in use by another anycastd") {
		t.Errorf("second New on the same state dir: %v, want in use", err)
	}
}

func TestHostCorruptJournal(t *testing.T) {
	n := newTestNS(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, journalName), []byte("something else\n"), 0o644)
	_, err := New(hostConfig("lo", dir, p4), Options{Namespace: &n.h})
	if err == nil || !strings.Contains(err.Error(), "remove it to start afresh") {
		t.Errorf("New with a corrupt state file: %v", err)
	}
}

func TestPermissionError(t *testing.T) {
	h := &Host{name: "lo"}
	err := h.permission(fmt.Errorf("bringing up lo: %w", unix.EPERM))
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "needs CAP_NET_ADMIN") || strings.Contains(err.Error(), "\n") {
		t.Errorf("permission error = %q", err)
	}
}

func TestParseJournal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		owned   []netip.Prefix
		created string
		torn    []string
		err     string
	}{
		{name: "empty", in: ""},
		{name: "torn header", in: "anycastd addr"},
		{name: "adds and dels", in: journalHeader + "\nlink lo 1\nadd 203.0.113.42/32\nadd 203.0.113.43/32\ndel 203.0.113.42/32\nadd 2001:db8:42::1/128\n",
			owned: []netip.Prefix{p4b, p6}},
		{name: "torn last record", in: journalHeader + "\nlink lo 1\nadd 203.0.113.42/32\nadd 203.0",
			owned: []netip.Prefix{p4}},
		{name: "new link index voids adds", in: journalHeader + "\nlink acd0 4\nadd 203.0.113.42/32\nlink acd0 5\nadd 203.0.113.43/32\n",
			owned: []netip.Prefix{p4b}},
		{name: "created link", in: journalHeader + "\ncreate-link acd0\nlink acd0 4\n", created: "acd0"},
		{name: "deleted link", in: journalHeader + "\ncreate-link acd0\nlink acd0 4\ndeleted-link acd0\n"},
		{name: "torn record then the next", in: journalHeader + "\nlink lo 1\nadd 203.0.113.42/32\nadd 203.0.113.4add 203.0.113.43/32\n",
			owned: []netip.Prefix{p4, p4b}, torn: []string{`line 4: "add 203.0.113.4"`}},
		{name: "torn records", in: journalHeader + "\nlink lo 1\nadd 203.0.113.42/32\ndel 203.0.113.42/3add 2001:dadd 203.0.113.43/32\nadd 2001:db8:42::1/128\n",
			owned: []netip.Prefix{p4, p4b, p6}, torn: []string{`line 4: "del 203.0.113.42/3add 2001:d"`}},
		{name: "torn link record", in: journalHeader + "\nlink acd0 4\nadd 203.0.113.42/32\nlink acd0link acd0 5\nadd 203.0.113.43/32\n",
			owned: []netip.Prefix{p4b}, torn: []string{`line 4: "link acd0"`}},
		{name: "bad header", in: "hello\n", err: "line 1: not an anycastd address journal"},
		{name: "bad record", in: journalHeader + "\nadd nonsense\n", err: `line 2: bad record "add nonsense"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseJournal([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sortedPrefixes(st.Owned); fmt.Sprint(got) != fmt.Sprint(tt.owned) && len(got)+len(tt.owned) > 0 {
				t.Errorf("owned = %v, want %v", got, tt.owned)
			}
			if st.CreatedLink != tt.created {
				t.Errorf("created link = %q, want %q", st.CreatedLink, tt.created)
			}
			if fmt.Sprint(st.Torn) != fmt.Sprint(tt.torn) {
				t.Errorf("torn = %q, want %q", st.Torn, tt.torn)
			}
		})
	}
}
