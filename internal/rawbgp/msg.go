// Package rawbgp is a raw BGP-4 peer for hostile-peer tests: it builds BGP
// messages byte by byte, sends them over a plain TCP connection to a real BGP
// speaker, and parses what the speaker sends back.
//
// Nothing here validates what a test builds. The builders write exactly the
// fields they are given, so a test can send what no real router would: wrong
// lengths, unknown well-known attributes, out-of-order attributes, OPENs with
// unsupported versions. The parsers, in contrast, are strict, because they
// check what the speaker under test sent.
//
// Only the standard library is used. Message formats follow RFC 4271 §4
// (BGP-4), RFC 6793 (4-octet AS numbers), RFC 4760 (multiprotocol
// extensions) and RFC 5492 (capabilities).
package rawbgp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Message header layout (RFC 4271 §4.1).
const (
	// MarkerLen is the length of the all-ones marker that opens every message.
	MarkerLen = 16
	// HeaderLen is the length of the message header: marker, 2-octet
	// length, 1-octet type.
	HeaderLen = 19
	// MaxMessageLen is the largest message BGP-4 allows without the Extended
	// Message capability (RFC 4271 §4.1; RFC 8654 raises it to 65535).
	MaxMessageLen = 4096
)

// Message types (RFC 4271 §4.1, RFC 2918).
const (
	MsgOpen         byte = 1
	MsgUpdate       byte = 2
	MsgNotification byte = 3
	MsgKeepalive    byte = 4
	MsgRouteRefresh byte = 5
)

// NOTIFICATION error codes (RFC 4271 §4.5).
const (
	CodeHeader       byte = 1 // Message Header Error
	CodeOpen         byte = 2 // OPEN Message Error
	CodeUpdate       byte = 3 // UPDATE Message Error
	CodeHoldTimer    byte = 4 // Hold Timer Expired
	CodeFSM          byte = 5 // Finite State Machine Error
	CodeCease        byte = 6 // Cease (subcodes in RFC 4486)
	CodeRouteRefresh byte = 7 // ROUTE-REFRESH Message Error (RFC 7313)
)

// Message Header Error subcodes (RFC 4271 §6.1).
const (
	SubHeaderNotSynchronized byte = 1 // Connection Not Synchronized (bad marker)
	SubHeaderBadLength       byte = 2 // Bad Message Length
	SubHeaderBadType         byte = 3 // Bad Message Type
)

// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492 §5).
const (
	SubOpenUnsupportedVersion    byte = 1
	SubOpenBadPeerAS             byte = 2
	SubOpenBadBGPID              byte = 3
	SubOpenUnsupportedOptParam   byte = 4
	SubOpenUnacceptableHoldTime  byte = 6
	SubOpenUnsupportedCapability byte = 7
	SubOpenRoleMismatch          byte = 11 // RFC 9234
)

// UPDATE Message Error subcodes (RFC 4271 §6.3).
const (
	SubUpdateMalformedAttrList     byte = 1
	SubUpdateUnrecognizedWellKnown byte = 2 // Unrecognized Well-known Attribute
	SubUpdateMissingWellKnown      byte = 3
	SubUpdateAttrFlags             byte = 4
	SubUpdateAttrLength            byte = 5
	SubUpdateInvalidOrigin         byte = 6
	SubUpdateInvalidNextHop        byte = 8
	SubUpdateOptionalAttr          byte = 9
	SubUpdateInvalidNetwork        byte = 10
	SubUpdateMalformedASPath       byte = 11
)

// Optional parameter types in an OPEN (RFC 5492 §4, RFC 9072).
const (
	ParamCapabilities byte = 2
	paramExtendedLen  byte = 255
)

// Capability codes (IANA "Capability Codes" registry).
const (
	CapCodeMP           byte = 1  // Multiprotocol Extensions, RFC 4760 §8
	CapCodeRouteRefresh byte = 2  // RFC 2918
	CapCodeExtendedMsg  byte = 6  // RFC 8654
	CapCodeGraceful     byte = 64 // Graceful Restart, RFC 4724
	CapCodeFourOctetAS  byte = 65 // RFC 6793
	CapCodeAddPath      byte = 69 // RFC 7911
)

