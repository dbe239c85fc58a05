//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch follows the interface's addresses over a netlink subscription in
// the Host's namespace. It calls report(prefix, false) when a VIP address is
// deleted from the interface, and report(prefix, true) when one reported
// deleted is back. With method local-route it follows the routes of type
// local in table local instead (and the links: one that goes away takes its
// IPv4 routes without a route event), and reports a VIP that no longer has
// one, and its return, the same way. It is meant for
// Announcer.AddressChanged; report is called from one goroutine, in order,
// and may block.
//
// A VIP address deleted by someone else stops being anycastd's (or adopted):
// if it is added again, Add decides afresh whose it is.
//
// stop ends the subscription and waits for the watcher to return; report
// must not be blocked for ever then. After Close, nothing more is reported.
func (h *Host) Watch(report func(prefix netip.Prefix, present bool)) (stop func(), err error) {
	w := &watcher{h: h, report: report, lost: map[netip.Prefix]bool{}}
	if err := w.subscribe(); err != nil {
		return nil, err
	}
	w.resync(nil)
	stopCh, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		w.run(stopCh)
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stopCh) })
		<-exited
	}, nil
}

type watcher struct {
	h      *Host
	report func(netip.Prefix, bool)
	lost   map[netip.Prefix]bool    // reported deleted, not yet back
	ch     chan netlink.AddrUpdate  // method address
	routes chan netlink.RouteUpdate // method local-route
	links  chan netlink.LinkUpdate  // method local-route
	done   chan struct{}            // closing it ends the subscriptions
}

// event is an address, or a local route in table local, that came or went.
type event struct {
	prefix  netip.Prefix
	link    int
	present bool
}

func addrEvent(u netlink.AddrUpdate) (event, bool) {
	p, ok := prefixOf(&u.LinkAddress)
	return event{p, u.LinkIndex, u.NewAddr}, ok
}

func routeEvent(u netlink.RouteUpdate) (event, bool) {
	if u.Route.Table != unix.RT_TABLE_LOCAL || u.Route.Type != unix.RTN_LOCAL {
		return event{}, false
	}
	p, ok := prefixOf(u.Dst)
	return event{p, u.LinkIndex, u.Type == unix.RTM_NEWROUTE}, ok
}

type change struct {
	prefix  netip.Prefix
	present bool
}

func (w *watcher) subscribe() error {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosed
	}
	w.done = make(chan struct{})
	if !h.routes {
		ch := make(chan netlink.AddrUpdate, 256)
		err := netlink.AddrSubscribeWithOptions(ch, w.done, netlink.AddrSubscribeOptions{
			Namespace:         &h.nlNS,
			ErrorCallback:     func(err error) { h.log.Debug("address subscription", "err", err) },
			ReceiveBufferSize: 1 << 20,
		})
		if err != nil {
			close(w.done)
			w.done = nil
			return fmt.Errorf("subscribing to address changes: %w", err)
		}
		w.ch = ch
		return nil
	}
	routes := make(chan netlink.RouteUpdate, 256)
	err := netlink.RouteSubscribeWithOptions(routes, w.done, netlink.RouteSubscribeOptions{
		Namespace:         &h.nlNS,
		ErrorCallback:     func(err error) { h.log.Debug("route subscription", "err", err) },
		ReceiveBufferSize: 1 << 20,
	})
	if err != nil {
		close(w.done)
		w.done = nil
		return fmt.Errorf("subscribing to route changes: %w", err)
	}
	w.routes = routes
	links := make(chan netlink.LinkUpdate, 64)
	err = netlink.LinkSubscribeWithOptions(links, w.done, netlink.LinkSubscribeOptions{
		Namespace:     &h.nlNS,
		ErrorCallback: func(err error) { h.log.Debug("link subscription", "err", err) },
	})
	if err != nil {
		w.unsubscribe()
		return fmt.Errorf("subscribing to link changes: %w", err)
	}
	w.links = links
	return nil
}

