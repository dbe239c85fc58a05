// Package bfd is Bidirectional Forwarding Detection (RFC 5880) in
// asynchronous mode, for single-hop (RFC 5881, UDP port 3784, TTL 255) and
// multihop (RFC 5883, UDP port 4784) sessions over IPv4 and IPv6: its own
// codec, a pure per-session state machine with the RFC's timers, and a
// packet loop that never allocates per packet. No echo, no demand mode, no
// authentication (a packet with the A bit is discarded).
package bfd

import (
	"net/netip"
	"time"
)

// State is a session state (RFC 5880 §4.1, the Sta field).
type State uint8

// The session states, with their wire values.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "admin-down"
	case StateDown:
		return "down"
	case StateInit:
		return "init"
	case StateUp:
		return "up"
	}
	return "invalid"
}

// Diag is a diagnostic code (RFC 5880 §4.1, the Diag field): why the
// session last left Up.
type Diag uint8

// The diagnostic codes of RFC 5880 §4.1.
const (
	DiagNone                  Diag = 0 // No Diagnostic
	DiagControlDetectExpired  Diag = 1 // Control Detection Time Expired
	DiagEchoFailed            Diag = 2 // Echo Function Failed
	DiagNeighborSignaledDown  Diag = 3 // Neighbor Signaled Session Down
	DiagForwardingPlaneReset  Diag = 4 // Forwarding Plane Reset
	DiagPathDown              Diag = 5 // Path Down
	DiagConcatenatedPathDown  Diag = 6 // Concatenated Path Down
	DiagAdministrativelyDown  Diag = 7 // Administratively Down
	DiagReverseConcatPathDown Diag = 8 // Reverse Concatenated Path Down
)

// String gives the RFC's name in the style of metric labels:
// "control_detection_time_expired".
func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "none"
	case DiagControlDetectExpired:
		return "control_detection_time_expired"
	case DiagEchoFailed:
		return "echo_function_failed"
	case DiagNeighborSignaledDown:
		return "neighbor_signaled_session_down"
	case DiagForwardingPlaneReset:
		return "forwarding_plane_reset"
	case DiagPathDown:
		return "path_down"
	case DiagConcatenatedPathDown:
		return "concatenated_path_down"
	case DiagAdministrativelyDown:
		return "administratively_down"
	case DiagReverseConcatPathDown:
		return "reverse_concatenated_path_down"
	}
	return "reserved"
}

// Packet is a BFD Control packet (RFC 5880 §4.1) without authentication.
// Intervals are durations on the wire in whole microseconds (RFC 5880
// §4.1: 32-bit unsigned µs); Marshal truncates below a microsecond and
// refuses what does not fit.
type Packet struct {
	Version     uint8 // 1
	Diag        Diag
	State       State
	Poll        bool // P
	Final       bool // F
	CPI         bool // C: Control Plane Independent
	AuthPresent bool // A
	Demand      bool // D
	Multipoint  bool // M (must be zero)
	DetectMult  uint8
	// Length is the length of the BFD Control packet in bytes, as read
	// (Marshal writes HeaderLen).
	Length                    uint8
	MyDiscriminator           uint32
	YourDiscriminator         uint32
	DesiredMinTxInterval      time.Duration
	RequiredMinRxInterval     time.Duration
	RequiredMinEchoRxInterval time.Duration
}

// HeaderLen is the length of a Control packet without authentication.
const HeaderLen = 24

// Version is the protocol version of RFC 5880.
const Version = 1

// The UDP ports (RFC 5881 §4, RFC 5883 §2) and the source port range
// (RFC 5881 §4).
const (
	PortSingleHop = 3784
	PortMultihop  = 4784
	SourcePortMin = 49152
	SourcePortMax = 65535
	SingleHopTTL  = 255 // RFC 5881 §5: sent with, and received only with
)

// PeerKey names a session: the peer's address, our address (zero: any
// of ours) and whether it is a multihop session (RFC 5883).
type PeerKey struct {
	Peer, Local netip.Addr
	Multihop    bool
}

// Change is one state change of a session, as the Manager reports it.
type Change struct {
	Key      PeerKey
	From, To State
	// Diag is the local diagnostic after the change (why it left Up:
	// DiagControlDetectExpired, DiagNeighborSignaledDown, ...).
	Diag Diag
	// Remote is the peer's state as last received (StateAdminDown: the
	// peer took the session down on purpose, which RFC 5882 §3.2 says a
	// client must not treat as a failure).
	Remote State
	// PeerNewSession: the packet that took the session down came from a
	// new session of the peer (another My Discriminator than the one it
	// was Up with): the peer recreated its session (FRR's bgpd does once
	// the BGP session is up and its local address known; a restarted
	// bfdd), which tells nothing of the forwarding path.
	PeerNewSession bool
	Time           time.Time
}
