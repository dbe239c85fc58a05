//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/anycastd/anycastd/config"
)

// Host puts VIP addresses on a local interface through netlink, so that the
// service can bind them and the host accepts their traffic. It implements
// announcer.Addresses. With [interface] method = "local-route" each VIP is a
// route of type local in table local on the interface instead (route.go);
// everything below holds for those routes as for addresses.
//
// Host addresses only: a prefix that is not a single address (allow_aggregate)
// is not put on the interface, and Add and Remove ignore it.
//
// Ownership: anycastd removes only what it added. Before adding an address
// (or creating the link) it records that in a journal in the state dir (see
// state.go); an address that was on the interface before anycastd wanted
// it is adopted: used, never removed. A restart reads the journal: recorded
// addresses still present stay anycastd's, those of VIPs no longer configured
// are removed.
type Host struct {
	log   *slog.Logger
	name  string
	ns    netns.NsHandle
	ownNS bool // ns was opened by New
	// nlNS is the namespace handed to netlink: netns.None() for our own,
	// so that netlink never calls setns(2) (which needs CAP_SYS_ADMIN).
	nlNS netns.NsHandle
	// routes: method local-route, VIPs are local routes in table local
	// (route.go), not addresses.
	routes bool
	nl     *netlink.Handle
	vips   map[netip.Prefix]string // VIP host addresses (configured at start or added since) → VIP name
	// newLink describes the link to create: a dummy link (tests may use
	// another kind where the kernel has no dummy driver).
	newLink func(name string) netlink.Link
	boot    string
	nsID    string

	mu      sync.Mutex
	closed  bool
	index   int                   // of the link
	old     map[int]bool          // indexes of links anycastd used before (deleted since)
	created bool                  // anycastd created the link
	owned   map[netip.Prefix]bool // added by anycastd, recorded in the journal
	// other: entries an earlier run added with the other method, still
	// there (for VIPs still configured: replaced when Add puts the VIP's
	// entry of this method in, removed by Remove or Close).
	other   map[netip.Prefix]bool
	adopted map[netip.Prefix]bool // were there before: never removed
	present map[netip.Prefix]bool // VIP addresses on the link (local routes in table local), as last seen
	// linkGone: local routes anycastd had on a link that went away, which
	// took its IPv4 routes without a route event: for the watch to report.
	linkGone map[netip.Prefix]bool
	j        *journal
}

// Options are the optional parts of New.
type Options struct {
	// Namespace is the network namespace to work in; nil: the caller's.
	// The caller keeps it open for as long as the Host lives.
	Namespace *netns.NsHandle
	Logger    *slog.Logger // nil: no logs

	newLink func(name string) netlink.Link // nil: dummy
}

// New prepares cfg.Interface for the VIP addresses of cfg.VIPs: it
// creates the link if needed (a dummy link; lo always exists), brings it up,
// takes over what the state dir records from an earlier run, and warns about
// VIP addresses found on other interfaces. It adds no VIP address itself.
//
// Without CAP_NET_ADMIN it fails with an error saying so that wraps EPERM.
func New(cfg *config.Config, opts Options) (*Host, error) {
	h := &Host{
		log:      opts.Logger,
		name:     cfg.Interface.Name,
		vips:     map[netip.Prefix]string{},
		boot:     bootID(),
		routes:   cfg.Interface.Method == config.InterfaceMethodLocalRoute,
		owned:    map[netip.Prefix]bool{},
		other:    map[netip.Prefix]bool{},
		adopted:  map[netip.Prefix]bool{},
		present:  map[netip.Prefix]bool{},
		linkGone: map[netip.Prefix]bool{},
		old:      map[int]bool{},
		newLink:  opts.newLink,
	}
	if h.newLink == nil {
		h.newLink = newDummy
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.name == "" {
		h.name = config.DefaultInterfaceName
	}
	h.log = h.log.With("interface", h.name)
	if h.routes {
		h.log = h.log.With("method", string(config.InterfaceMethodLocalRoute))
	}
	for _, v := range cfg.VIPs {
		for _, p := range v.Prefixes {
			if p.IsSingleIP() {
				h.vips[p] = v.Name
			}
		}
	}
	if !hasNetAdmin() {
		return nil, h.permission(unix.EPERM)
	}
	var err error
	if opts.Namespace != nil {
		h.ns = *opts.Namespace
	} else if h.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	} else {
		h.ownNS = true
	}
	h.nsID = h.ns.UniqueId()
	h.nlNS = h.ns
	if h.ownNS {
		h.nlNS = netns.None()
	}
	if h.nl, err = netlink.NewHandleAt(h.nlNS); err != nil {
		h.release()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	stateDir := cfg.Interface.StateDir
	if stateDir == "" {
		stateDir = config.DefaultStateDir
	}
	j, st, err := openJournal(stateDir, h.log)
	if err != nil {
		h.release()
		return nil, err
	}
	h.j = j
	if err := h.start(st); err != nil {
		h.release()
		return nil, err
	}
	if h.routes {
		h.warnIPv6Bind()
	}
	return h, nil
}

// permission turns EPERM into an error that says what is missing.
func (h *Host) permission(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("managing VIP addresses on %s needs CAP_NET_ADMIN (run anycastd as root or grant it the capability, or set [interface] manage = false and add the addresses yourself): %w", h.name, err)
	}
	return err
}