// unsubscribe ends the subscription; the channel is drained so that the
// subscription's goroutine can return.
func (w *watcher) unsubscribe() {
	if w.done == nil {
		return
	}
	close(w.done)
	if w.ch != nil {
		for range w.ch {
		}
	}
	if w.routes != nil {
		for range w.routes {
		}
	}
	if w.links != nil {
		for range w.links {
		}
	}
	w.ch, w.routes, w.links, w.done = nil, nil, nil, nil
}

func (w *watcher) run(stop <-chan struct{}) {
	defer w.unsubscribe()
	for {
		var in intake
		// A nil channel (the other method's) is never ready.
		select {
		case <-stop:
			return
		case u, ok := <-w.ch:
			in.addr(u, ok)
		case u, ok := <-w.routes:
			in.route(u, ok)
		case u, ok := <-w.links:
			in.link(u, ok)
		}
	drain:
		for n := 0; n < 4096 && !in.ended; n++ {
			select {
			case u, ok := <-w.ch:
				in.addr(u, ok)
			case u, ok := <-w.routes:
				in.route(u, ok)
			case u, ok := <-w.links:
				in.link(u, ok)
			default:
				break drain
			}
		}
		if len(in.events) > 0 {
			w.apply(in.events)
		}
		if in.ended {
			// A subscription ended (its socket buffer overflowed, say):
			// events may be lost, so subscribe again and list.
			w.h.log.Warn(noun(w.h.routes) + " subscription ended: subscribing again")
			w.unsubscribe()
			if !w.resubscribe(stop) {
				return
			}
			w.resync(nil)
			continue
		}
		if len(in.links) > 0 {
			w.resync(in.links)
		}
	}
}

// intake gathers a batch of updates.
type intake struct {
	events []event
	links  []netlink.LinkUpdate
	ended  bool // a subscription ended
}

func (in *intake) addr(u netlink.AddrUpdate, ok bool) {
	if !ok {
		in.ended = true
	} else if e, ok := addrEvent(u); ok {
		in.events = append(in.events, e)
	}
}

func (in *intake) route(u netlink.RouteUpdate, ok bool) {
	if !ok {
		in.ended = true
	} else if e, ok := routeEvent(u); ok {
		in.events = append(in.events, e)
	}
}

func (in *intake) link(u netlink.LinkUpdate, ok bool) {
	if !ok {
		in.ended = true
	} else {
		in.links = append(in.links, u)
	}
}

// resubscribe retries until it succeeds (true) or stop (false).
func (w *watcher) resubscribe(stop <-chan struct{}) bool {
	delay := 100 * time.Millisecond
	for {
		t := time.NewTimer(delay)
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
		err := w.subscribe()
		switch {
		case err == nil:
			return true
		case errors.Is(err, errClosed):
			<-stop
			return false
		}
		w.h.log.Error("address subscription", "err", err)
		delay = min(2*delay, 5*time.Second)
	}
}

// apply takes in a batch of address (local route) events.
func (w *watcher) apply(batch []event) {
	h := w.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	touched := map[netip.Prefix]bool{} // prefix → seen deleted
	verify := false
	for _, e := range batch {
		p := e.prefix
		if _, vip := h.vips[p]; !vip {
			continue
		}
		// A local route on any link makes the host accept the VIP's
		// traffic; an address counts on the link only.
		if e.link != h.index && !h.routes {
			// A deletion from the link anycastd used before it was
			// replaced may come late: the kernel says what is on the link.
			if h.old[e.link] && !e.present {
				touched[p], verify = true, true
			}
			continue
		}
		h.present[p] = e.present
		touched[p] = touched[p] || !e.present
		// Another local route for p may remain: the kernel says.
		if !e.present && (h.owned[p] || h.adopted[p] || h.routes) {
			verify = true
		}
	}
	if w.linkGoneLocked(touched) {
		verify = true
	}
	if verify {
		w.verifyLocked(touched)
	}
	changes := w.changesLocked(touched)
	h.mu.Unlock()
	w.send(changes)
}

