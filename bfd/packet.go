package bfd

// The codec of the BFD Control packet without authentication (RFC 5880
// §4.1), 24 bytes in network byte order:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |  bytes 0-3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       My Discriminator                        |  bytes 4-7
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Your Discriminator                       |  bytes 8-11
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Desired Min TX Interval                    |  bytes 12-15, µs
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   Required Min RX Interval                    |  bytes 16-19, µs
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Required Min Echo RX Interval                 |  bytes 20-23, µs
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Both directions are pure functions of their arguments: no allocation, no
// clock, no state, so the packet loop can call them for every packet.

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// MaxInterval is the longest interval a Control packet can carry: 2^32-1
// µs (RFC 5880 §4.1, 32-bit unsigned microseconds), about 71 minutes 35 s.
const MaxInterval = time.Duration(math.MaxUint32) * time.Microsecond

// authMinLen is the least Length with the A bit set: the 24-byte header
// plus the Auth Type and Auth Len bytes of the Authentication Section
// (RFC 5880 §4.1, §6.8.6).
const authMinLen = HeaderLen + 2

// The bits of byte 1 after the 2-bit state (RFC 5880 §4.1): P F C A D M.
const (
	bitPoll       = 1 << 5
	bitFinal      = 1 << 4
	bitCPI        = 1 << 3
	bitAuth       = 1 << 2
	bitDemand     = 1 << 1
	bitMultipoint = 1 << 0
)

// maxDiag is the largest value of the 5-bit Diag field; 9-31 are reserved
// (RFC 5880 §4.1) but are carried as they are.
const maxDiag = 1<<5 - 1

// The reception checks of RFC 5880 §6.8.6 that need no session, one
// sentinel each, in the order Unmarshal applies them (the RFC's order; the
// A bit, last in the RFC after the session lookup, is checked here too
// since no session has authentication). A packet that fails one MUST be
// discarded; compare with errors.Is or ==. Marshal returns the same error
// for a Packet it would have to encode into a packet a receiver discards.
var (
	// ErrShort: the UDP payload is shorter than HeaderLen (24 bytes), so
	// its Length field is either below the minimum correct value or
	// greater than the payload, and RFC 5880 §6.8.6 discards the packet
	// in both cases (see ErrLength and ErrTruncated); checked first, as no
	// field can be read before. From Marshal: the buffer is shorter than
	// HeaderLen.
	ErrShort = errors.New("bfd: shorter than a 24-byte control packet")

	// ErrVersion: RFC 5880 §6.8.6, a packet whose version number is not
	// the correct one (1) is discarded.
	ErrVersion = errors.New("bfd: version is not 1")

	// ErrLength: RFC 5880 §6.8.6, a packet whose Length field is below the
	// minimum correct value (24 with the A bit clear, 26 with it set) is
	// discarded.
	ErrLength = errors.New("bfd: length field below the minimum")

	// ErrTruncated: RFC 5880 §6.8.6, a packet whose Length field is
	// greater than the payload of the encapsulating protocol (the UDP
	// datagram) is discarded.
	ErrTruncated = errors.New("bfd: length field beyond the UDP payload")

	// ErrDetectMult: RFC 5880 §6.8.6, a packet whose Detect Mult field is
	// zero is discarded.
	ErrDetectMult = errors.New("bfd: detect multiplier is zero")

	// ErrMultipoint: RFC 5880 §6.8.6, a packet with the Multipoint (M) bit
	// set is discarded (§4.1: it must be zero on transmit and on receipt).
	ErrMultipoint = errors.New("bfd: multipoint bit set")

	// ErrMyDiscriminator: RFC 5880 §6.8.6, a packet whose My Discriminator
	// field is zero is discarded.
	ErrMyDiscriminator = errors.New("bfd: my discriminator is zero")

	// ErrYourDiscriminator: RFC 5880 §6.8.6, a packet whose Your
	// Discriminator field is zero while its State field is neither Down nor
	// AdminDown is discarded.
	ErrYourDiscriminator = errors.New("bfd: your discriminator is zero in state init or up")

	// ErrAuthUnsupported: RFC 5880 §6.8.6, a packet with the A bit set is
	// discarded when no authentication is in use (bfd.AuthType zero),
	// which is always the case here. From Marshal: AuthPresent is set.
	ErrAuthUnsupported = errors.New("bfd: authentication present but not in use")
)

// Errors of Marshal only: a Packet whose fields do not fit the wire format.
var (
	// ErrInterval: an interval is negative or longer than MaxInterval
	// (the fields are 32-bit unsigned microseconds, RFC 5880 §4.1).
	ErrInterval = errors.New("bfd: interval negative or above 2^32-1 µs")

	// ErrField: State is above 3 (2-bit Sta field) or Diag above 31
	// (5-bit Diag field), RFC 5880 §4.1.
	ErrField = errors.New("bfd: state or diagnostic does not fit its field")
)

