// Package routes decides what anycastd announces. It is the pure route
// table: Compute is a pure function from the configuration, the check states
// and the operator's overrides to the desired route table; Diff turns two
// tables into the changes to apply. It touches neither the host nor the
// network (VIP addresses on the host are package hostaddr's).
package routes

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/anycastd/anycastd/config"
	"github.com/anycastd/anycastd/health"
)

// State is the state of a VIP.
type State string

const (
	StateUp       State = "up"       // announced normally
	StateDegraded State = "degraded" // announced with the [vip.degraded] attributes
	StateDown     State = "down"     // withdrawn: its checks don't meet `require`
	StateHeld     State = "held"     // flapping: held withdrawn (or degraded) for hold_down
	StateDraining State = "draining" // announced with GRACEFUL_SHUTDOWN until the drain time is over
	StateDisabled State = "disabled" // drained: withdrawn by an operator, a maintenance file or shutdown
	// StateGuarded: its checks fail, but the fleet guard keeps it announced
	// with the [vip.degraded] attributes (or GuardedPrepend): withdrawing
	// would leave fewer than min_sites sites announcing, or the coordinator
	// is lost with on_coordinator_lost = "hold".
	StateGuarded State = "guarded"
)

// GuardedPrepend is the prepend of a guarded VIP without [vip.degraded]
// attributes of its own: eBGP peers see 3 more copies of the local AS, so
// the network prefers every site that is still healthy.
const GuardedPrepend = 3

// maxPrepend is the most prepends a route carries (config's limit).
const maxPrepend = 10

// StateRemoved is not a state a VIP is in but where it goes when a reload
// removes it from the configuration: only transitions (events) name it.
const StateRemoved State = "removed"

// States lists every state a VIP can be in, for metrics.
var States = []State{StateUp, StateDegraded, StateDown, StateHeld, StateDraining, StateDisabled, StateGuarded}

// Announced reports whether a VIP in state s is announced.
func (s State) Announced() bool {
	return s == StateUp || s == StateDegraded || s == StateDraining || s == StateGuarded
}

// Route is one prefix to announce, with its attributes. The next hop is not
// part of it: it is chosen per peer by the speaker.
type Route struct {
	Prefix           netip.Prefix
	VIP              string
	Communities      []config.Community
	LargeCommunities []config.LargeCommunity
	MED              *uint32
	LocalPref        *uint32 // sent to iBGP peers only
	// Prepend is how many more copies of the local AS eBGP peers get in
	// the AS path (0..10). The speaker applies it per peer, never in the
	// path itself: iBGP peers get an empty AS path.
	Prepend int
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
	// Definite: the check is down for a failure it was certain of (a
	// process that exited, a listener gone: health.ErrDefinite). A VIP
	// failing for a definite reason is always withdrawn, whatever the
	// fleet guard says: a dead service must not attract traffic.
	Definite bool
}

// Drain says a VIP is being taken out of service.
type Drain struct {
	Reason string
	Since  time.Time // when the drain started; the drain time runs from here
}

// Overrides are what besides the checks decides a VIP's state. Everything
// time-dependent is judged against Now, so Compute stays a pure function.
type Overrides struct {
	Now time.Time
	// Drained VIPs (the node's drains already merged in by the caller) are
	// announced with GRACEFUL_SHUTDOWN for their drain time, then withdrawn.
	Drained map[string]Drain
	// MissingAddresses are VIP prefixes whose address is gone from the
	// interface; a VIP with on_address_lost = "withdraw" is withdrawn while
	// any of its addresses is missing.
	MissingAddresses map[netip.Prefix]bool
	// HeldUntil: flapping VIPs held (withdrawn, or degraded) until then.
	HeldUntil map[string]time.Time
	// HoldAll, when not empty, withdraws everything, saying why (the
	// startup delay).
	HoldAll string
	// Guarded: VIPs the fleet guard keeps announced although their checks
	// want them withdrawn, with the guard's reason. It applies only where
	// the withdrawal is health-driven (VIPStatus.Guardable); the VIP is
	// then StateGuarded, announced with its degraded attributes.
	Guarded map[string]string
}

// VIPStatus says what Compute decided for one VIP and why.
type VIPStatus struct {
	Name    string
	State   State
	Reason  string
	Passing int       // checks passing
	Require int       // checks required
	Since   time.Time // when State was entered; set by the announcer, not Compute
	// Guardable: the VIP is withdrawn (down, or held) only because its
	// checks fail, none of them definitely, once all have decided: a
	// withdrawal the fleet guard may refuse (Overrides.Guarded). Also set
	// on a VIP in StateGuarded.
	Guardable bool
}

