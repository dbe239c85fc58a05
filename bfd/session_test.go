package bfd

import (
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the simulated clock's origin.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixedRnd returns a jitter source that always gives r.
func fixedRnd(r float64) func() float64 { return func() float64 { return r } }

// peerPkt is a packet from the peer (discriminator 77) in state st, with
// its timers.
func peerPkt(st State, minTx, minRx time.Duration, mult uint8) Packet {
	return Packet{
		Version: Version, State: st, DetectMult: mult, Length: HeaderLen,
		MyDiscriminator: 77, DesiredMinTxInterval: minTx, RequiredMinRxInterval: minRx,
	}
}

// sessionIn gives a session (discriminator 1, cfg) brought to st by the
// packets of a peer with 100 ms timers and multiplier 3, at t0, plus the
// time after the last step. An Up session has finished the Poll Sequence
// that going Up starts.
func sessionIn(t *testing.T, st State, cfg Config) (*Session, time.Time) {
	t.Helper()
	s := NewSession(cfg, 1, fixedRnd(0.5))
	now := t0
	var p Packet
	s.Transmit(&p, now, false)
	recv := func(st State, final bool) {
		now = now.Add(10 * time.Millisecond)
		q := peerPkt(st, 100*time.Millisecond, 100*time.Millisecond, 3)
		q.Final = final
		if st != StateDown && st != StateAdminDown {
			q.YourDiscriminator = 1
		}
		s.Receive(&q, now)
	}
	switch st {
	case StateAdminDown:
		s.SetAdminDown(true, now)
	case StateInit:
		recv(StateDown, false)
	case StateUp:
		recv(StateInit, false)
		recv(StateUp, true)
	}
	if s.State() != st {
		t.Fatalf("setup: session in %v, want %v", s.State(), st)
	}
	if s.Polling() {
		t.Fatalf("setup: poll sequence still running in %v", st)
	}
	return s, now
}

// TestSessionStateTable is the state table of RFC 5880 §6.8.6: every
// local state against every state the peer can signal.
func TestSessionStateTable(t *testing.T) {
	const (
		AD = StateAdminDown
		D  = StateDown
		I  = StateInit
		U  = StateUp
	)
	cases := []struct {
		local, remote State
		want          State
		diag          Diag
	}{
		{AD, AD, AD, DiagAdministrativelyDown}, {AD, D, AD, DiagAdministrativelyDown},
		{AD, I, AD, DiagAdministrativelyDown}, {AD, U, AD, DiagAdministrativelyDown},
		{D, AD, D, DiagNone}, {D, D, I, DiagNone}, {D, I, U, DiagNone}, {D, U, D, DiagNone},
		{I, AD, D, DiagNeighborSignaledDown}, {I, D, I, DiagNone}, {I, I, U, DiagNone}, {I, U, U, DiagNone},
		{U, AD, D, DiagNeighborSignaledDown}, {U, D, D, DiagNeighborSignaledDown},
		{U, I, U, DiagNone}, {U, U, U, DiagNone},
	}
	for _, c := range cases {
		for _, poll := range []bool{false, true} {
			name := c.local.String() + "/" + c.remote.String()
			if poll {
				name += "/P"
			}
			t.Run(name, func(t *testing.T) {
				s, now := sessionIn(t, c.local, Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond})
				deadline := s.DetectDeadline()
				now = now.Add(5 * time.Millisecond)
				q := peerPkt(c.remote, 100*time.Millisecond, 100*time.Millisecond, 3)
				q.Poll = poll
				if c.remote == I || c.remote == U {
					q.YourDiscriminator = 1
				}
				changed, final := s.Receive(&q, now)
				if s.State() != c.want || s.Diag() != c.diag {
					t.Errorf("state %v diag %v, want %v diag %v", s.State(), s.Diag(), c.want, c.diag)
				}
				if changed != (c.local != c.want) {
					t.Errorf("changed = %v going %v -> %v", changed, c.local, s.State())
				}
				// AdminDown discards the packet: no F, and it does not
				// count as received for the Detection Time.
				discarded := c.local == AD
				if final != (poll && !discarded) {
					t.Errorf("sendFinal = %v, want %v", final, poll && !discarded)
				}
				if discarded && !s.DetectDeadline().Equal(deadline) {
					t.Errorf("discarded packet moved the detection deadline %v -> %v", deadline, s.DetectDeadline())
				}
				if !discarded && !s.DetectDeadline().Equal(now.Add(300*time.Millisecond)) {
					t.Errorf("detection deadline %v, want %v", s.DetectDeadline(), now.Add(300*time.Millisecond))
				}
				if s.RemoteState() != c.remote || s.RemoteDiscr() != 77 {
					t.Errorf("remote state %v discr %d, want %v 77", s.RemoteState(), s.RemoteDiscr(), c.remote)
				}
				// Every change is told to the peer at once.
				if changed && !s.NextTx().Equal(now) {
					t.Errorf("after a change the next packet is due %v, want now %v", s.NextTx(), now)
				}
				var p Packet
				s.Transmit(&p, now, final)
				if p.State != s.State() || p.Diag != s.Diag() || p.Final != final || (p.Poll && p.Final) {
					t.Errorf("sent state %v diag %v P %v F %v", p.State, p.Diag, p.Poll, p.Final)
				}
				if _, err := p.Marshal(make([]byte, HeaderLen)); err != nil {
					t.Errorf("the packet sent does not marshal: %v", err)
				}
			})
		}
	}
}

