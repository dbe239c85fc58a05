//go:build linux

package hostaddr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The journal is anycastd's write-ahead record of what it put on the host.
// A record is appended (one write of one line) BEFORE the change it announces
// is made, so that whatever point a crash interrupts anycastd at, the next
// start can tell its own addresses from everybody else's:
//
//	anycastd address journal v1   header
//	boot <boot id>                the kernel boot the records belong to
//	netns <id>                    the network namespace they belong to
//	create-link <name>            anycastd is creating the dummy link <name>
//	link <name> <ifindex>         the addresses below go on this link
//	add <prefix>                  anycastd is adding <prefix>: while it is
//	                              on the link, it is anycastd's
//	del <prefix>                  <prefix> is no longer anycastd's
//	add-route <prefix>            anycastd is adding a route of type local
//	                              for <prefix> in table local on the link
//	                              ([interface] method = "local-route"):
//	                              while it is there, it is anycastd's
//	del-route <prefix>            that route is no longer anycastd's
//	deleted-link <name>           anycastd is deleting the link it created
//
// add and del are addresses: a journal of a version before local routes has
// only those. A start removes the entries of the method not configured now
// (the method changed between runs), and only those the journal records.
//
// An address (or route) recorded with add but absent from the link was never
// added (or was removed since) and is simply forgotten. Addresses vanish with a
// reboot or with their namespace, so records of another boot or namespace are
// void. A "link" record with a new index voids the adds before it: they were
// on a link that is gone. The journal is compacted (rewritten atomically with
// only what is still true) at start and when it has grown.
//
// A record is all or nothing: a write that fails or is cut short (ENOSPC on a
// full file system) is truncated away, and the change it announced is not
// made. Should that truncation fail too, the fragment stays and the next
// record is appended right after it; the reader skips such a torn fragment
// (with a warning), since the change it announced was never made.

const (
	journalHeader = "anycastd address journal v1"
	journalName   = "addresses.journal"
)

// hostState is what a journal says.
type hostState struct {
	Boot        string
	Netns       string
	Link        string // the link the owned addresses are on; "" if none yet
	LinkIndex   int
	CreatedLink string                // name of the dummy link anycastd created (or was creating)
	Owned       map[netip.Prefix]bool // addresses
	Routes      map[netip.Prefix]bool // local routes in table local
	// Torn lists the fragments of records cut short that the reader
	// skipped, each with its line number, for a warning.
	Torn []string
}

// journal is the open state file. Its directory is locked (flock) for as
// long as it is open, so two anycastd instances never share one.
type journal struct {
	path  string
	dir   *os.File
	f     *os.File // append-only
	lines int      // records written since the last compaction
}

// openJournal locks dir (creating it if needed) and reads its journal. Torn
// records it skips are logged to log.
func openJournal(dir string, log *slog.Logger) (*journal, hostState, error) {
	st := hostState{Owned: map[netip.Prefix]bool{}, Routes: map[netip.Prefix]bool{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, st, fmt.Errorf("state dir: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, st, fmt.Errorf("state dir: %w", err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, st, fmt.Errorf("state dir %s is in use by another anycastd", dir)
		}
		return nil, st, fmt.Errorf("locking state dir %s: %w", dir, err)
	}
	j := &journal{path: filepath.Join(dir, journalName), dir: d}
	data, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		j.close()
		return nil, st, fmt.Errorf("reading state file: %w", err)
	}
	if err == nil {
		if st, err = parseJournal(data); err != nil {
			j.close()
			return nil, st, fmt.Errorf("state file %s: %w (remove it to start afresh; the addresses it records will then be left alone)", j.path, err)
		}
		for _, frag := range st.Torn {
			log.Warn("state file: skipped a record a failed write cut short (the change it announced was not made)", "file", j.path, "fragment", frag)
		}
	}
	// Rewritten as read (without a torn last record), and opened to append.
	if err := j.compact(st); err != nil {
		j.close()
		return nil, st, err
	}
	return j, st, nil
}

