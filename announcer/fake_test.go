package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/routes"
)

// callLog is one ordered record of the calls a fakeSpeaker and a
// fakeAddresses received, so a test can assert their relative order
// ("address before announce"). Failures can be injected per call.
type callLog struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]int // call → how many more times it fails
	// changed is closed and replaced on every call, for waiting.
	changed chan struct{}
}

func newCallLog() *callLog {
	return &callLog{fail: make(map[string]int), changed: make(chan struct{})}
}

var errInjected = errors.New("injected failure")

// record logs call and returns errInjected if a failure was injected for it.
func (c *callLog) record(call string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.changed)
	c.changed = make(chan struct{})
	if c.fail[call] > 0 {
		c.fail[call]--
		c.calls = append(c.calls, call+" (failed)")
		return fmt.Errorf("%s: %w", call, errInjected)
	}
	c.calls = append(c.calls, call)
	return nil
}

// recordBatch logs one batch of calls, all or nothing: if a failure was
// injected for any of them, only those are logged (failed) and it returns
// errInjected.
func (c *callLog) recordBatch(calls []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.changed)
	c.changed = make(chan struct{})
	var failed []string
	for _, call := range calls {
		if c.fail[call] > 0 {
			c.fail[call]--
			failed = append(failed, call)
		}
	}
	if len(failed) > 0 {
		for _, call := range failed {
			c.calls = append(c.calls, call+" (failed)")
		}
		return fmt.Errorf("%s: %w", strings.Join(failed, ", "), errInjected)
	}
	c.calls = append(c.calls, calls...)
	return nil
}

// failNext makes the next n calls exactly equal to call fail.
func (c *callLog) failNext(call string, n int) {
	c.mu.Lock()
	c.fail[call] = n
	c.mu.Unlock()
}

// take returns the calls since the last take.
func (c *callLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// peek returns the calls since the last take, keeping them.
func (c *callLog) peek() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// fakeSpeaker records the loop's calls instead of speaking BGP. Its read
// side reports no sessions.
type fakeSpeaker struct {
	log *callLog

	mu        sync.Mutex
	announced map[netip.Prefix]routes.Route
	cfg       *config.Config // the configuration last started or configured
}

var _ Speaker = (*fakeSpeaker)(nil)

func newFakeSpeaker(log *callLog) *fakeSpeaker {
	return &fakeSpeaker{log: log, announced: make(map[netip.Prefix]routes.Route)}
}

func (f *fakeSpeaker) Start(_ context.Context, cfg *config.Config) error {
	if err := f.log.record("start"); err != nil {
		return err
	}
	f.mu.Lock()
	f.cfg = cfg
	f.mu.Unlock()
	return nil
}

func (f *fakeSpeaker) Announce(_ context.Context, rs ...routes.Route) error {
	calls := make([]string, len(rs))
	for i, r := range rs {
		calls[i] = "announce " + r.Prefix.String()
	}
	if err := f.log.recordBatch(calls); err != nil {
		return err
	}
	f.mu.Lock()
	for _, r := range rs {
		f.announced[r.Prefix] = r
	}
	f.mu.Unlock()
	return nil
}

func (f *fakeSpeaker) Withdraw(_ context.Context, ps ...netip.Prefix) error {
	calls := make([]string, len(ps))
	for i, p := range ps {
		calls[i] = "withdraw " + p.String()
	}
	if err := f.log.recordBatch(calls); err != nil {
		return err
	}
	f.mu.Lock()
	for _, p := range ps {
		delete(f.announced, p)
	}
	f.mu.Unlock()
	return nil
}

func (f *fakeSpeaker) Configure(_ context.Context, cfg *config.Config) error {
	if err := f.log.record("configure"); err != nil {
		return err
	}
	f.mu.Lock()
	f.cfg = cfg
	f.mu.Unlock()
	return nil
}

func (f *fakeSpeaker) Stop(context.Context) error { return f.log.record("stop") }

func (f *fakeSpeaker) SentUpdates(context.Context) (map[netip.Addr]uint64, error) {
	return map[netip.Addr]uint64{}, nil
}

func (f *fakeSpeaker) Peers(context.Context) ([]PeerStatus, error) { return nil, nil }

func (f *fakeSpeaker) PeerDetails(context.Context) ([]PeerDetail, error) { return nil, nil }

func (f *fakeSpeaker) AdvertisedRoutes(context.Context, netip.Addr) ([]AdvertisedRoute, error) {
	return nil, nil
}

// routes returns the announced prefixes, sorted.
func (f *fakeSpeaker) prefixes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ps []string
	for p := range f.announced {
		ps = append(ps, p.String())
	}
	slices.Sort(ps)
	return strings.Join(ps, " ")
}

// fakeAddresses records address calls in the same log as the speaker.
type fakeAddresses struct{ log *callLog }

var _ Addresses = fakeAddresses{}

func (f fakeAddresses) Add(p netip.Prefix, _ string) error {
	return f.log.record("addr add " + p.String())
}
func (f fakeAddresses) Remove(p netip.Prefix) error { return f.log.record("addr remove " + p.String()) }
func (f fakeAddresses) Close() error                { return f.log.record("addr close") }

// routes returns a copy of what the fake holds announced.
func (f *fakeSpeaker) routes() map[netip.Prefix]routes.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[netip.Prefix]routes.Route, len(f.announced))
	for p, r := range f.announced {
		out[p] = r
	}
	return out
}