// Marshal writes p as a Control packet without authentication (RFC 5880
// §4.1) into b[0:24] and returns HeaderLen. It writes Version 1 and Length
// HeaderLen whatever p.Version and p.Length hold, and each interval in
// whole microseconds, truncating any remainder below a microsecond.
//
// It refuses, with b untouched and n 0, what it cannot encode (a b shorter
// than HeaderLen: ErrShort; an interval below zero or above MaxInterval:
// ErrInterval; State above 3 or Diag above 31: ErrField) and what a
// receiver would discard under RFC 5880 §6.8.6 (DetectMult 0:
// ErrDetectMult; Multipoint: ErrMultipoint; MyDiscriminator 0:
// ErrMyDiscriminator; YourDiscriminator 0 in Init or Up:
// ErrYourDiscriminator; AuthPresent: ErrAuthUnsupported). So whatever
// Marshal writes, Unmarshal accepts and decodes back to p (up to the
// truncation, Version and Length). Reserved Diag values (9-31), a zero
// Desired Min TX Interval (reserved, §4.1) and the Demand bit are written
// as given: the session never sets them. No allocation.
func (p *Packet) Marshal(b []byte) (int, error) {
	if len(b) < HeaderLen {
		return 0, ErrShort
	}
	if p.State > StateUp || p.Diag > maxDiag {
		return 0, ErrField
	}
	tx, okTx := micros(p.DesiredMinTxInterval)
	rx, okRx := micros(p.RequiredMinRxInterval)
	echo, okEcho := micros(p.RequiredMinEchoRxInterval)
	if !okTx || !okRx || !okEcho {
		return 0, ErrInterval
	}
	switch {
	case p.DetectMult == 0:
		return 0, ErrDetectMult
	case p.Multipoint:
		return 0, ErrMultipoint
	case p.MyDiscriminator == 0:
		return 0, ErrMyDiscriminator
	case p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown:
		return 0, ErrYourDiscriminator
	case p.AuthPresent:
		return 0, ErrAuthUnsupported
	}

	b = b[:HeaderLen]
	b[0] = Version<<5 | byte(p.Diag)
	flags := byte(p.State) << 6
	if p.Poll {
		flags |= bitPoll
	}
	if p.Final {
		flags |= bitFinal
	}
	if p.CPI {
		flags |= bitCPI
	}
	if p.Demand {
		flags |= bitDemand
	}
	b[1] = flags
	b[2] = p.DetectMult
	b[3] = HeaderLen
	binary.BigEndian.PutUint32(b[4:8], p.MyDiscriminator)
	binary.BigEndian.PutUint32(b[8:12], p.YourDiscriminator)
	binary.BigEndian.PutUint32(b[12:16], tx)
	binary.BigEndian.PutUint32(b[16:20], rx)
	binary.BigEndian.PutUint32(b[20:24], echo)
	return HeaderLen, nil
}

// micros is d in whole microseconds, truncated, and whether it fits the
// 32-bit unsigned field.
func micros(d time.Duration) (uint32, bool) {
	if d < 0 || d > MaxInterval {
		return 0, false
	}
	return uint32(d / time.Microsecond), true
}

// Unmarshal decodes b, the payload of one UDP datagram, as a Control packet
// (RFC 5880 §4.1) into p, after the reception checks of RFC 5880 §6.8.6
// that need no session, in the RFC's order: ErrShort, ErrVersion,
// ErrLength, ErrTruncated, ErrDetectMult, ErrMultipoint,
// ErrMyDiscriminator, ErrYourDiscriminator, ErrAuthUnsupported. The first
// that fails is returned and p is left as it was. Selecting the session (by
// Your Discriminator, else by addresses) and everything after it in §6.8.6
// is the caller's.
//
// Bytes after Length are not part of the packet (§4.1: Length is the
// length of the Control packet) and are ignored: §6.8.6 discards a packet
// whose Length is greater than the payload, never one whose payload is
// longer. Likewise bytes 24 to Length-1 of a packet without the A bit. On
// success every field of p is set: Version 1, Length as read, intervals as
// durations (whole microseconds, 0 to MaxInterval). No allocation.
func Unmarshal(b []byte, p *Packet) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	flags := b[1]
	auth := flags&bitAuth != 0
	length := b[3]
	state := State(flags >> 6)
	your := binary.BigEndian.Uint32(b[8:12])
	switch {
	case b[0]>>5 != Version:
		return ErrVersion
	case length < HeaderLen || auth && length < authMinLen:
		return ErrLength
	case int(length) > len(b):
		return ErrTruncated
	case b[2] == 0:
		return ErrDetectMult
	case flags&bitMultipoint != 0:
		return ErrMultipoint
	case binary.BigEndian.Uint32(b[4:8]) == 0:
		return ErrMyDiscriminator
	case your == 0 && state != StateDown && state != StateAdminDown:
		return ErrYourDiscriminator
	case auth:
		return ErrAuthUnsupported
	}

	*p = Packet{
		Version:                   Version,
		Diag:                      Diag(b[0] & maxDiag),
		State:                     state,
		Poll:                      flags&bitPoll != 0,
		Final:                     flags&bitFinal != 0,
		CPI:                       flags&bitCPI != 0,
		Demand:                    flags&bitDemand != 0,
		DetectMult:                b[2],
		Length:                    length,
		MyDiscriminator:           binary.BigEndian.Uint32(b[4:8]),
		YourDiscriminator:         your,
		DesiredMinTxInterval:      duration(b[12:16]),
		RequiredMinRxInterval:     duration(b[16:20]),
		RequiredMinEchoRxInterval: duration(b[20:24]),
	}
	return nil
}

// duration reads a 32-bit big-endian count of microseconds.
func duration(b []byte) time.Duration {
	return time.Duration(binary.BigEndian.Uint32(b)) * time.Microsecond
}
