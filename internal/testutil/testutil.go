// Package testutil holds helpers shared by anycastd's tests.
package testutil

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os/exec"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a logger (or a child process's output
// copier) and the test can use at the same time.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// IPAddrs returns the addresses on dev in network namespace ns as
// `ip -n NS -j addr show dev DEV` reports them; nil if dev does not exist.
func IPAddrs(t testing.TB, ns, dev string) map[netip.Prefix]bool {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "addr", "show", "dev", dev).Output()
	if err != nil {
		return nil
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j addr show: %v\n%s", err, out)
	}
	got := map[netip.Prefix]bool{}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			got[netip.PrefixFrom(netip.MustParseAddr(a.Local), a.PrefixLen)] = true
		}
	}
	return got
}