// Address families (IANA AFI / SAFI registries).
const (
	AFIIPv4     uint16 = 1
	AFIIPv6     uint16 = 2
	SAFIUnicast uint8  = 1
)

// ASTrans is AS_TRANS (RFC 6793 §9): the 2-octet AS number a speaker whose
// AS is above 65535 puts in its OPEN's My Autonomous System field, and the
// stand-in for such an AS in 2-octet AS_PATHs.
const ASTrans = 23456

func marker(b []byte) {
	for i := range MarkerLen {
		b[i] = 0xff
	}
}

// Header returns a complete message: the 16-octet all-ones marker, the
// 2-octet total length (HeaderLen + len(body)), the type, then body
// (RFC 4271 §4.1). It panics if the total exceeds 65535 octets, which the
// length field cannot express; lengths above MaxMessageLen are written as
// they are.
func Header(typ byte, body []byte) []byte {
	n := HeaderLen + len(body)
	if n > 0xffff {
		panic(fmt.Sprintf("rawbgp: message of %d octets does not fit the 2-octet length field", n))
	}
	return HeaderWithLength(typ, uint16(n), body)
}

// HeaderWithLength is Header with the length field set to length whatever
// the real size is, for "Bad Message Length" cases and for messages whose
// length field promises more (or fewer) octets than follow.
func HeaderWithLength(typ byte, length uint16, body []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(body))
	marker(b)
	binary.BigEndian.PutUint16(b[MarkerLen:], length)
	b[MarkerLen+2] = typ
	return append(b, body...)
}

// Keepalive returns a KEEPALIVE message: a bare 19-octet header
// (RFC 4271 §4.4).
func Keepalive() []byte { return Header(MsgKeepalive, nil) }

// Notification returns a NOTIFICATION message with the given error code,
// subcode and data (RFC 4271 §4.5).
func Notification(code, subcode byte, data []byte) []byte {
	body := make([]byte, 0, 2+len(data))
	body = append(body, code, subcode)
	return Header(MsgNotification, append(body, data...))
}

// RouteRefresh returns a ROUTE-REFRESH message for afi/safi (RFC 2918 §3;
// the reserved octet is 0).
func RouteRefresh(afi uint16, safi uint8) []byte {
	return Header(MsgRouteRefresh, []byte{byte(afi >> 8), byte(afi), 0, safi})
}

// Open is an OPEN message (RFC 4271 §4.2) as the test wants to send it.
type Open struct {
	// Version is the BGP version; 0 means 4. To send a literal 0, patch
	// octet HeaderLen of the marshalled message.
	Version byte
	// MyAS is the 2-octet My Autonomous System field. A speaker whose AS is
	// above 65535 puts ASTrans here and its real AS in CapFourOctetAS;
	// an "OLD" speaker (RFC 6793 §2) sends no CapFourOctetAS at all.
	MyAS uint16
	// HoldTime is the proposed hold time in seconds; 0 (no keepalives) is
	// sent as 0, and so are the illegal values 1 and 2.
	HoldTime uint16
	// BGPID is the BGP Identifier, an IPv4 address. The zero netip.Addr is
	// written as 0.0.0.0 (which a speaker should reject, RFC 6286 §2.2);
	// an IPv6 address makes Marshal panic.
	BGPID netip.Addr
	// Caps are raw capability TLVs (code, length, value), as built by Cap,
	// CapMP, CapFourOctetAS and CapRouteRefresh, carried together in one
	// Capabilities optional parameter (RFC 5492 §4), or none if Caps is
	// empty. To spread them over several parameters, put
	// OptParam(ParamCapabilities, …) entries in Params instead.
	Caps [][]byte
	// Params are further raw optional parameters (type, length, value),
	// written after the capabilities, e.g. OptParam(1, …) for the
	// deprecated Authentication parameter.
	Params [][]byte
}