// resync lists the interface's addresses (local routes), for changes events
// may not have told (before the subscription, or lost). Given link updates,
// only if one of them is about the Host's link (a link that goes away takes
// its IPv4 routes without a route event).
func (w *watcher) resync(links []netlink.LinkUpdate) {
	h := w.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if links != nil && !slices.ContainsFunc(links, func(u netlink.LinkUpdate) bool {
		a := u.Attrs()
		return a.Index == h.index || a.Name == h.name || h.old[a.Index]
	}) {
		h.mu.Unlock()
		return
	}
	touched := map[netip.Prefix]bool{}
	for p := range h.vips {
		touched[p] = h.present[p] // was there: a deletion if it is gone now
	}
	w.linkGoneLocked(touched)
	w.verifyLocked(touched)
	changes := w.changesLocked(touched)
	h.mu.Unlock()
	w.send(changes)
}

// verifyLocked asks the kernel which of the prefixes are on the link now
// (events may be stale: the address may be back already). An address
// anycastd added that is gone is no longer anycastd's; an adopted one that
// is gone is no longer adopted.
func (w *watcher) verifyLocked(prefixes map[netip.Prefix]bool) {
	h := w.h
	if h.routes {
		w.verifyRoutesLocked(prefixes)
		return
	}
	addrs, err := h.nl.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: h.index}}, netlink.FAMILY_ALL)
	if err != nil {
		h.log.Error("listing addresses", "err", err)
		return
	}
	on := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			on[p] = true
		}
	}
	for _, p := range sortedPrefixes(prefixes) {
		h.present[p] = on[p]
		if on[p] {
			continue
		}
		if h.owned[p] {
			h.forgetLocked(p)
			h.log.Warn("VIP address anycastd added was deleted from the interface by someone else", "vip", h.vips[p], "prefix", p)
		}
		if h.adopted[p] {
			delete(h.adopted, p)
			h.log.Warn("VIP address anycastd was using was deleted from the interface", "vip", h.vips[p], "prefix", p)
		}
	}
}

// linkGoneLocked adds to touched, as deleted, the local routes that went
// with a link that was replaced since; it reports whether there were any.
func (w *watcher) linkGoneLocked(touched map[netip.Prefix]bool) bool {
	h := w.h
	for p := range h.linkGone {
		touched[p] = true
	}
	n := len(h.linkGone)
	clear(h.linkGone)
	return n > 0
}

// changesLocked returns what to report about the touched prefixes: a
// deletion once, a return after a reported deletion.
func (w *watcher) changesLocked(touched map[netip.Prefix]bool) []change {
	var out []change
	for _, p := range sortedPrefixes(touched) {
		switch present := w.h.present[p]; {
		case present && w.lost[p]:
			delete(w.lost, p)
			out = append(out, change{p, true})
		case !present && !w.lost[p] && touched[p]:
			w.lost[p] = true
			out = append(out, change{p, false})
		}
	}
	return out
}

func (w *watcher) send(changes []change) {
	for _, c := range changes {
		w.report(c.prefix, c.present)
	}
}

// verifyRoutesLocked is verifyLocked for local routes: a VIP is present
// while table local holds a local route for it; anycastd's own is gone when
// no route of its protocol is on its link.
func (w *watcher) verifyRoutesLocked(prefixes map[netip.Prefix]bool) {
	h := w.h
	local, ours, err := h.localRoutes(h.index)
	if err != nil {
		h.log.Error("listing local routes", "err", err)
		return
	}
	for _, p := range sortedPrefixes(prefixes) {
		h.present[p] = local[p]
		if h.owned[p] && !ours[p] {
			h.forgetLocked(p)
			h.log.Warn("VIP local route anycastd added was deleted from table local by someone else", "vip", h.vips[p], "prefix", p)
		}
		if h.adopted[p] && !local[p] {
			delete(h.adopted, p)
			h.log.Warn("VIP local route anycastd was using was deleted from table local", "vip", h.vips[p], "prefix", p)
		}
	}
}