// TestSessionTimerNegotiation checks §6.8.2 and §6.8.4: we send at the
// slower of our DesiredMinTx and the peer's RequiredMinRx, and time out
// after the peer's DetectMult × the slower of our RequiredMinRx and its
// DesiredMinTx; while not Up we send at 1 s at least.
func TestSessionTimerNegotiation(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name                 string
		ourTx, ourRx         time.Duration
		theirTx, theirRx     time.Duration
		theirMult            uint8
		up                   bool
		wantTx, wantDetect   time.Duration
		wantAdvTx, wantAdvRx time.Duration
	}{
		{"equal", 100 * ms, 100 * ms, 100 * ms, 100 * ms, 3, true, 100 * ms, 300 * ms, 100 * ms, 100 * ms},
		{"their rx slower", 100 * ms, 100 * ms, 100 * ms, 250 * ms, 3, true, 250 * ms, 300 * ms, 100 * ms, 100 * ms},
		{"our tx slower", 400 * ms, 100 * ms, 100 * ms, 250 * ms, 3, true, 400 * ms, 300 * ms, 400 * ms, 100 * ms},
		{"their tx slower", 50 * ms, 50 * ms, 200 * ms, 50 * ms, 5, true, 50 * ms, 1000 * ms, 50 * ms, 50 * ms},
		{"our rx slower", 50 * ms, 300 * ms, 200 * ms, 50 * ms, 2, true, 50 * ms, 600 * ms, 50 * ms, 300 * ms},
		{"their mult 1", 100 * ms, 100 * ms, 100 * ms, 100 * ms, 1, true, 100 * ms, 100 * ms, 100 * ms, 100 * ms},
		{"not up: 1 s", 100 * ms, 100 * ms, 1000 * ms, 100 * ms, 3, false, 1000 * ms, 3000 * ms, 1000 * ms, 100 * ms},
		{"not up: their rx above 1 s", 100 * ms, 100 * ms, 1000 * ms, 2000 * ms, 3, false, 2000 * ms, 3000 * ms, 1000 * ms, 100 * ms},
		{"not up: our tx above 1 s", 1500 * ms, 100 * ms, 1000 * ms, 100 * ms, 3, false, 1500 * ms, 3000 * ms, 1500 * ms, 100 * ms},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewSession(Config{DesiredMinTx: c.ourTx, RequiredMinRx: c.ourRx, DetectMult: 3}, 1, fixedRnd(0.999))
			now := t0
			var p Packet
			s.Transmit(&p, now, false)
			send := func(st State, final bool) {
				now = now.Add(time.Millisecond)
				q := peerPkt(st, c.theirTx, c.theirRx, c.theirMult)
				q.Final = final
				if st != StateDown {
					q.YourDiscriminator = 1
				}
				s.Receive(&q, now)
			}
			if c.up {
				send(StateInit, false)
				send(StateUp, true) // ends the Poll Sequence of going Up
				if s.State() != StateUp || s.Polling() {
					t.Fatalf("state %v polling %v, want up and no poll", s.State(), s.Polling())
				}
			} else {
				send(StateDown, false)
				if s.State() != StateInit {
					t.Fatalf("state %v, want init", s.State())
				}
			}
			tx, detect := s.Negotiated()
			if tx != c.wantTx || detect != c.wantDetect {
				t.Errorf("negotiated tx %v detect %v, want %v %v", tx, detect, c.wantTx, c.wantDetect)
			}
			if got := s.DetectDeadline(); !got.Equal(now.Add(c.wantDetect)) {
				t.Errorf("detection deadline %v after the last packet, want %v", got.Sub(now), c.wantDetect)
			}
			s.Transmit(&p, now, false)
			if p.DesiredMinTxInterval != c.wantAdvTx || p.RequiredMinRxInterval != c.wantAdvRx || p.DetectMult != 3 {
				t.Errorf("advertised tx %v rx %v mult %d, want %v %v 3", p.DesiredMinTxInterval, p.RequiredMinRxInterval, p.DetectMult, c.wantAdvTx, c.wantAdvRx)
			}
			if gap := s.NextTx().Sub(now); gap > c.wantTx || gap < c.wantTx*3/4 {
				t.Errorf("next packet in %v, want within 75-100 %% of %v", gap, c.wantTx)
			}
		})
	}
}