// Marshal returns the complete OPEN message, header included. The Optional
// Parameters Length octet is the sum of the parameters; it panics if that
// exceeds 255 (RFC 9072 extended parameters are not built).
func (o Open) Marshal() []byte {
	v := o.Version
	if v == 0 {
		v = 4
	}
	var id [4]byte
	if o.BGPID.IsValid() {
		a := o.BGPID.Unmap()
		if !a.Is4() {
			panic(fmt.Sprintf("rawbgp: BGP identifier %s is not an IPv4 address", o.BGPID))
		}
		id = a.As4()
	}
	var params []byte
	if len(o.Caps) > 0 {
		var caps []byte
		for _, c := range o.Caps {
			caps = append(caps, c...)
		}
		if len(caps) > 255 {
			panic(fmt.Sprintf("rawbgp: %d octets of capabilities do not fit one parameter", len(caps)))
		}
		params = OptParam(ParamCapabilities, caps)
	}
	for _, p := range o.Params {
		params = append(params, p...)
	}
	if len(params) > 255 {
		panic(fmt.Sprintf("rawbgp: %d octets of optional parameters do not fit the 1-octet length", len(params)))
	}
	body := make([]byte, 0, 10+len(params))
	body = append(body, v)
	body = binary.BigEndian.AppendUint16(body, o.MyAS)
	body = binary.BigEndian.AppendUint16(body, o.HoldTime)
	body = append(body, id[:]...)
	body = append(body, byte(len(params)))
	body = append(body, params...)
	return Header(MsgOpen, body)
}

// OptParam returns one raw OPEN optional parameter: type, 1-octet length,
// value (RFC 4271 §4.2). It panics if value exceeds 255 octets.
func OptParam(typ byte, value []byte) []byte {
	if len(value) > 255 {
		panic(fmt.Sprintf("rawbgp: optional parameter value of %d octets", len(value)))
	}
	return append([]byte{typ, byte(len(value))}, value...)
}

// Cap returns one raw capability TLV: code, 1-octet length, value
// (RFC 5492 §4). It panics if value exceeds 255 octets.
func Cap(code byte, value []byte) []byte {
	if len(value) > 255 {
		panic(fmt.Sprintf("rawbgp: capability value of %d octets", len(value)))
	}
	return append([]byte{code, byte(len(value))}, value...)
}

// CapMP returns the Multiprotocol Extensions capability for afi/safi:
// AFI (2 octets), reserved 0, SAFI (RFC 4760 §8).
func CapMP(afi uint16, safi uint8) []byte {
	return Cap(CapCodeMP, []byte{byte(afi >> 8), byte(afi), 0, safi})
}

// CapFourOctetAS returns the Support for 4-octet AS number capability
// carrying asn (RFC 6793 §3).
func CapFourOctetAS(asn uint32) []byte {
	return Cap(CapCodeFourOctetAS, binary.BigEndian.AppendUint32(nil, asn))
}

// CapRouteRefresh returns the Route Refresh capability (RFC 2918 §2), which
// has no value.
func CapRouteRefresh() []byte { return Cap(CapCodeRouteRefresh, nil) }

// UpdateMsg returns a complete UPDATE message from its three raw sections
// (RFC 4271 §4.3): withdrawn routes (concatenated Prefix encodings),
// path attributes (concatenated Attr encodings) and NLRI (concatenated
// Prefix encodings). The two length fields are computed; it panics if a
// section exceeds 65535 octets. For lengths that lie, build the body
// yourself and use Header.
func UpdateMsg(withdrawn []byte, attrs []byte, nlri []byte) []byte {
	if len(withdrawn) > 0xffff || len(attrs) > 0xffff {
		panic("rawbgp: UPDATE section exceeds 65535 octets")
	}
	body := make([]byte, 0, 4+len(withdrawn)+len(attrs)+len(nlri))
	body = binary.BigEndian.AppendUint16(body, uint16(len(withdrawn)))
	body = append(body, withdrawn...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
	body = append(body, attrs...)
	body = append(body, nlri...)
	return Header(MsgUpdate, body)
}

// EndOfRIB returns the End-of-RIB marker for IPv4 unicast, an UPDATE with
// no withdrawn routes, attributes or NLRI (RFC 4724 §2).
func EndOfRIB() []byte { return UpdateMsg(nil, nil, nil) }

// Join concatenates byte slices, e.g. attributes for UpdateMsg.
func Join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
