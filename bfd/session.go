package bfd

import "time"

// The per-session state machine of RFC 5880 in asynchronous mode, as a
// pure value: no goroutine, no clock (every method that needs the time is
// given now), no I/O, and randomness only through the rnd given to
// NewSession. The Manager owns the sockets, the timers and the demux, and
// calls a Session's methods from its one goroutine; a Session is not safe
// for concurrent use.

// The defaults a zero Config field takes, and the transmit interval while a
// session is not Up.
const (
	// DefaultMinTx is the Desired Min TX Interval of a Config without
	// one: 300 ms (FRR bfdd's default).
	DefaultMinTx = 300 * time.Millisecond
	// DefaultMinRx is the Required Min RX Interval of a Config without
	// one: 300 ms.
	DefaultMinRx = 300 * time.Millisecond
	// DefaultDetectMult is the Detect Mult of a Config without one: 3.
	DefaultDetectMult = 3
	// SlowTxInterval is the least Desired Min TX Interval sent while the
	// session is not Up: 1 s (RFC 5880 §6.8.3, "not less than one second").
	SlowTxInterval = time.Second
)

// Config is a session's timer configuration (RFC 5880 §6.8.1). A zero
// field takes its default (DefaultMinTx, DefaultMinRx, DefaultDetectMult);
// intervals are truncated to whole microseconds and held to 1 µs ..
// MaxInterval (what the wire carries).
type Config struct {
	// DesiredMinTx is bfd.DesiredMinTxInterval while the session is Up:
	// how often we would like to send. While not Up we send at most every
	// SlowTxInterval (1 s) if DesiredMinTx is shorter.
	DesiredMinTx time.Duration
	// RequiredMinRx is bfd.RequiredMinRxInterval: the shortest interval
	// between received packets we can handle.
	RequiredMinRx time.Duration
	// DetectMult is bfd.DetectMult: the peer declares us down after this
	// many of our transmit intervals without a packet.
	DetectMult uint8
}

// normalized gives c with defaults applied and intervals in range.
func (c Config) normalized() Config {
	if c.DesiredMinTx <= 0 {
		c.DesiredMinTx = DefaultMinTx
	}
	if c.RequiredMinRx <= 0 {
		c.RequiredMinRx = DefaultMinRx
	}
	if c.DetectMult == 0 {
		c.DetectMult = DefaultDetectMult
	}
	c.DesiredMinTx = clampInterval(c.DesiredMinTx)
	c.RequiredMinRx = clampInterval(c.RequiredMinRx)
	return c
}

func clampInterval(d time.Duration) time.Duration {
	d = d.Truncate(time.Microsecond)
	if d < time.Microsecond {
		return time.Microsecond
	}
	if d > MaxInterval {
		return MaxInterval
	}
	return d
}

// Session is one BFD session: the state variables of RFC 5880 §6.8.1, the
// reception procedure of §6.8.6 after the packet checks (Unmarshal's), the
// timer rules of §6.8.2-§6.8.4 and §6.8.7, and the Poll Sequence of §6.5.
// We always take the Active role (§6.1): we send from the start, with
// Your Discriminator 0 until the peer is heard.
type Session struct {
	cfg Config // normalized
	rnd func() float64

	state       State // bfd.SessionState
	remoteState State // bfd.RemoteSessionState
	localDiscr  uint32
	remoteDiscr uint32 // bfd.RemoteDiscr, 0 until heard
	diag        Diag   // bfd.LocalDiag
	remoteDiag  Diag   // the Diag of the last packet received

	// desiredMinTx and requiredMinRx are bfd.DesiredMinTxInterval and
	// bfd.RequiredMinRxInterval: what every packet we send carries.
	desiredMinTx, requiredMinRx time.Duration
	// effMinTx and effMinRx are the values our own timers use. They equal
	// the advertised ones except during a Poll Sequence while Up (§6.8.3):
	// an increased DesiredMinTx and a decreased RequiredMinRx take effect
	// only when the sequence ends.
	effMinTx, effMinRx time.Duration

	polling   bool // a Poll Sequence is running: P on every periodic packet
	pollAgain bool // the values changed during it: run another one after

	remoteMinRx time.Duration // bfd.RemoteMinRxInterval; initially 1 µs
	remoteMinTx time.Duration // Desired Min TX of the last packet received
	remoteMult  uint8         // Detect Mult of the last packet received

	lastRx  time.Time // last packet received (not discarded); zero if none since expiry
	lastTx  time.Time // last periodic packet sent; zero before the first
	nextTx  time.Time // next periodic packet; zero before the first Transmit
	changed time.Time // last state change; zero if none
}