// parseJournal replays a journal. A last line without its newline is a write
// a crash cut short, and is ignored. A line that is not a record but ends in
// one is a torn record (a write cut short, which could not be truncated away)
// followed by the next record: the fragment is skipped and listed in Torn,
// the record is replayed.
func parseJournal(data []byte) (hostState, error) {
	st := hostState{Owned: map[netip.Prefix]bool{}, Routes: map[netip.Prefix]bool{}}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			if line != journalHeader {
				return st, fmt.Errorf("line 1: not an anycastd address journal (want %q)", journalHeader)
			}
			continue
		}
		if !validRecord(line) {
			i := tornAt(line)
			if i < 0 {
				return st, fmt.Errorf("line %d: bad record %q", n, line)
			}
			st.Torn = append(st.Torn, fmt.Sprintf("line %d: %q", n, line[:i]))
			line = line[i:]
		}
		op, arg, _ := strings.Cut(line, " ")
		bad := func() (hostState, error) { return st, fmt.Errorf("line %d: bad record %q", n, line) }
		switch op {
		case "boot":
			st.Boot = arg
		case "netns":
			st.Netns = arg
		case "create-link":
			st.CreatedLink = arg
		case "deleted-link":
			if st.CreatedLink == arg {
				st.CreatedLink = ""
			}
		case "link":
			name, idx, ok := strings.Cut(arg, " ")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil || name == "" {
				return bad()
			}
			if name != st.Link || i != st.LinkIndex {
				clear(st.Owned)
				clear(st.Routes)
			}
			st.Link, st.LinkIndex = name, i
		case "add", "del", "add-route", "del-route":
			p, err := netip.ParsePrefix(arg)
			if err != nil {
				return bad()
			}
			m := st.Owned
			if strings.HasSuffix(op, "-route") {
				m = st.Routes
			}
			if strings.HasPrefix(op, "add") {
				m[p] = true
			} else {
				delete(m, p)
			}
		default:
			return bad()
		}
	}
	if n == 0 && len(data) == 0 {
		return st, nil // empty: created, then a crash before the header
	}
	return st, sc.Err()
}

// validRecord reports whether line is one whole record (not the header).
func validRecord(line string) bool {
	op, arg, _ := strings.Cut(line, " ")
	switch op {
	case "boot", "netns", "create-link", "deleted-link":
		return true
	case "link":
		name, idx, ok := strings.Cut(arg, " ")
		_, err := strconv.Atoi(idx)
		return ok && err == nil && name != ""
	case "add", "del", "add-route", "del-route":
		_, err := netip.ParsePrefix(arg)
		return err == nil
	}
	return false
}

// tornAt returns where the whole record that ends line begins, after one or
// more torn fragments; -1 if line does not end in a record.
func tornAt(line string) int {
	for i := 1; i < len(line); i++ {
		if validRecord(line[i:]) {
			return i
		}
	}
	return -1
}

// record appends one record. It returns only once the line is written, so
// the change it announces may follow. A record is all or nothing: if the
// write fails or is cut short, the file is truncated back to its size before
// it and the error returned, so the change must not be made.
func (j *journal) record(format string, args ...any) error {
	if j.f == nil {
		return errors.New("state file is not open")
	}
	line := []byte(fmt.Sprintf(format+"\n", args...))
	fi, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	n, err := j.f.Write(line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := j.f.Truncate(fi.Size()); terr != nil {
				return fmt.Errorf("writing state file: %w (and removing the part written: %v)", err, terr)
			}
		}
		return fmt.Errorf("writing state file: %w", err)
	}
	j.lines++
	return nil
}

// compact replaces the journal with one stating only st.
func (j *journal) compact(st hostState) error {
	var b strings.Builder
	b.WriteString(journalHeader + "\n")
	fmt.Fprintf(&b, "boot %s\nnetns %s\n", st.Boot, st.Netns)
	if st.CreatedLink != "" {
		fmt.Fprintf(&b, "create-link %s\n", st.CreatedLink)
	}
	if st.Link != "" {
		fmt.Fprintf(&b, "link %s %d\n", st.Link, st.LinkIndex)
	}
	for _, p := range sortedPrefixes(st.Owned) {
		fmt.Fprintf(&b, "add %s\n", p)
	}
	for _, p := range sortedPrefixes(st.Routes) {
		fmt.Fprintf(&b, "add-route %s\n", p)
	}
	tmp := j.path + ".tmp"
	if err := writeFileSync(tmp, []byte(b.String())); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	_ = j.dir.Sync()
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening state file: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.lines = f, 0
	return nil
}

// writeFileSync writes data to path and syncs it to disk.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// remove deletes the journal: nothing on the host is anycastd's any more.
func (j *journal) remove() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// close closes the journal and releases the lock.
func (j *journal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if j.dir != nil {
		j.dir.Close() // releases the flock
		j.dir = nil
	}
}

// bootID identifies the running kernel boot; "" if unknown.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