// TestSessionNoPeriodicTxWhenPeerAsksNone: a RequiredMinRx of 0 from the
// peer stops our periodic packets (§6.8.7); its expiry starts them again.
func TestSessionNoPeriodicTxWhenPeerAsksNone(t *testing.T) {
	s := NewSession(Config{}, 1, fixedRnd(0))
	if !s.NextTx().IsZero() {
		t.Fatalf("a new session has a transmission scheduled before its first Transmit")
	}
	var p Packet
	s.Transmit(&p, t0, false)
	q := peerPkt(StateDown, time.Second, 0, 3)
	s.Receive(&q, t0.Add(time.Millisecond))
	if !s.NextTx().IsZero() {
		t.Fatalf("NextTx %v, want none while the peer's RequiredMinRx is 0", s.NextTx())
	}
	if !s.Expire(s.DetectDeadline()) || s.State() != StateDown {
		t.Fatalf("state %v after expiry, want down", s.State())
	}
	if s.NextTx().IsZero() {
		t.Fatalf("no transmission after the peer's expiry reset its RequiredMinRx")
	}
}

// TestSessionFollowsPeerRequiredMinRx: when the peer's RequiredMinRx
// changes, the next packet moves at once (from the last one sent): later
// when it asks for fewer packets, sooner when it asks for more.
func TestSessionFollowsPeerRequiredMinRx(t *testing.T) {
	ms := time.Millisecond
	s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms})
	var p Packet
	s.Transmit(&p, now, false)
	sent := now
	q := peerPkt(StateUp, 100*ms, time.Second, 3)
	q.YourDiscriminator = 1
	s.Receive(&q, now.Add(10*ms))
	if gap := s.NextTx().Sub(sent); gap < 750*ms || gap > time.Second {
		t.Errorf("peer asks for 1s: next packet %v after the last, want 75-100 %% of 1s", gap)
	}
	q.RequiredMinRxInterval = 100 * ms
	s.Receive(&q, now.Add(20*ms))
	if gap := s.NextTx().Sub(sent); gap < 20*ms || gap > 100*ms {
		t.Errorf("peer asks for 100ms again: next packet %v after the last, want 20-100ms", gap)
	}
}

// TestSessionJitter draws many intervals and checks §6.8.7: 75-100 % of
// the negotiated interval, 75-90 % when our DetectMult is 1, covering the
// range (so a session without jitter fails).
func TestSessionJitter(t *testing.T) {
	for _, c := range []struct {
		mult     uint8
		lo, hi   float64 // bounds, as fractions of the interval
		covering float64 // the draws reach within this of each bound
	}{
		{3, 0.75, 1.00, 0.01},
		{1, 0.75, 0.90, 0.01},
	} {
		r := rand.New(rand.NewPCG(1, uint64(c.mult)))
		s := NewSession(Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: c.mult}, 1, r.Float64)
		now := t0
		var p Packet
		minF, maxF := 2.0, 0.0
		for range 10000 {
			s.Transmit(&p, now, false)
			gap := s.NextTx().Sub(now)
			f := float64(gap) / float64(time.Second) // 1 s: not Up
			if f < c.lo || f >= c.hi {
				t.Fatalf("mult %d: interval %v is %.4f of 1 s, want [%.2f, %.2f)", c.mult, gap, f, c.lo, c.hi)
			}
			minF, maxF = min(minF, f), max(maxF, f)
			now = s.NextTx()
		}
		if minF > c.lo+c.covering || maxF < c.hi-c.covering {
			t.Errorf("mult %d: intervals span %.4f-%.4f, want near %.2f-%.2f", c.mult, minF, maxF, c.lo, c.hi)
		}
	}
	// The extremes of rnd.
	for _, r := range []float64{0, 0.9999999} {
		s := NewSession(Config{DetectMult: 1}, 1, fixedRnd(r))
		var p Packet
		s.Transmit(&p, t0, false)
		if gap := s.NextTx().Sub(t0); gap < 750*time.Millisecond || gap >= 900*time.Millisecond {
			t.Errorf("rnd %v mult 1: interval %v", r, gap)
		}
	}
}

