// Package routes decides what anycastd announces. Compute is a pure function
// from the configuration, the check states and the operator's overrides to the
// desired route table; Diff turns two tables into the changes to apply.
package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
)

// State is the state of a VIP.
type State string

const (
	StateUp       State = "up"       // announced normally
	StateDown     State = "down"     // withdrawn: its checks don't meet `require`
	StateDisabled State = "disabled" // withdrawn by an operator
)

// Route is one prefix to announce, with its attributes. The next hop is not
// part of it: it is chosen per peer by the speaker.
type Route struct {
	Prefix           netip.Prefix
	VIP              string
	Communities      []config.Community
	LargeCommunities []config.LargeCommunity
	MED              *uint32
	LocalPref        *uint32
	Prepend          int
}

// Equal reports whether r and o would produce the same BGP UPDATE.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && r.VIP == o.VIP &&
		slices.Equal(r.Communities, o.Communities) &&
		slices.Equal(r.LargeCommunities, o.LargeCommunities) &&
		eqPtr(r.MED, o.MED) && eqPtr(r.LocalPref, o.LocalPref) &&
		r.Prepend == o.Prepend
}

func eqPtr(a, b *uint32) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Table is a set of routes keyed by prefix.
type Table map[netip.Prefix]Route

// CheckStatus is what Compute needs to know of one check.
type CheckStatus struct {
	Status  health.Status
	LastErr string // the last failure's reason, for the VIP's reason text
}

// Overrides are the operator's instructions that take precedence over checks.
type Overrides struct {
	// Disabled VIPs are withdrawn whatever their checks say; the value is the
	// operator's reason.
	Disabled map[string]string
	// MissingAddresses are VIP prefixes whose address is gone from the
	// interface; a VIP with on_address_lost = "withdraw" is withdrawn while
	// any of its addresses is missing.
	MissingAddresses map[netip.Prefix]bool
}

// VIPStatus says what Compute decided for one VIP and why.
type VIPStatus struct {
	Name    string
	State   State
	Reason  string
	Passing int       // checks passing
	Require int       // checks required
	Since   time.Time // when State was entered; set by the announcer, not Compute
}

// Desired is the outcome of Compute.
type Desired struct {
	Routes Table
	VIPs   []VIPStatus // in config order
}

// Compute returns the routes that should be announced. A check missing from
// checks counts as not (yet) passing, so nothing is announced before its
// checks have risen.
func Compute(cfg *config.Config, checks map[string]CheckStatus, ov Overrides) Desired {
	d := Desired{Routes: make(Table), VIPs: make([]VIPStatus, 0, len(cfg.VIPs))}
	for _, v := range cfg.VIPs {
		st := VIPStatus{Name: v.Name, Require: v.Require}
		var failing []string
		for _, name := range v.Checks {
			cs, ok := checks[name]
			if ok && cs.Status.Passing() {
				st.Passing++
				continue
			}
			switch {
			case !ok || cs.Status == health.StatusUnknown:
				failing = append(failing, fmt.Sprintf("%s has not risen yet", name))
			case cs.LastErr != "":
				failing = append(failing, fmt.Sprintf("%s is down (%s)", name, cs.LastErr))
			default:
				failing = append(failing, fmt.Sprintf("%s is down", name))
			}
		}
		reason, disabled := ov.Disabled[v.Name]
		var lost []string
		if v.OnAddressLost == config.AddressLostWithdraw {
			for _, p := range v.Prefixes {
				if ov.MissingAddresses[p] {
					lost = append(lost, p.Addr().String())
				}
			}
		}
		switch {
		case disabled:
			st.State = StateDisabled
			st.Reason = "disabled by operator"
			if reason != "" {
				st.Reason += ": " + reason
			}
		case len(lost) > 0:
			st.State = StateDown
			st.Reason = fmt.Sprintf("address %s missing from the interface (on_address_lost = \"withdraw\")", strings.Join(lost, ", "))
		case st.Passing >= v.Require:
			st.State = StateUp
			st.Reason = fmt.Sprintf("%d of %d checks passing, %d required", st.Passing, len(v.Checks), v.Require)
		default:
			st.State = StateDown
			st.Reason = fmt.Sprintf("%d of %d checks passing, %d required: %s",
				st.Passing, len(v.Checks), v.Require, strings.Join(failing, "; "))
		}
		d.VIPs = append(d.VIPs, st)
		if st.State != StateUp {
			continue
		}
		for _, p := range v.Prefixes {
			d.Routes[p] = Route{
				Prefix:           p,
				VIP:              v.Name,
				Communities:      v.Communities,
				LargeCommunities: v.LargeCommunities,
				MED:              v.MED,
				LocalPref:        v.LocalPref,
				Prepend:          v.Prepend,
			}
		}
	}
	return d
}

// Diff returns what turns the announced table into the desired one: routes to
// add or replace (new, or with changed attributes) and prefixes to withdraw.
// Both are sorted by prefix, so the order of UPDATEs is deterministic.
func Diff(announced, desired Table) (update []Route, withdraw []netip.Prefix) {
	for p, r := range desired {
		if old, ok := announced[p]; !ok || !old.Equal(r) {
			update = append(update, r)
		}
	}
	for p := range announced {
		if _, ok := desired[p]; !ok {
			withdraw = append(withdraw, p)
		}
	}
	sort.Slice(update, func(i, j int) bool { return comparePrefix(update[i].Prefix, update[j].Prefix) < 0 })
	sort.Slice(withdraw, func(i, j int) bool { return comparePrefix(withdraw[i], withdraw[j]) < 0 })
	return update, withdraw
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