// NewSession makes a session in state Down with local discriminator
// localDiscr (nonzero, unique among our sessions: the Manager's job). rnd
// gives values in [0, 1) for the transmit jitter (math/rand/v2's Float64
// in production; a fixed sequence in tests). A new session has no
// transmission scheduled: call Transmit to send its first packet, after
// which NextTx says when to send the next.
func NewSession(cfg Config, localDiscr uint32, rnd func() float64) *Session {
	s := &Session{
		cfg:         cfg.normalized(),
		rnd:         rnd,
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  localDiscr,
		remoteMinRx: time.Microsecond,
	}
	s.desiredMinTx, s.requiredMinRx = s.targets()
	s.effMinTx, s.effMinRx = s.desiredMinTx, s.requiredMinRx
	return s
}

// targets gives the DesiredMinTx and RequiredMinRx to advertise now: the
// configured ones, with DesiredMinTx at least SlowTxInterval while not Up.
func (s *Session) targets() (tx, rx time.Duration) {
	tx = s.cfg.DesiredMinTx
	if s.state != StateUp && tx < SlowTxInterval {
		tx = SlowTxInterval
	}
	return tx, s.cfg.RequiredMinRx
}

// State is bfd.SessionState.
func (s *Session) State() State { return s.state }

// Diag is bfd.LocalDiag: why the session last went down (DiagNone again
// once it is Up).
func (s *Session) Diag() Diag { return s.diag }

// RemoteState is bfd.RemoteSessionState: the State of the last packet
// received (Down before any, and again after a Detection Time of silence).
func (s *Session) RemoteState() State { return s.remoteState }

// RemoteDiag is the Diag of the last packet received.
func (s *Session) RemoteDiag() Diag { return s.remoteDiag }

// LocalDiscr is bfd.LocalDiscr.
func (s *Session) LocalDiscr() uint32 { return s.localDiscr }

// RemoteDiscr is bfd.RemoteDiscr: the peer's My Discriminator, 0 until it
// is heard and again after a Detection Time of silence.
func (s *Session) RemoteDiscr() uint32 { return s.remoteDiscr }

// Config gives the configuration in force (normalized).
func (s *Session) Config() Config { return s.cfg }

// Polling reports whether a Poll Sequence is running (P set on the
// periodic packets until one with F arrives).
func (s *Session) Polling() bool { return s.polling }

// LastChange is the time of the last state change (zero if none).
func (s *Session) LastChange() time.Time { return s.changed }

// Negotiated gives the transmit interval before jitter (§6.8.2: the larger
// of the DesiredMinTx in effect and the peer's RequiredMinRx; 0 while the
// peer asks for no packets) and the Detection Time (§6.8.4: the peer's
// DetectMult × the larger of the RequiredMinRx in effect and the peer's
// DesiredMinTx; 0 until the peer is heard).
func (s *Session) Negotiated() (tx, detect time.Duration) {
	if s.remoteMinRx > 0 {
		tx = max(s.effMinTx, s.remoteMinRx)
	}
	if s.remoteMult > 0 {
		detect = time.Duration(s.remoteMult) * max(s.effMinRx, s.remoteMinTx)
	}
	return tx, detect
}

// DetectDeadline is when the session expires if nothing more is received:
// the last packet received plus the Detection Time. Zero if nothing has
// been received since the session began or last expired.
func (s *Session) DetectDeadline() time.Time {
	if s.lastRx.IsZero() {
		return time.Time{}
	}
	_, detect := s.Negotiated()
	if detect == 0 {
		return time.Time{}
	}
	return s.lastRx.Add(detect)
}

// NextTx is when the next periodic packet is due. Zero if none is
// scheduled: before the first Transmit, and while the peer's RequiredMinRx
// is 0 (§6.8.7: it asks for no periodic packets).
func (s *Session) NextTx() time.Time {
	if s.remoteMinRx == 0 {
		return time.Time{}
	}
	return s.nextTx
}