// Desired is the outcome of Compute.
type Desired struct {
	Routes Table
	VIPs   []VIPStatus // in config order
	// Next is the earliest time after Now at which the outcome changes with
	// no other input changing (a drain time or a hold-down ending); zero if
	// none.
	Next time.Time
}

// Compute returns the routes that should be announced. A check missing from
// checks counts as not (yet) passing, so nothing is announced before its
// checks have risen.
//
// Precedence: a drain, then the startup hold, a missing address, a
// hold-down, and last the checks (up, degraded or down).
func Compute(cfg *config.Config, checks map[string]CheckStatus, ov Overrides) Desired {
	return ComputeVIPs(cfg, cfg.VIPs, checks, ov)
}

// ComputeVIPs is Compute for some of cfg's VIPs only: Routes holds their
// routes, VIPs their statuses in the order of vips, and Next the earliest
// change among them. The announcer recomputes only the VIPs an event
// touched (a check of theirs changed), so one check's transition costs the
// same at 10 VIPs and at 10,000. ov.Drained needs entries for vips only.
func ComputeVIPs(cfg *config.Config, vips []config.VIP, checks map[string]CheckStatus, ov Overrides) Desired {
	d := Desired{Routes: make(Table, len(vips)), VIPs: make([]VIPStatus, 0, len(vips))}
	later := func(t time.Time) {
		if t.After(ov.Now) && (d.Next.IsZero() || t.Before(d.Next)) {
			d.Next = t
		}
	}
	for _, v := range vips {
		st, route := vipState(cfg, v, checks, ov, later)
		d.VIPs = append(d.VIPs, st)
		if route == nil {
			continue
		}
		for _, p := range v.Prefixes {
			r := *route
			r.Prefix = p
			d.Routes[p] = r
		}
	}
	return d
}

// vipState decides one VIP: its status and, when announced, the route
// attributes (Prefix unset). later is told of future times that matter.
func vipState(cfg *config.Config, v config.VIP, checks map[string]CheckStatus, ov Overrides, later func(time.Time)) (VIPStatus, *Route) {
	st := VIPStatus{Name: v.Name, Require: v.Require}
	var failing []string
	known, definite := true, false
	for _, name := range v.Checks {
		cs, ok := checks[name]
		if ok && cs.Status.Passing() {
			st.Passing++
			continue
		}
		definite = definite || (ok && cs.Definite && cs.Status == health.StatusDown)
		switch {
		case !ok || cs.Status == health.StatusUnknown:
			known = false
			failing = append(failing, fmt.Sprintf("%s has not risen yet", name))
		case cs.LastErr != "":
			failing = append(failing, fmt.Sprintf("%s is down (%s)", name, cs.LastErr))
		default:
			failing = append(failing, fmt.Sprintf("%s is down", name))
		}
	}
	counts := fmt.Sprintf("%d of %d checks passing, %d required", st.Passing, len(v.Checks), v.Require)
	if len(failing) > 0 {
		counts += ": " + strings.Join(failing, "; ")
	}

	// What the checks alone say.
	base := StateDown
	switch {
	case st.Passing >= v.Require:
		base = StateUp
	case v.Degraded != nil && v.Degraded.MinPassing > 0 && st.Passing >= v.Degraded.MinPassing:
		base = StateDegraded
		counts += fmt.Sprintf(" (degraded: at least %d passing)", v.Degraded.MinPassing)
	case v.Degraded != nil && v.OnFailure == config.OnFailureDegrade && known:
		base = StateDegraded
		counts += ` (on_failure = "degrade")`
	}

	var lost []string
	if v.OnAddressLost == config.AddressLostWithdraw {
		for _, p := range v.Prefixes {
			if ov.MissingAddresses[p] {
				lost = append(lost, p.Addr().String())
			}
		}
	}
	held, isHeld := ov.HeldUntil[v.Name]
	isHeld = isHeld && held.After(ov.Now)

	drain, drained := ov.Drained[v.Name]
	switch {
	case drained:
		end := drain.Since.Add(drainTime(cfg, v))
		if ov.Now.Before(end) && base.Announced() && ov.HoldAll == "" && len(lost) == 0 && !isHeld {
			st.State = StateDraining
			st.Reason = fmt.Sprintf("draining until %s: %s", end.Format(time.TimeOnly), drain.Reason)
			later(end)
			r := attributes(v, base)
			r.Communities = append(slices.Clone(r.Communities), config.CommunityGracefulShutdown)
			zero := uint32(0)
			r.LocalPref = &zero // RFC 8326: iBGP peers see local-pref 0 (GoBGP drops it for eBGP)
			return st, &r
		}
		st.State = StateDisabled
		st.Reason = "drained: " + drain.Reason
	case ov.HoldAll != "":
		st.State = StateDown
		st.Reason = ov.HoldAll
	case len(lost) > 0:
		st.State = StateDown
		st.Reason = fmt.Sprintf("address %s missing from the interface (on_address_lost = \"withdraw\")", strings.Join(lost, ", "))
	case isHeld:
		later(held)
		st.State = StateHeld
		st.Reason = fmt.Sprintf("flapping: held until %s; checks: %s", held.Format(time.TimeOnly), counts)
		if base != StateDown && v.OnFailure == config.OnFailureDegrade && v.Degraded != nil {
			r := attributes(v, StateDegraded)
			return st, &r
		}
		st.Guardable = known && !definite
		if why, ok := ov.Guarded[v.Name]; ok && st.Guardable {
			return guarded(v, st, why)
		}
	case base == StateDown && known && !definite:
		st.State = StateDown
		st.Reason = counts
		st.Guardable = true
		if why, ok := ov.Guarded[v.Name]; ok {
			return guarded(v, st, why)
		}
	default:
		st.State = base
		st.Reason = counts
		if base.Announced() {
			r := attributes(v, base)
			return st, &r
		}
	}
	return st, nil
}