// TestSessionPollSequence: a timer change while Up (a reload) runs a Poll
// Sequence: P on every periodic packet until F arrives, an increased
// DesiredMinTx and a decreased RequiredMinRx only in effect afterwards,
// the session Up throughout.
func TestSessionPollSequence(t *testing.T) {
	ms := time.Millisecond
	t.Run("min_tx increased", func(t *testing.T) {
		s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms})
		s.SetConfig(Config{DesiredMinTx: 300 * ms, RequiredMinRx: 100 * ms}, now)
		var p Packet
		for i := range 5 {
			s.Transmit(&p, now, false)
			if !p.Poll || p.DesiredMinTxInterval != 300*ms {
				t.Fatalf("packet %d of the sequence: P %v DesiredMinTx %v, want P and 300ms", i, p.Poll, p.DesiredMinTxInterval)
			}
			if tx, _ := s.Negotiated(); tx != 100*ms {
				t.Fatalf("transmit interval %v before F, want the old 100ms", tx)
			}
			if gap := s.NextTx().Sub(now); gap > 100*ms {
				t.Fatalf("next packet in %v before F, want at most 100ms", gap)
			}
			// A Final (the answer to the peer's P) has no P and leaves
			// the schedule alone.
			next := s.NextTx()
			var f Packet
			if s.Transmit(&f, now.Add(ms), true); f.Poll || !f.Final || !s.NextTx().Equal(next) {
				t.Fatalf("final packet: P %v F %v, NextTx %v -> %v", f.Poll, f.Final, next, s.NextTx())
			}
			now = s.NextTx()
			q := peerPkt(StateUp, 100*ms, 100*ms, 3)
			q.YourDiscriminator = 1
			s.Receive(&q, now)
			if s.State() != StateUp {
				t.Fatalf("session %v during the sequence", s.State())
			}
		}
		q := peerPkt(StateUp, 100*ms, 100*ms, 3)
		q.YourDiscriminator, q.Final = 1, true
		s.Receive(&q, now)
		if s.Polling() {
			t.Fatalf("still polling after F")
		}
		if tx, _ := s.Negotiated(); tx != 300*ms {
			t.Errorf("transmit interval %v after F, want 300ms", tx)
		}
		s.Transmit(&p, now, false)
		if p.Poll {
			t.Errorf("P after the sequence ended")
		}
		if gap := s.NextTx().Sub(now); gap < 225*ms || gap > 300*ms {
			t.Errorf("next packet in %v after F, want 75-100 %% of 300ms", gap)
		}
	})
	t.Run("min_rx decreased", func(t *testing.T) {
		s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * ms, RequiredMinRx: 300 * ms})
		if _, d := s.Negotiated(); d != 900*ms {
			t.Fatalf("detection time %v, want 900ms", d)
		}
		s.SetConfig(Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms}, now)
		var p Packet
		s.Transmit(&p, now, false)
		if !p.Poll || p.RequiredMinRxInterval != 100*ms {
			t.Fatalf("P %v RequiredMinRx %v, want P and 100ms", p.Poll, p.RequiredMinRxInterval)
		}
		if _, d := s.Negotiated(); d != 900*ms {
			t.Errorf("detection time %v before F, want the old 900ms", d)
		}
		q := peerPkt(StateUp, 100*ms, 100*ms, 3)
		q.YourDiscriminator = 1
		s.Receive(&q, now.Add(250*ms))
		if _, d := s.Negotiated(); d != 900*ms {
			t.Errorf("detection time %v before F, want the old 900ms", d)
		}
		q.Final = true
		s.Receive(&q, now.Add(300*ms))
		if _, d := s.Negotiated(); d != 300*ms || s.Polling() {
			t.Errorf("detection time %v polling %v after F, want 300ms and done", d, s.Polling())
		}
	})
	t.Run("min_tx decreased and min_rx increased at once", func(t *testing.T) {
		s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 300 * ms, RequiredMinRx: 100 * ms})
		s.SetConfig(Config{DesiredMinTx: 100 * ms, RequiredMinRx: 200 * ms}, now)
		tx, d := s.Negotiated()
		if tx != 100*ms || d != 600*ms || !s.Polling() {
			t.Errorf("tx %v detect %v polling %v, want 100ms 600ms at once and a poll sequence", tx, d, s.Polling())
		}
	})
	t.Run("change during a sequence", func(t *testing.T) {
		s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms})
		s.SetConfig(Config{DesiredMinTx: 200 * ms, RequiredMinRx: 100 * ms}, now)
		s.SetConfig(Config{DesiredMinTx: 400 * ms, RequiredMinRx: 100 * ms}, now)
		q := peerPkt(StateUp, 100*ms, 100*ms, 3)
		q.YourDiscriminator, q.Final = 1, true
		s.Receive(&q, now.Add(10*ms))
		// The F may answer a packet that had the first change only: a
		// second sequence runs for the second.
		if tx, _ := s.Negotiated(); !s.Polling() || tx != 100*ms {
			t.Fatalf("after the first F: polling %v tx %v, want a second sequence at 100ms", s.Polling(), tx)
		}
		s.Receive(&q, now.Add(20*ms))
		if tx, _ := s.Negotiated(); s.Polling() || tx != 400*ms {
			t.Errorf("after the second F: polling %v tx %v, want done at 400ms", s.Polling(), tx)
		}
	})
	t.Run("no interval change, no sequence", func(t *testing.T) {
		s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms})
		s.SetConfig(Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms, DetectMult: 5}, now)
		if s.Polling() {
			t.Errorf("poll sequence without an interval change")
		}
		var p Packet
		s.Transmit(&p, now, false)
		if p.DetectMult != 5 || p.Poll {
			t.Errorf("DetectMult %d P %v, want the new 5 at once and no P", p.DetectMult, p.Poll)
		}
	})
	t.Run("going up polls for the fast timers", func(t *testing.T) {
		s := NewSession(Config{DesiredMinTx: 50 * ms, RequiredMinRx: 50 * ms}, 1, fixedRnd(0))
		var p Packet
		s.Transmit(&p, t0, false)
		if p.DesiredMinTxInterval != time.Second || p.Poll {
			t.Fatalf("down: DesiredMinTx %v P %v, want 1s and no P", p.DesiredMinTxInterval, p.Poll)
		}
		q := peerPkt(StateInit, time.Second, 50*ms, 3)
		q.YourDiscriminator = 1
		s.Receive(&q, t0.Add(ms))
		s.Transmit(&p, t0.Add(ms), false)
		if s.State() != StateUp || p.DesiredMinTxInterval != 50*ms || !p.Poll {
			t.Errorf("up: state %v DesiredMinTx %v P %v, want up, 50ms and P", s.State(), p.DesiredMinTxInterval, p.Poll)
		}
		if tx, _ := s.Negotiated(); tx != 50*ms {
			t.Errorf("up: transmit interval %v, want 50ms at once (a decrease)", tx)
		}
	})
}