// hasNetAdmin reports whether the process has CAP_NET_ADMIN (true if that
// cannot be told: the first netlink change will say).
func hasNetAdmin() bool {
	var data [2]unix.CapUserData
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

// start brings up the link and takes over the state an earlier run left.
func (h *Host) start(st hostState) error {
	if st.Boot != h.boot || st.Netns != h.nsID {
		if st.Boot != "" || st.Link != "" || len(st.Owned) > 0 {
			h.log.Info("state file is from an earlier boot or another network namespace: ignoring it")
		}
		st = hostState{Owned: map[netip.Prefix]bool{}, Routes: map[netip.Prefix]bool{}}
	}
	if st.Link != "" && st.Link != h.name {
		h.cleanupPrevious(st)
		st.Link, st.LinkIndex = "", 0
		clear(st.Owned)
		clear(st.Routes)
	}
	if st.CreatedLink != "" && st.CreatedLink != h.name {
		if l, err := h.nl.LinkByName(st.CreatedLink); err == nil && l.Type() == h.newLink(st.CreatedLink).Type() {
			h.deleteLinkIfEmpty(l)
		}
		st.CreatedLink = ""
	}

	link, err := h.nl.LinkByName(h.name)
	switch {
	case err == nil:
		h.index = link.Attrs().Index
		h.created = st.CreatedLink == h.name && (st.Link != h.name || st.LinkIndex == h.index)
		if link.Attrs().Flags&net.FlagUp == 0 && !h.created {
			h.log.Info("interface is down: bringing it up")
		}
	case isNotFound(err) && h.name != "lo":
		if link, err = h.createLink(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("interface %s: %w", h.name, err)
	}
	// Also the first change anycastd makes: without CAP_NET_ADMIN it fails.
	if err := h.nl.LinkSetUp(link); err != nil {
		return h.permission(fmt.Errorf("bringing up %s: %w", h.name, err))
	}
	if st.Link != h.name || st.LinkIndex != h.index {
		clear(st.Owned) // they were on a link that is gone
		clear(st.Routes)
	}
	return h.takeOver(st)
}

var errClosed = errors.New("host addresses: closed")

// Add puts prefix's address, of VIP vip, on the interface (/32, or /128 with
// nodad). An address already there is adopted and never removed; one
// anycastd adds is recorded first, and stays anycastd's across restarts.
// From then on the address watch reports it (a VIP added by a reload
// included), and the logs name vip.
func (h *Host) Add(prefix netip.Prefix, vip string) error {
	if !prefix.IsSingleIP() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.vips[prefix] = vip
	}
	for attempt := 0; ; attempt++ {
		if h.closed {
			return errClosed
		}
		err := h.addLocked(prefix)
		if err == nil || attempt > 0 || !errors.Is(err, unix.ENODEV) {
			return err
		}
		if err := h.relinkLocked(); err != nil {
			return err
		}
	}
}

func (h *Host) addLocked(p netip.Prefix) error {
	if h.other[p] && h.routes {
		// The address an earlier run added goes first: its local route
		// would stand in the way of anycastd's (IPv4: EEXIST).
		if err := h.removeOtherLocked(p); err != nil {
			return err
		}
		h.present[p] = false // install decides afresh
	}
	if err := h.addEntryLocked(p); err != nil {
		return err
	}
	if h.other[p] {
		// The address is in: the local route an earlier run installed goes.
		if err := h.removeOtherLocked(p); err != nil {
			h.log.Error("cannot remove the VIP's entry of the other [interface] method; trying again at exit", "prefix", p, "err", err)
		}
	}
	return nil
}

// addEntryLocked puts p on the link the configured way (install).
func (h *Host) addEntryLocked(p netip.Prefix) error {
	if !h.owned[p] && h.present[p] {
		if !h.adopted[p] {
			h.adopted[p] = true
			h.log.Info("VIP "+noun(h.routes)+" was already "+place(h.routes)+": using it, it will not be removed", "prefix", p)
		}
		return nil
	}
	recorded := false
	if !h.owned[p] {
		if err := h.j.record("%s %s", opAdd(h.routes), p); err != nil {
			return err
		}
		h.owned[p], recorded = true, true
		delete(h.adopted, p)
	}
	err := h.install(p)
	switch {
	case err == nil:
		if recorded {
			h.log.Info("added VIP "+noun(h.routes), "vip", h.vips[p], "prefix", p)
		}
	case errors.Is(err, unix.EEXIST):
		if recorded { // someone was quicker: theirs
			h.forgetLocked(p)
			h.adopted[p] = true
			h.log.Info("VIP "+noun(h.routes)+" was already "+place(h.routes)+": using it, it will not be removed", "prefix", p)
		}
	default:
		if recorded {
			h.forgetLocked(p)
		}
		return h.permission(fmt.Errorf("adding %s %s to %s: %w", noun(h.routes), p, h.name, err))
	}
	h.present[p] = true
	h.maybeCompactLocked()
	return nil
}

// forgetLocked drops p from what anycastd owns.
func (h *Host) forgetLocked(p netip.Prefix) {
	if err := h.j.record("%s %s", opDel(h.routes), p); err != nil {
		h.log.Error("state file", "err", err)
	}
	delete(h.owned, p)
}

// Remove takes away prefix's address (local route) if anycastd added it;
// an adopted one, or one anycastd does not know, is left alone.
func (h *Host) Remove(prefix netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	if h.other[prefix] {
		if err := h.removeOtherLocked(prefix); err != nil {
			return err
		}
	}
	if !h.owned[prefix] {
		if h.adopted[prefix] {
			h.log.Debug("VIP "+noun(h.routes)+" was not added by anycastd: leaving it", "prefix", prefix)
		}
		return nil
	}
	if err := h.uninstall(prefix, h.routes, h.index); err != nil && !isGone(err) {
		return fmt.Errorf("removing %s %s from %s: %w", noun(h.routes), prefix, h.name, err)
	}
	h.forgetLocked(prefix)
	h.present[prefix] = false
	h.log.Info("removed VIP "+noun(h.routes), "vip", h.vips[prefix], "prefix", prefix)
	h.maybeCompactLocked()
	return nil
}

// Close removes every address (local route) anycastd added, and the link if
// anycastd created it and nobody else put addresses on it. Adopted ones
// stay.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	defer h.release()
	var errs []error
	// Newest first, roughly: the kernel finds a recently added IPv6
	// address sooner (10,000 on lo: 4 s, against 10 s oldest first).
	owned := sortedPrefixes(h.owned)
	slices.Reverse(owned)
	for _, p := range owned {
		if err := h.uninstall(p, h.routes, h.index); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("removing %s %s from %s: %w", noun(h.routes), p, h.name, err))
			continue
		}
		h.forgetLocked(p)
		h.log.Info("removed VIP "+noun(h.routes), "vip", h.vips[p], "prefix", p)
	}
	for _, p := range sortedPrefixes(h.other) {
		if err := h.removeOtherLocked(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range sortedPrefixes(h.adopted) {
		h.log.Info("leaving VIP "+noun(h.routes)+" anycastd did not add", "prefix", p)
	}
	linkKept := false
	if h.created {
		if l, err := h.nl.LinkByIndex(h.index); err == nil && l.Attrs().Name == h.name {
			linkKept = !h.deleteLinkIfEmpty(l)
		}
	}
	if len(errs) == 0 && !linkKept {
		if err := h.j.remove(); err != nil {
			errs = append(errs, fmt.Errorf("removing state file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// release closes the netlink handle, the journal and the namespace.
func (h *Host) release() {
	if h.j != nil {
		h.j.close()
	}
	if h.nl != nil {
		h.nl.Close()
	}
	if h.ownNS {
		h.ns.Close()
	}
}

// stateLocked is what the journal must say now.
func (h *Host) stateLocked() hostState {
	st := hostState{Boot: h.boot, Netns: h.nsID, Link: h.name, LinkIndex: h.index, Owned: h.owned, Routes: h.other}
	if h.routes {
		st.Owned, st.Routes = h.other, h.owned
	}
	if h.created {
		st.CreatedLink = h.name
	}
	return st
}

// maybeCompactLocked rewrites the journal once it has grown well beyond
// what it has to say.
func (h *Host) maybeCompactLocked() {
	if h.j.lines < 1024 || h.j.lines < 4*len(h.owned) {
		return
	}
	if err := h.j.compact(h.stateLocked()); err != nil {
		h.log.Error("compacting the state file", "err", err)
	}
}