// guarded returns st as StateGuarded, kept announced by the fleet guard for
// reason why, with the degraded attributes (GuardedPrepend without
// [vip.degraded]).
func guarded(v config.VIP, st VIPStatus, why string) (VIPStatus, *Route) {
	inner := st.Reason // a held VIP's reason names its checks already
	if st.State == StateDown {
		inner = "checks: " + inner
	}
	st.State = StateGuarded
	st.Reason = fmt.Sprintf("guarded by the fleet: %s; %s", why, inner)
	r := attributes(v, StateDegraded)
	r.Prepend = GuardedPrependOf(v)
	return st, &r
}

// GuardedPrependOf is the prepend v is announced with while guarded: its
// degraded one with [vip.degraded], else its own plus GuardedPrepend (at
// most 10). The speaker's export policy needs a set for it in advance.
func GuardedPrependOf(v config.VIP) int {
	if v.Degraded != nil {
		return attributes(v, StateDegraded).Prepend
	}
	return min(v.Prepend+GuardedPrepend, maxPrepend)
}

// attributes are a VIP's route attributes in state s (up or degraded).
func attributes(v config.VIP, s State) Route {
	r := Route{
		VIP:              v.Name,
		Communities:      v.Communities,
		LargeCommunities: v.LargeCommunities,
		MED:              v.MED,
		LocalPref:        v.LocalPref,
		Prepend:          v.Prepend,
	}
	if s == StateDegraded && v.Degraded != nil {
		g := v.Degraded
		if g.Prepend > 0 {
			r.Prepend = g.Prepend
		}
		if g.MED != nil {
			r.MED = g.MED
		}
		r.Communities = append(slices.Clone(r.Communities), g.Communities...)
		r.LargeCommunities = append(slices.Clone(r.LargeCommunities), g.LargeCommunities...)
	}
	return r
}

func drainTime(cfg *config.Config, v config.VIP) time.Duration {
	if v.DrainTime > 0 {
		return v.DrainTime
	}
	return cfg.Node.DrainTime
}

// Diff returns what turns the announced routes into the desired ones at
// prefixes (each given once; nil: every prefix of either table): routes to
// add or replace (new, or with changed attributes) and prefixes to
// withdraw. Both are sorted by prefix, so the order of UPDATEs is
// deterministic. The announcer passes only the prefixes an event may have
// changed.
func Diff(announced, desired Table, prefixes iter.Seq[netip.Prefix]) (update []Route, withdraw []netip.Prefix) {
	if prefixes == nil {
		prefixes = func(yield func(netip.Prefix) bool) {
			for p := range desired {
				if !yield(p) {
					return
				}
			}
			for p := range announced {
				if _, ok := desired[p]; !ok && !yield(p) {
					return
				}
			}
		}
	}
	for p := range prefixes {
		want, wanted := desired[p]
		have, has := announced[p]
		switch {
		case wanted && (!has || !have.Equal(want)):
			update = append(update, want)
		case !wanted && has:
			withdraw = append(withdraw, p)
		}
	}
	slices.SortFunc(update, func(x, y Route) int { return x.Prefix.Compare(y.Prefix) })
	slices.SortFunc(withdraw, netip.Prefix.Compare)
	return update, withdraw
}