// Transmit fills p with the Control packet to send now (§6.8.7). A
// periodic packet (final false) carries P during a Poll Sequence and
// schedules the next one after the negotiated interval less jitter: 0-25
// %, or 10-25 % when our DetectMult is 1. A Final packet (final true, the
// answer to a P, see Receive) carries F and no P and leaves the schedule
// alone.
func (s *Session) Transmit(p *Packet, now time.Time, final bool) {
	*p = Packet{
		Version:               Version,
		Diag:                  s.diag,
		State:                 s.state,
		Poll:                  s.polling && !final,
		Final:                 final,
		DetectMult:            s.cfg.DetectMult,
		Length:                HeaderLen,
		MyDiscriminator:       s.localDiscr,
		YourDiscriminator:     s.remoteDiscr,
		DesiredMinTxInterval:  s.desiredMinTx,
		RequiredMinRxInterval: s.requiredMinRx,
	}
	if final {
		return
	}
	s.lastTx = now
	s.nextTx = now.Add(s.jittered())
}

// jittered gives the negotiated transmit interval less the jitter of
// §6.8.7: 75-100 % of it, or 75-90 % when our DetectMult is 1.
func (s *Session) jittered() time.Duration {
	tx, _ := s.Negotiated()
	if tx == 0 {
		tx = s.effMinTx
	}
	spread := 0.25
	if s.cfg.DetectMult == 1 {
		spread = 0.15
	}
	r := s.rnd()
	if r < 0 || r >= 1 {
		r = 0
	}
	return time.Duration(float64(tx) * (0.75 + spread*r))
}

// reschedule moves the next periodic packet after a change of the
// transmit interval: to the last one plus the new interval less jitter,
// or now if that is already past.
func (s *Session) reschedule(now time.Time) {
	if s.lastTx.IsZero() {
		return
	}
	next := s.lastTx.Add(s.jittered())
	if next.Before(now) {
		next = now
	}
	s.nextTx = next
}

// Receive processes a Control packet for this session that has passed
// Unmarshal's checks and the demux (RFC 5880 §6.8.6 from "Set
// bfd.RemoteDiscr" on). It reports whether the session changed state and
// whether the packet had P, in which case the caller must send a packet
// with F at once (Transmit with final true), whatever the schedule.
//
// The state table: in AdminDown every packet is discarded (the peer's
// variables are still taken). A peer in AdminDown takes Init or Up to
// Down with Diag 3 (Neighbor Signaled Session Down). Otherwise Down goes
// to Init on the peer's Down and to Up on its Init; Init goes to Up on the
// peer's Init or Up; Up goes to Down with Diag 3 on the peer's Down.
func (s *Session) Receive(p *Packet, now time.Time) (changed, sendFinal bool) {
	oldTx, _ := s.Negotiated()

	s.remoteDiscr = p.MyDiscriminator
	s.remoteState = p.State
	s.remoteDiag = p.Diag
	s.remoteMinRx = p.RequiredMinRxInterval
	s.remoteMinTx = p.DesiredMinTxInterval
	s.remoteMult = p.DetectMult

	if s.polling && p.Final {
		s.endPoll()
	}
	if tx, _ := s.Negotiated(); tx != oldTx {
		s.reschedule(now)
	}

	if s.state == StateAdminDown {
		return false, false
	}
	s.lastRx = now

	next, diag := s.state, s.diag
	if p.State == StateAdminDown {
		if s.state != StateDown {
			next, diag = StateDown, DiagNeighborSignaledDown
		}
	} else {
		switch s.state {
		case StateDown:
			switch p.State {
			case StateDown:
				next = StateInit
			case StateInit:
				next = StateUp
			}
		case StateInit:
			if p.State == StateInit || p.State == StateUp {
				next = StateUp
			}
		case StateUp:
			if p.State == StateDown {
				next, diag = StateDown, DiagNeighborSignaledDown
			}
		}
	}
	if next != s.state {
		s.setState(next, diag, now)
		changed = true
	}
	return changed, p.Poll
}

// setState moves to state with diag (DiagNone when Up), sends a packet at
// once to tell the peer, and applies the timers of the new state: leaving
// Up ends any Poll Sequence and slows to SlowTxInterval; reaching Up
// starts one to speed up to the configured DesiredMinTx.
func (s *Session) setState(state State, diag Diag, now time.Time) {
	if state == StateUp {
		diag = DiagNone
	}
	s.state, s.diag, s.changed = state, diag, now
	s.applyTimers(now)
	if state != StateUp {
		s.stopPoll(now)
	}
	if !s.lastTx.IsZero() {
		s.nextTx = now
	}
}