// TestSessionExpiry: a Detection Time without a packet takes an Up
// session Down with Diag 1 and forgets the peer.
func TestSessionExpiry(t *testing.T) {
	s, now := sessionIn(t, StateUp, Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond})
	deadline := s.DetectDeadline()
	if want := now.Add(300 * time.Millisecond); !deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", deadline, want)
	}
	if s.Expire(deadline.Add(-time.Microsecond)) || s.State() != StateUp {
		t.Fatalf("expired before the deadline")
	}
	if !s.Expire(deadline) {
		t.Fatalf("Expire at the deadline reported no change")
	}
	if s.State() != StateDown || s.Diag() != DiagControlDetectExpired {
		t.Errorf("state %v diag %v, want down control_detection_time_expired", s.State(), s.Diag())
	}
	if s.RemoteDiscr() != 0 || s.RemoteState() != StateDown || !s.DetectDeadline().IsZero() {
		t.Errorf("after expiry: remote discr %d state %v deadline %v, want 0 down none", s.RemoteDiscr(), s.RemoteState(), s.DetectDeadline())
	}
	if !s.NextTx().Equal(deadline) {
		t.Errorf("next packet %v, want at once (%v)", s.NextTx(), deadline)
	}
	var p Packet
	s.Transmit(&p, deadline, false)
	if p.State != StateDown || p.Diag != DiagControlDetectExpired || p.YourDiscriminator != 0 || p.DesiredMinTxInterval != time.Second || p.Poll {
		t.Errorf("sent %+v, want Down, diag 1, your discriminator 0, 1s, no P", p)
	}
	if s.Expire(deadline.Add(time.Hour)) {
		t.Errorf("expired twice")
	}
}

