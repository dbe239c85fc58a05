//go:build linux

package hostaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// Watch follows the interface's addresses over a netlink subscription in
// the Host's namespace. It calls report(prefix, false) when a VIP address is
// deleted from the interface, and report(prefix, true) when one reported
// deleted is back. It is meant for Announcer.AddressChanged; report is called
// from one goroutine, in order, and may block.
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
	w.resync()
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
	lost   map[netip.Prefix]bool // reported deleted, not yet back
	ch     chan netlink.AddrUpdate
	done   chan struct{} // closing it ends the subscription
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
	ch, done := make(chan netlink.AddrUpdate, 256), make(chan struct{})
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		Namespace:         &h.ns,
		ErrorCallback:     func(err error) { h.log.Debug("address subscription", "err", err) },
		ReceiveBufferSize: 1 << 20,
	})
	if err != nil {
		close(done)
		return fmt.Errorf("subscribing to address changes: %w", err)
	}
	w.ch, w.done = ch, done
	return nil
}

// unsubscribe ends the subscription; the channel is drained so that the
// subscription's goroutine can return.
func (w *watcher) unsubscribe() {
	if w.done == nil {
		return
	}
	close(w.done)
	for range w.ch {
	}
	w.ch, w.done = nil, nil
}

func (w *watcher) run(stop <-chan struct{}) {
	defer w.unsubscribe()
	for {
		select {
		case <-stop:
			return
		case u, ok := <-w.ch:
			if !ok {
				// The subscription ended (its socket buffer overflowed, say):
				// events may be lost, so subscribe again and list.
				w.h.log.Warn("address subscription ended: subscribing again")
				w.unsubscribe()
				if !w.resubscribe(stop) {
					return
				}
				w.resync()
				continue
			}
			batch := []netlink.AddrUpdate{u}
		drain:
			for len(batch) < 4096 {
				select {
				case u, ok := <-w.ch:
					if !ok {
						break drain // seen at the next turn
					}
					batch = append(batch, u)
				default:
					break drain
				}
			}
			w.apply(batch)
		}
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

// apply takes in a batch of address events.
func (w *watcher) apply(batch []netlink.AddrUpdate) {
	h := w.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	touched := map[netip.Prefix]bool{} // prefix → seen deleted
	verify := false
	for _, u := range batch {
		p, ok := prefixOf(&u.LinkAddress)
		if _, vip := h.vips[p]; !ok || !vip {
			continue
		}
		if u.LinkIndex != h.index {
			// A deletion from the link anycastd used before it was
			// replaced may come late: the kernel says what is on the link.
			if h.old[u.LinkIndex] && !u.NewAddr {
				touched[p], verify = true, true
			}
			continue
		}
		h.present[p] = u.NewAddr
		touched[p] = touched[p] || !u.NewAddr
		if !u.NewAddr && (h.owned[p] || h.adopted[p]) {
			verify = true
		}
	}
	if verify {
		w.verifyLocked(touched)
	}
	changes := w.changesLocked(touched)
	h.mu.Unlock()
	w.send(changes)
}

// resync lists the interface's addresses, for changes events may not have
// told (before the subscription, or lost).
func (w *watcher) resync() {
	h := w.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	touched := map[netip.Prefix]bool{}
	for p := range h.vips {
		touched[p] = h.present[p] // was there: a deletion if it is gone now
	}
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
