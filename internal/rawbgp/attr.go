package rawbgp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Path attribute flags, the first octet of an attribute (RFC 4271 §4.3).
const (
	Optional       byte = 0x80
	Transitive     byte = 0x40
	Partial        byte = 0x20
	ExtendedLength byte = 0x10
)

// Path attribute type codes (RFC 4271 §5, RFC 1997, RFC 4760, RFC 6793).
const (
	AttrOrigin      byte = 1
	AttrASPath      byte = 2
	AttrNextHop     byte = 3
	AttrMED         byte = 4
	AttrLocalPref   byte = 5
	AttrCommunities byte = 8
	AttrMPReach     byte = 14
	AttrMPUnreach   byte = 15
	AttrAS4Path     byte = 17
)

// ORIGIN values (RFC 4271 §5.1.1).
const (
	OriginIGP        byte = 0
	OriginEGP        byte = 1
	OriginIncomplete byte = 2
)

// AS_PATH segment types (RFC 4271 §4.3).
const (
	ASSet      byte = 1
	ASSequence byte = 2
)

// Segment is one AS_PATH / AS4_PATH segment: its type (ASSet or ASSequence,
// or anything else for malformed paths) and its AS numbers in path order.
type Segment struct {
	Type byte
	ASNs []uint32
}

// Seq returns an AS_SEQUENCE segment of asns.
func Seq(asns ...uint32) Segment { return Segment{Type: ASSequence, ASNs: asns} }

// Set returns an AS_SET segment of asns.
func Set(asns ...uint32) Segment { return Segment{Type: ASSet, ASNs: asns} }

// Attr returns one raw path attribute: flags, type, length, value
// (RFC 4271 §4.3). The length is 2 octets, and the ExtendedLength flag is
// set, when value exceeds 255 octets or flags already has ExtendedLength;
// otherwise it is 1 octet. It panics if value exceeds 65535 octets.
func Attr(flags, typ byte, value []byte) []byte {
	if len(value) > 0xffff {
		panic(fmt.Sprintf("rawbgp: attribute value of %d octets", len(value)))
	}
	return AttrWithLength(flags, typ, uint16(len(value)), value)
}

// AttrWithLength is Attr with the length field set to length whatever
// len(value) is, for attributes that overrun (or underrun) their message.
// The length is 2 octets when length > 255 or flags has ExtendedLength.
func AttrWithLength(flags, typ byte, length uint16, value []byte) []byte {
	var b []byte
	if length > 255 || flags&ExtendedLength != 0 {
		b = make([]byte, 4, 4+len(value))
		b[0], b[1] = flags|ExtendedLength, typ
		binary.BigEndian.PutUint16(b[2:], length)
	} else {
		b = make([]byte, 3, 3+len(value))
		b[0], b[1], b[2] = flags, typ, byte(length)
	}
	return append(b, value...)
}

// Origin returns an ORIGIN attribute (well-known mandatory, RFC 4271
// §5.1.1); v is written as given, so values above 2 are malformed.
func Origin(v byte) []byte { return Attr(Transitive, AttrOrigin, []byte{v}) }

// appendSegments encodes segments with asLen-octet AS numbers. ASNs that do
// not fit 2 octets are written as ASTrans.
func appendSegments(b []byte, asLen int, segs []Segment) []byte {
	for _, s := range segs {
		if len(s.ASNs) > 255 {
			panic(fmt.Sprintf("rawbgp: AS path segment of %d ASNs; split it", len(s.ASNs)))
		}
		b = append(b, s.Type, byte(len(s.ASNs)))
		for _, as := range s.ASNs {
			if asLen == 2 {
				if as > 0xffff {
					as = ASTrans
				}
				b = binary.BigEndian.AppendUint16(b, uint16(as))
			} else {
				b = binary.BigEndian.AppendUint32(b, as)
			}
		}
	}
	return b
}

// ASPath2 returns an AS_PATH attribute (well-known mandatory, RFC 4271
// §5.1.2) with 2-octet AS numbers, as sent by or to an OLD speaker
// (RFC 6793 §4.2.2); AS numbers above 65535 are written as ASTrans. With no
// segments it is the empty AS_PATH of a route originated inside an AS.
// Segments of more than 255 ASNs panic.
func ASPath2(segs ...Segment) []byte {
	return Attr(Transitive, AttrASPath, appendSegments(nil, 2, segs))
}