// TestSessionAdminDown: AdminDown is sent with Diag 7, the peer goes Down
// with Diag 3, and enabling again brings both back Up.
func TestSessionAdminDown(t *testing.T) {
	cfg := Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond}
	n := newSessionNet(cfg, cfg)
	if !n.runUntil(2*time.Second, n.bothUp) {
		t.Fatalf("not up: %v %v", n.s[0].State(), n.s[1].State())
	}
	n.s[0].SetAdminDown(true, n.now)
	if n.s[0].State() != StateAdminDown || n.s[0].Diag() != DiagAdministrativelyDown {
		t.Fatalf("state %v diag %v", n.s[0].State(), n.s[0].Diag())
	}
	if !n.runUntil(time.Second, func() bool { return n.s[1].State() == StateDown }) {
		t.Fatalf("peer still %v", n.s[1].State())
	}
	if n.s[1].Diag() != DiagNeighborSignaledDown {
		t.Errorf("peer diag %v, want neighbor_signaled_session_down", n.s[1].Diag())
	}
	n.runFor(5 * time.Second)
	if n.s[0].State() != StateAdminDown || n.s[1].State() != StateDown {
		t.Errorf("after 5 s: %v %v, want admin-down down", n.s[0].State(), n.s[1].State())
	}
	n.s[0].SetAdminDown(false, n.now)
	if !n.runUntil(3*time.Second, n.bothUp) {
		t.Errorf("not up again: %v %v", n.s[0].State(), n.s[1].State())
	}
}

// sessionNet is two Sessions talking through their packets (marshalled
// and unmarshalled) over a link with a fixed latency, in a simulated
// clock: each step runs the earliest event (a delivery, an expiry, a
// periodic transmission).
type sessionNet struct {
	now     time.Time
	s       [2]*Session
	latency time.Duration
	stopped [2]bool                        // sends and hears nothing (frozen)
	cut     bool                           // the link loses everything
	drop    func(from int, p *Packet) bool // loses what it returns true for
	flights []sessionFlight
	changes []sessionChange
	sent    [2][]sessionSent
}

type sessionFlight struct {
	at time.Time
	to int
	p  Packet
}

type sessionChange struct {
	i        int
	at       time.Time
	from, to State
	diag     Diag
}

type sessionSent struct {
	at time.Time
	p  Packet
}

// newSessionNet starts two sessions (discriminators 1 and 2) that send
// their first packet at t0.
func newSessionNet(cfg0, cfg1 Config) *sessionNet {
	n := &sessionNet{now: t0, latency: time.Millisecond}
	n.s[0] = NewSession(cfg0, 1, rand.New(rand.NewPCG(1, 1)).Float64)
	n.s[1] = NewSession(cfg1, 2, rand.New(rand.NewPCG(2, 2)).Float64)
	n.send(0, false)
	n.send(1, false)
	return n
}

func (n *sessionNet) bothUp() bool {
	return n.s[0].State() == StateUp && n.s[1].State() == StateUp
}

func (n *sessionNet) send(i int, final bool) {
	var p, q Packet
	n.s[i].Transmit(&p, n.now, final)
	var b [HeaderLen]byte
	if _, err := p.Marshal(b[:]); err != nil {
		panic("session sent a packet that does not marshal: " + err.Error())
	}
	if err := Unmarshal(b[:], &q); err != nil {
		panic("session sent a packet that does not unmarshal: " + err.Error())
	}
	n.sent[i] = append(n.sent[i], sessionSent{n.now, q})
	if n.cut || (n.drop != nil && n.drop(i, &q)) {
		return
	}
	n.flights = append(n.flights, sessionFlight{n.now.Add(n.latency), 1 - i, q})
}

func (n *sessionNet) record(i int, from State) {
	if s := n.s[i]; s.State() != from {
		n.changes = append(n.changes, sessionChange{i, n.now, from, s.State(), s.Diag()})
	}
}