// stopPoll abandons any Poll Sequence (the session left Up or the peer
// fell silent) and puts the advertised values in effect.
func (s *Session) stopPoll(now time.Time) {
	s.polling, s.pollAgain = false, false
	if s.effMinTx == s.desiredMinTx && s.effMinRx == s.requiredMinRx {
		return
	}
	oldTx, _ := s.Negotiated()
	s.effMinTx, s.effMinRx = s.desiredMinTx, s.requiredMinRx
	if tx, _ := s.Negotiated(); tx != oldTx {
		s.reschedule(now)
	}
}

// applyTimers advertises the current targets and runs the rules of
// §6.8.3: a change starts a Poll Sequence (when the peer is known); while
// Up, an increase of DesiredMinTx and a decrease of RequiredMinRx wait for
// the sequence to end, everything else takes effect at once.
func (s *Session) applyTimers(now time.Time) {
	tx, rx := s.targets()
	changedTx, changedRx := tx != s.desiredMinTx, rx != s.requiredMinRx
	if !changedTx && !changedRx {
		return
	}
	oldTx, _ := s.Negotiated()
	s.desiredMinTx, s.requiredMinRx = tx, rx
	up := s.state == StateUp
	if !up || tx < s.effMinTx {
		s.effMinTx = tx
	}
	if !up || rx > s.effMinRx {
		s.effMinRx = rx
	}
	// No sequence without a peer to answer it (RemoteDiscr 0) or in
	// AdminDown, where nothing received is processed.
	if s.remoteDiscr != 0 && s.state != StateAdminDown {
		if s.polling {
			s.pollAgain = true
		} else {
			s.polling = true
		}
	}
	if newTx, _ := s.Negotiated(); newTx != oldTx {
		s.reschedule(now)
	}
}

// endPoll ends the Poll Sequence on a packet with F. The deferred values
// take effect only if they did not change during the sequence; if they
// did, another sequence starts for them.
func (s *Session) endPoll() {
	if s.pollAgain {
		s.pollAgain = false
		return
	}
	s.polling = false
	s.effMinTx, s.effMinRx = s.desiredMinTx, s.requiredMinRx
}

// Expire checks the Detection Time (§6.8.4): if now is at or past
// DetectDeadline, the peer's variables are reset (RemoteDiscr 0, its
// state Down, RemoteMinRxInterval 1 µs, §6.8.1 and §6.8.18) and a session
// in Init or Up goes Down with Diag 1 (Control Detection Time Expired). It
// reports whether the state changed.
func (s *Session) Expire(now time.Time) bool {
	deadline := s.DetectDeadline()
	if deadline.IsZero() || now.Before(deadline) {
		return false
	}
	s.lastRx = time.Time{}
	s.remoteDiscr = 0
	s.remoteState = StateDown
	s.remoteMinRx = time.Microsecond
	s.remoteMinTx = 0
	s.remoteMult = 0
	if s.state != StateInit && s.state != StateUp {
		s.stopPoll(now)
		s.reschedule(now)
		return false
	}
	s.setState(StateDown, DiagControlDetectExpired, now)
	return true
}

// SetConfig changes the timers (a reload). While Up this runs a Poll
// Sequence (§6.8.3): the new values are advertised at once, but a longer
// DesiredMinTx is used for our own transmissions, and a shorter
// RequiredMinRx for the Detection Time, only once the peer has answered
// with F, so a change never takes a healthy session down. A new
// DetectMult is sent at once.
func (s *Session) SetConfig(cfg Config, now time.Time) {
	s.cfg = cfg.normalized()
	s.applyTimers(now)
}

// SetAdminDown takes the session to AdminDown with Diag 7
// (Administratively Down, §6.8.16), in which it goes on sending (AdminDown
// packets) and ignores what it receives; or back to Down from AdminDown
// (the Diag stays until the session is Up again). Either sends a packet at
// once. Nothing happens if the session is already where asked.
func (s *Session) SetAdminDown(down bool, now time.Time) {
	switch {
	case down && s.state != StateAdminDown:
		s.setState(StateAdminDown, DiagAdministrativelyDown, now)
	case !down && s.state == StateAdminDown:
		s.setState(StateDown, s.diag, now)
	}
}
