package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Vty talks to one FRR daemon over its vtysh socket (DIR/bgpd.vty), the way
// vtysh does: a command ends with a NUL byte; the answer ends with three NUL
// bytes and a status byte (0: success). Unlike running vtysh (a new process
// that connects to every daemon: ~10 ms here), a query costs a fraction of
// a millisecond, so it can be polled tightly. Not safe for concurrent use.
type Vty struct {
	conn net.Conn
	buf  []byte
}

// DialVty connects to a daemon's vty socket.
func DialVty(path string) (*Vty, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &Vty{conn: c, buf: make([]byte, 0, 64<<10)}, nil
}

// Cmd runs one command and returns its output.
func (v *Vty) Cmd(cmd string) (string, error) {
	v.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := v.conn.Write(append([]byte(cmd), 0)); err != nil {
		return "", err
	}
	v.buf = v.buf[:0]
	chunk := make([]byte, 64<<10)
	for {
		n, err := v.conn.Read(chunk)
		v.buf = append(v.buf, chunk[:n]...)
		if out, status, ok := vtyAnswer(v.buf); ok {
			if status != 0 {
				return out, fmt.Errorf("vty %q: status %d: %s", cmd, status, bytes.TrimSpace([]byte(out)))
			}
			return out, nil
		}
		if err != nil {
			return "", fmt.Errorf("vty %q: %w", cmd, err)
		}
	}
}

// vtyAnswer reports whether b holds a complete answer, and splits it.
func vtyAnswer(b []byte) (out string, status byte, ok bool) {
	n := len(b)
	if n < 4 || b[n-4] != 0 || b[n-3] != 0 || b[n-2] != 0 {
		return "", 0, false
	}
	return string(b[:n-4]), b[n-1], true
}

// JSON runs a command ending in "json" and decodes its output into v.
func (v *Vty) JSON(cmd string, out any) error {
	s, err := v.Cmd(cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("vty %q: %w: %.200s", cmd, err, s)
	}
	return nil
}

// Close closes the connection.
func (v *Vty) Close() error { return v.conn.Close() }

// bgpSummary is the part of `show bgp <afi> unicast summary json` used here.
type bgpSummary struct {
	Peers map[string]struct {
		State  string `json:"state"`
		PfxRcd int    `json:"pfxRcd"`
	} `json:"peers"`
}

// summary returns the router's view of its sessions for afi ("ipv4" or
// "ipv6"): state and prefixes received per neighbor.
func (v *Vty) summary(afi string) (bgpSummary, error) {
	var s bgpSummary
	err := v.JSON("show bgp "+afi+" unicast summary json", &s)
	return s, err
}

// paths returns how many paths bgpd holds for prefix (0: none).
func (v *Vty) paths(afi, prefix string) (int, error) {
	var r struct {
		Paths []json.RawMessage `json:"paths"`
	}
	if err := v.JSON("show bgp "+afi+" unicast "+prefix+" json", &r); err != nil {
		return 0, err
	}
	return len(r.Paths), nil
}