// step runs the earliest event if it is not after limit, else moves the
// clock to limit and reports false.
func (n *sessionNet) step(limit time.Time) bool {
	const (
		deliver = iota
		expire
		transmit
	)
	best, kind, idx := time.Time{}, -1, -1
	consider := func(at time.Time, k, i int) {
		if at.IsZero() {
			return
		}
		if kind < 0 || at.Before(best) || (at.Equal(best) && k < kind) {
			best, kind, idx = at, k, i
		}
	}
	for j, f := range n.flights {
		consider(f.at, deliver, j)
	}
	for i, s := range n.s {
		if !n.stopped[i] {
			consider(s.DetectDeadline(), expire, i)
			consider(s.NextTx(), transmit, i)
		}
	}
	if kind < 0 || best.After(limit) {
		n.now = limit
		return false
	}
	if best.After(n.now) {
		n.now = best
	}
	switch kind {
	case deliver:
		f := n.flights[idx]
		n.flights = append(n.flights[:idx], n.flights[idx+1:]...)
		if n.stopped[f.to] {
			break
		}
		from := n.s[f.to].State()
		_, final := n.s[f.to].Receive(&f.p, n.now)
		n.record(f.to, from)
		if final {
			n.send(f.to, true)
		}
	case expire:
		from := n.s[idx].State()
		n.s[idx].Expire(n.now)
		n.record(idx, from)
	case transmit:
		n.send(idx, false)
	}
	return true
}

// runUntil steps until cond holds (true) or d has passed (false).
func (n *sessionNet) runUntil(d time.Duration, cond func() bool) bool {
	limit := n.now.Add(d)
	for {
		if cond() {
			return true
		}
		if !n.step(limit) {
			return cond()
		}
	}
}

func (n *sessionNet) runFor(d time.Duration) { n.runUntil(d, func() bool { return false }) }

// changesSince gives the state changes after at.
func (n *sessionNet) changesSince(at time.Time) []sessionChange {
	var out []sessionChange
	for _, c := range n.changes {
		if c.at.After(at) {
			out = append(out, c)
		}
	}
	return out
}

// TestSessionPairUpThenPeerStops: two sessions come Up in a few packets
// (each change is sent at once), stay Up, and when one stops the other
// goes Down with Diag 1 within the peer's DetectMult × interval.
func TestSessionPairUpThenPeerStops(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name       string
		cfg0, cfg1 Config
		detect     time.Duration // session 1's detection time
		interval   time.Duration // session 0's transmit interval
	}{
		{"3x100ms", Config{100 * ms, 100 * ms, 3}, Config{100 * ms, 100 * ms, 3}, 300 * ms, 100 * ms},
		{"3x50ms", Config{50 * ms, 50 * ms, 3}, Config{50 * ms, 50 * ms, 3}, 150 * ms, 50 * ms},
		{"5x300ms vs 2x100ms", Config{300 * ms, 100 * ms, 5}, Config{100 * ms, 100 * ms, 2}, 1500 * ms, 300 * ms},
		{"their rx slower", Config{50 * ms, 50 * ms, 3}, Config{50 * ms, 200 * ms, 3}, 600 * ms, 200 * ms},
		{"mult 1", Config{100 * ms, 100 * ms, 1}, Config{100 * ms, 100 * ms, 1}, 100 * ms, 100 * ms},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newSessionNet(c.cfg0, c.cfg1)
			if !n.runUntil(100*ms, n.bothUp) {
				t.Fatalf("not up within 100ms: %v %v", n.s[0].State(), n.s[1].State())
			}
			upAt := n.now
			n.runFor(10 * time.Second)
			if ch := n.changesSince(upAt); len(ch) > 0 {
				t.Fatalf("changes while both run: %+v", ch)
			}
			if _, d := n.s[1].Negotiated(); d != c.detect {
				t.Fatalf("session 1 detection time %v, want %v", d, c.detect)
			}
			if tx, _ := n.s[0].Negotiated(); tx != c.interval {
				t.Fatalf("session 0 transmit interval %v, want %v", tx, c.interval)
			}
			n.stopped[0] = true
			stop := n.now
			if !n.runUntil(10*time.Second, func() bool { return n.s[1].State() == StateDown }) {
				t.Fatalf("session 1 still %v 10 s after its peer stopped", n.s[1].State())
			}
			took := n.now.Sub(stop)
			if took > c.detect || took < c.detect-c.interval {
				t.Errorf("down %v after the peer stopped, want within (%v, %v]", took, c.detect-c.interval, c.detect)
			}
			if n.s[1].Diag() != DiagControlDetectExpired {
				t.Errorf("diag %v, want control_detection_time_expired", n.s[1].Diag())
			}
		})
	}
}