// ASPath4 returns an AS_PATH attribute with 4-octet AS numbers, as sent
// between NEW speakers (RFC 6793 §4.1).
func ASPath4(segs ...Segment) []byte {
	return Attr(Transitive, AttrASPath, appendSegments(nil, 4, segs))
}

// AS4Path returns an AS4_PATH attribute (optional transitive, type 17,
// 4-octet AS numbers, RFC 6793 §3), which a NEW speaker adds next to a
// 2-octet AS_PATH towards an OLD one.
func AS4Path(segs ...Segment) []byte {
	return Attr(Optional|Transitive, AttrAS4Path, appendSegments(nil, 4, segs))
}

// NextHop returns a NEXT_HOP attribute (well-known mandatory, RFC 4271
// §5.1.3) holding addr's octets: 4 for IPv4, 16 for IPv6 (malformed: a
// NEXT_HOP must be 4 octets), none for the zero Addr.
func NextHop(addr netip.Addr) []byte {
	var v []byte
	if addr.IsValid() {
		v = addr.AsSlice()
	}
	return Attr(Transitive, AttrNextHop, v)
}

// MED returns a MULTI_EXIT_DISC attribute (optional non-transitive,
// RFC 4271 §5.1.4).
func MED(v uint32) []byte {
	return Attr(Optional, AttrMED, binary.BigEndian.AppendUint32(nil, v))
}

// LocalPref returns a LOCAL_PREF attribute (well-known, iBGP only,
// RFC 4271 §5.1.5).
func LocalPref(v uint32) []byte {
	return Attr(Transitive, AttrLocalPref, binary.BigEndian.AppendUint32(nil, v))
}

// Communities returns a COMMUNITIES attribute (optional transitive,
// RFC 1997) with each community as a 32-bit value (ASN<<16 | value).
func Communities(cs ...uint32) []byte {
	v := make([]byte, 0, 4*len(cs))
	for _, c := range cs {
		v = binary.BigEndian.AppendUint32(v, c)
	}
	return Attr(Optional|Transitive, AttrCommunities, v)
}

// MPReach returns an MP_REACH_NLRI attribute (optional non-transitive,
// RFC 4760 §3): AFI, SAFI, next-hop length and next hop, a reserved 0
// octet, then nlri (concatenated Prefix encodings). For IPv6 unicast the
// next hop is 16 octets (global) or 32 (global + link-local, RFC 2545 §3).
func MPReach(afi uint16, safi uint8, nexthop []byte, nlri []byte) []byte {
	if len(nexthop) > 255 {
		panic(fmt.Sprintf("rawbgp: MP_REACH next hop of %d octets", len(nexthop)))
	}
	v := make([]byte, 0, 5+len(nexthop)+len(nlri))
	v = binary.BigEndian.AppendUint16(v, afi)
	v = append(v, safi, byte(len(nexthop)))
	v = append(v, nexthop...)
	v = append(v, 0)
	v = append(v, nlri...)
	return Attr(Optional, AttrMPReach, v)
}

// MPUnreach returns an MP_UNREACH_NLRI attribute (optional non-transitive,
// RFC 4760 §4): AFI, SAFI, then withdrawn (concatenated Prefix encodings).
// With no withdrawn routes it is the End-of-RIB marker of afi/safi when it
// is an UPDATE's only attribute (RFC 4724 §2).
func MPUnreach(afi uint16, safi uint8, withdrawn []byte) []byte {
	v := make([]byte, 0, 3+len(withdrawn))
	v = binary.BigEndian.AppendUint16(v, afi)
	v = append(v, safi)
	v = append(v, withdrawn...)
	return Attr(Optional, AttrMPUnreach, v)
}

// Prefix returns the NLRI encoding of p (RFC 4271 §4.3, RFC 4760 §5): one
// octet of prefix length in bits, then the fewest octets that hold that
// many bits, host bits zeroed. It panics on an invalid prefix.
func Prefix(p netip.Prefix) []byte {
	if !p.IsValid() {
		panic(fmt.Sprintf("rawbgp: invalid prefix %v", p))
	}
	p = p.Masked()
	bits := p.Bits()
	n := (bits + 7) / 8
	b := make([]byte, 0, 1+n)
	b = append(b, byte(bits))
	return append(b, p.Addr().AsSlice()[:n]...)
}

// Prefixes concatenates the NLRI encodings of ps.
func Prefixes(ps ...netip.Prefix) []byte {
	var b []byte
	for _, p := range ps {
		b = append(b, Prefix(p)...)
	}
	return b
}