// TestSessionPairRecoversAfterCut: a link cut takes both Down with Diag 1;
// once it is back both come Up and stay Up (no up/down loop).
func TestSessionPairRecoversAfterCut(t *testing.T) {
	cfg := Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}
	n := newSessionNet(cfg, cfg)
	if !n.runUntil(time.Second, n.bothUp) {
		t.Fatal("not up")
	}
	n.runFor(time.Second)
	n.cut = true
	n.runFor(2 * time.Second)
	for i, s := range n.s {
		if s.State() != StateDown || s.Diag() != DiagControlDetectExpired {
			t.Fatalf("session %d during the cut: %v %v, want down control_detection_time_expired", i, s.State(), s.Diag())
		}
	}
	n.cut = false
	if !n.runUntil(3*time.Second, n.bothUp) {
		t.Fatalf("not up again 3 s after the cut: %v %v", n.s[0].State(), n.s[1].State())
	}
	upAt := n.now
	n.runFor(20 * time.Second)
	if ch := n.changesSince(upAt); len(ch) > 0 {
		t.Errorf("changes after recovery: %+v", ch)
	}
}

// TestSessionPairReloadKeepsUp: timer changes while Up (what a reload
// does), with the first packet of the Poll Sequence lost, or the Finals
// lost for a while, never take the session down; P is on every packet of
// ours until an F arrives, and the new timers are in force after.
func TestSessionPairReloadKeepsUp(t *testing.T) {
	ms := time.Millisecond
	fast := Config{DesiredMinTx: 100 * ms, RequiredMinRx: 100 * ms, DetectMult: 3}
	for _, c := range []struct {
		name               string
		before, after      Config
		lose               string        // "first-poll" or "finals"
		wantTx, wantDetect time.Duration // session 0 after
		peerDetect         time.Duration // session 1 after
	}{
		{"min_tx up, first P lost", fast, Config{300 * ms, 100 * ms, 3}, "first-poll", 300 * ms, 300 * ms, 900 * ms},
		{"min_tx up, finals lost 2s", fast, Config{300 * ms, 100 * ms, 3}, "finals", 300 * ms, 300 * ms, 900 * ms},
		{"min_rx down, first P lost", Config{100 * ms, 300 * ms, 3}, fast, "first-poll", 100 * ms, 300 * ms, 300 * ms},
		{"min_tx down", Config{300 * ms, 100 * ms, 3}, fast, "first-poll", 100 * ms, 300 * ms, 300 * ms},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newSessionNet(c.before, fast)
			if !n.runUntil(time.Second, n.bothUp) {
				t.Fatal("not up")
			}
			n.runFor(5 * time.Second)
			reload := n.now
			lostPoll := false
			n.drop = func(from int, p *Packet) bool {
				switch {
				case c.lose == "first-poll" && from == 0 && p.Poll && !lostPoll:
					lostPoll = true
					return true
				case c.lose == "finals" && from == 1 && p.Final && n.now.Sub(reload) < 2*time.Second:
					return true
				}
				return false
			}
			n.s[0].SetConfig(c.after, n.now)
			n.runFor(10 * time.Second)
			if ch := n.changesSince(reload.Add(-time.Nanosecond)); len(ch) > 0 {
				t.Fatalf("state changes after the reload: %+v", ch)
			}
			// P on every periodic packet from the reload to the first F
			// heard, none after.
			var finalAt time.Time
			for _, s := range n.sent[1] {
				if s.p.Final && !s.at.Before(reload) && (c.lose != "finals" || s.at.Sub(reload) >= 2*time.Second) {
					finalAt = s.at.Add(n.latency)
					break
				}
			}
			if finalAt.IsZero() {
				t.Fatal("the peer never answered with F")
			}
			polls := 0
			for _, s := range n.sent[0] {
				if s.at.Before(reload) || s.p.Final {
					continue
				}
				if s.at.Before(finalAt) != s.p.Poll {
					t.Errorf("packet at +%v: P %v, F heard at +%v", s.at.Sub(reload), s.p.Poll, finalAt.Sub(reload))
				}
				if s.p.Poll {
					polls++
				}
			}
			if polls < 1 || (c.lose == "finals" && polls < 5) {
				t.Errorf("%d packets with P", polls)
			}
			if tx, d := n.s[0].Negotiated(); tx != c.wantTx || d != c.wantDetect {
				t.Errorf("session 0 after: tx %v detect %v, want %v %v", tx, d, c.wantTx, c.wantDetect)
			}
			if _, d := n.s[1].Negotiated(); d != c.peerDetect {
				t.Errorf("session 1 after: detect %v, want %v", d, c.peerDetect)
			}
		})
	}
}
