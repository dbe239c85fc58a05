package rawbgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// ErrMalformed is wrapped by every error about a message the speaker sent
// that does not parse.
var ErrMalformed = errors.New("rawbgp: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Message is one received BGP message: its type (MsgOpen, …) and the octets
// after the 19-octet header.
type Message struct {
	Type byte
	Body []byte
}

// String names the type and the body length; for a NOTIFICATION it adds
// the code and subcode.
func (m Message) String() string {
	name := typeName(m.Type)
	if m.Type == MsgNotification {
		if code, sub, _, err := ParseNotification(m.Body); err == nil {
			return fmt.Sprintf("NOTIFICATION %d/%d (%s)", code, sub, codeName(code))
		}
	}
	return fmt.Sprintf("%s (%d-octet body)", name, len(m.Body))
}

func typeName(t byte) string {
	switch t {
	case MsgOpen:
		return "OPEN"
	case MsgUpdate:
		return "UPDATE"
	case MsgNotification:
		return "NOTIFICATION"
	case MsgKeepalive:
		return "KEEPALIVE"
	case MsgRouteRefresh:
		return "ROUTE-REFRESH"
	}
	return fmt.Sprintf("type-%d", t)
}

func codeName(c byte) string {
	switch c {
	case CodeHeader:
		return "Message Header Error"
	case CodeOpen:
		return "OPEN Message Error"
	case CodeUpdate:
		return "UPDATE Message Error"
	case CodeHoldTimer:
		return "Hold Timer Expired"
	case CodeFSM:
		return "Finite State Machine Error"
	case CodeCease:
		return "Cease"
	case CodeRouteRefresh:
		return "ROUTE-REFRESH Message Error"
	}
	return "unknown error code"
}

// minLen is the smallest legal total length of each known message type
// (RFC 4271 §4.2–4.5, RFC 2918 §3).
var minLen = map[byte]int{
	MsgOpen:         29,
	MsgUpdate:       23,
	MsgNotification: 21,
	MsgKeepalive:    19,
	MsgRouteRefresh: 23,
}

// parseHeader checks a 19-octet header and returns the type and the total
// message length.
func parseHeader(h []byte) (typ byte, length int, err error) {
	for _, c := range h[:MarkerLen] {
		if c != 0xff {
			return 0, 0, malformed("marker is not all ones: % x", h[:MarkerLen])
		}
	}
	length = int(binary.BigEndian.Uint16(h[MarkerLen:]))
	typ = h[MarkerLen+2]
	if length < HeaderLen {
		return 0, 0, malformed("length %d is shorter than the header", length)
	}
	if least, ok := minLen[typ]; ok && length < least {
		return 0, 0, malformed("%s of length %d, minimum is %d", typeName(typ), length, least)
	}
	if typ == MsgKeepalive && length != HeaderLen {
		return 0, 0, malformed("KEEPALIVE of length %d", length)
	}
	return typ, length, nil
}

// ReadMessage reads one message from r. It checks the marker and that the
// length field covers at least the header and the fixed part of known
// message types (a KEEPALIVE must be exactly 19 octets); it does not enforce
// MaxMessageLen, since the Extended Message capability may be in force.
// Errors about the bytes wrap ErrMalformed; a stream that ends inside a
// message gives io.ErrUnexpectedEOF and one that ends between messages
// io.EOF.
func ReadMessage(r io.Reader) (Message, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Message{}, err
	}
	typ, length, err := parseHeader(h[:])
	if err != nil {
		return Message{}, err
	}
	body := make([]byte, length-HeaderLen)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, err
	}
	return Message{Type: typ, Body: body}, nil
}

// NotificationError is a NOTIFICATION received from the speaker
// (RFC 4271 §4.5). It is returned as an error by the Peer methods that
// expected something else.
type NotificationError struct {
	Code, Subcode byte
	Data          []byte
}

func (n *NotificationError) Error() string {
	return fmt.Sprintf("rawbgp: speaker sent NOTIFICATION %d/%d (%s), data % x",
		n.Code, n.Subcode, codeName(n.Code), n.Data)
}

// ParseNotification splits a NOTIFICATION body into error code, subcode
// and data (RFC 4271 §4.5).
func ParseNotification(body []byte) (code, subcode byte, data []byte, err error) {
	if len(body) < 2 {
		return 0, 0, nil, malformed("NOTIFICATION body of %d octets", len(body))
	}
	return body[0], body[1], body[2:], nil
}

// Capability is one capability TLV from an OPEN (RFC 5492 §4).
type Capability struct {
	Code  byte
	Value []byte
}

// Param is one OPEN optional parameter other than Capabilities.
type Param struct {
	Type  byte
	Value []byte
}

// OpenInfo is a parsed OPEN message (RFC 4271 §4.2).
type OpenInfo struct {
	Version  byte
	MyAS     uint16 // ASTrans when the AS is above 65535
	HoldTime uint16 // seconds
	BGPID    netip.Addr
	// Caps are the capabilities of all Capabilities parameters, in order.
	Caps []Capability
	// Params are the other optional parameters.
	Params []Param
}

// Cap returns the value of the first capability with the given code.
func (o OpenInfo) Cap(code byte) ([]byte, bool) {
	for _, c := range o.Caps {
		if c.Code == code {
			return c.Value, true
		}
	}
	return nil, false
}

// FourOctetAS returns the AS of the 4-octet AS capability (RFC 6793 §3),
// if present and well-formed.
func (o OpenInfo) FourOctetAS() (uint32, bool) {
	v, ok := o.Cap(CapCodeFourOctetAS)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// AS returns the speaker's AS: the 4-octet AS capability's if present,
// otherwise MyAS.
func (o OpenInfo) AS() uint32 {
	if as, ok := o.FourOctetAS(); ok {
		return as
	}
	return uint32(o.MyAS)
}

// HasMP reports whether the OPEN carries the Multiprotocol capability for
// afi/safi (RFC 4760 §8).
func (o OpenInfo) HasMP(afi uint16, safi uint8) bool {
	for _, c := range o.Caps {
		if c.Code == CapCodeMP && len(c.Value) == 4 &&
			binary.BigEndian.Uint16(c.Value) == afi && c.Value[3] == safi {
			return true
		}
	}
	return false
}

// ParseOpen parses an OPEN body, including RFC 9072 extended optional
// parameters.
func ParseOpen(body []byte) (OpenInfo, error) {
	if len(body) < 10 {
		return OpenInfo{}, malformed("OPEN body of %d octets", len(body))
	}
	o := OpenInfo{
		Version:  body[0],
		MyAS:     binary.BigEndian.Uint16(body[1:]),
		HoldTime: binary.BigEndian.Uint16(body[3:]),
		BGPID:    netip.AddrFrom4([4]byte(body[5:9])),
	}
	plen, rest := int(body[9]), body[10:]
	ext := false
	if plen == 255 && len(rest) >= 3 && rest[0] == paramExtendedLen {
		ext = true
		plen, rest = int(binary.BigEndian.Uint16(rest[1:])), rest[3:]
	}
	if plen != len(rest) {
		return OpenInfo{}, malformed("OPEN optional parameters length %d, %d octets follow", plen, len(rest))
	}
	for len(rest) > 0 {
		hl := 2
		if ext {
			hl = 3
		}
		if len(rest) < hl {
			return OpenInfo{}, malformed("truncated OPEN optional parameter")
		}
		typ, n := rest[0], int(rest[1])
		if ext {
			n = int(binary.BigEndian.Uint16(rest[1:]))
		}
		if len(rest) < hl+n {
			return OpenInfo{}, malformed("OPEN optional parameter %d overruns: length %d", typ, n)
		}
		v := rest[hl : hl+n]
		rest = rest[hl+n:]
		if typ != ParamCapabilities {
			o.Params = append(o.Params, Param{Type: typ, Value: v})
			continue
		}
		for len(v) > 0 {
			if len(v) < 2 || len(v) < 2+int(v[1]) {
				return OpenInfo{}, malformed("capability TLV overruns its parameter")
			}
			o.Caps = append(o.Caps, Capability{Code: v[0], Value: v[2 : 2+int(v[1])]})
			v = v[2+int(v[1]):]
		}
	}
	return o, nil
}

// PathAttr is one path attribute of a received UPDATE (RFC 4271 §4.3).
type PathAttr struct {
	Flags, Type byte
	Value       []byte
}

// Update is a parsed UPDATE message (RFC 4271 §4.3). Withdrawn and NLRI are
// the IPv4 prefixes of the fixed sections; other families travel in the
// MP_REACH_NLRI / MP_UNREACH_NLRI attributes. ADD-PATH encodings
// (RFC 7911) are not supported.
type Update struct {
	Withdrawn []netip.Prefix
	Attrs     []PathAttr
	NLRI      []netip.Prefix
}

// Attr returns the first attribute of type typ.
func (u Update) Attr(typ byte) (PathAttr, bool) {
	for _, a := range u.Attrs {
		if a.Type == typ {
			return a, true
		}
	}
	return PathAttr{}, false
}

// MPReach parses the MP_REACH_NLRI attribute, if any.
func (u Update) MPReach() (MPNLRI, bool, error) {
	a, ok := u.Attr(AttrMPReach)
	if !ok {
		return MPNLRI{}, false, nil
	}
	m, err := ParseMPReach(a.Value)
	return m, true, err
}

// MPUnreach parses the MP_UNREACH_NLRI attribute, if any.
func (u Update) MPUnreach() (MPNLRI, bool, error) {
	a, ok := u.Attr(AttrMPUnreach)
	if !ok {
		return MPNLRI{}, false, nil
	}
	m, err := ParseMPUnreach(a.Value)
	return m, true, err
}

// Announced returns every prefix the UPDATE announces: the IPv4 NLRI
// followed by the MP_REACH_NLRI prefixes (IPv6 included).
func (u Update) Announced() ([]netip.Prefix, error) {
	m, _, err := u.MPReach()
	if err != nil {
		return nil, err
	}
	return append(append([]netip.Prefix(nil), u.NLRI...), m.Prefixes...), nil
}

// AllWithdrawn returns every prefix the UPDATE withdraws: the IPv4
// withdrawn routes followed by the MP_UNREACH_NLRI prefixes.
func (u Update) AllWithdrawn() ([]netip.Prefix, error) {
	m, _, err := u.MPUnreach()
	if err != nil {
		return nil, err
	}
	return append(append([]netip.Prefix(nil), u.Withdrawn...), m.Prefixes...), nil
}

// IsEndOfRIB reports whether the UPDATE is an End-of-RIB marker
// (RFC 4724 §2): empty for IPv4 unicast, or a lone empty MP_UNREACH_NLRI.
func (u Update) IsEndOfRIB() bool {
	if len(u.Withdrawn) > 0 || len(u.NLRI) > 0 {
		return false
	}
	if len(u.Attrs) == 0 {
		return true
	}
	m, ok, err := u.MPUnreach()
	return len(u.Attrs) == 1 && ok && err == nil && len(m.Prefixes) == 0
}

// ParseUpdate parses an UPDATE body into its IPv4 withdrawn routes, raw path
// attributes and IPv4 NLRI. It fails when a length field overruns its
// section or a prefix is longer than 32 bits; it does not check attribute
// contents.
func ParseUpdate(body []byte) (Update, error) {
	var u Update
	if len(body) < 4 {
		return u, malformed("UPDATE body of %d octets", len(body))
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return u, malformed("UPDATE withdrawn routes length %d overruns the message", wl)
	}
	var err error
	if u.Withdrawn, err = ParsePrefixes(body[2:2+wl], false); err != nil {
		return u, fmt.Errorf("withdrawn routes: %w", err)
	}
	rest := body[2+wl:]
	al := int(binary.BigEndian.Uint16(rest))
	if 2+al > len(rest) {
		return u, malformed("UPDATE path attribute length %d overruns the message", al)
	}
	if u.Attrs, err = ParseAttrs(rest[2 : 2+al]); err != nil {
		return u, err
	}
	if u.NLRI, err = ParsePrefixes(rest[2+al:], false); err != nil {
		return u, fmt.Errorf("NLRI: %w", err)
	}
	return u, nil
}

// ParseAttrs splits a path attribute section into attributes.
func ParseAttrs(b []byte) ([]PathAttr, error) {
	var attrs []PathAttr
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, malformed("truncated path attribute header")
		}
		flags, typ := b[0], b[1]
		hl, n := 3, int(b[2])
		if flags&ExtendedLength != 0 {
			if len(b) < 4 {
				return nil, malformed("truncated extended-length path attribute header")
			}
			hl, n = 4, int(binary.BigEndian.Uint16(b[2:]))
		}
		if len(b) < hl+n {
			return nil, malformed("path attribute %d of length %d overruns the section", typ, n)
		}
		attrs = append(attrs, PathAttr{Flags: flags, Type: typ, Value: b[hl : hl+n]})
		b = b[hl+n:]
	}
	return attrs, nil
}

// ParsePrefixes decodes a sequence of NLRI prefixes (RFC 4271 §4.3), IPv6
// ones if ipv6. Bits past the prefix length are ignored, as RFC 4271
// allows, so the results are masked.
func ParsePrefixes(b []byte, ipv6 bool) ([]netip.Prefix, error) {
	maxBits := 32
	if ipv6 {
		maxBits = 128
	}
	var ps []netip.Prefix
	for len(b) > 0 {
		bits := int(b[0])
		if bits > maxBits {
			return nil, malformed("prefix length %d exceeds %d", bits, maxBits)
		}
		n := (bits + 7) / 8
		if len(b) < 1+n {
			return nil, malformed("prefix of %d bits overruns the section", bits)
		}
		var a [16]byte
		copy(a[:], b[1:1+n])
		addr := netip.AddrFrom16(a)
		if !ipv6 {
			addr = netip.AddrFrom4([4]byte(a[:4]))
		}
		ps = append(ps, netip.PrefixFrom(addr, bits).Masked())
		b = b[1+n:]
	}
	return ps, nil
}

// MPNLRI is a parsed MP_REACH_NLRI or MP_UNREACH_NLRI attribute
// (RFC 4760 §3, §4).
type MPNLRI struct {
	AFI  uint16
	SAFI uint8
	// NextHop is the raw next hop of MP_REACH_NLRI (nil for
	// MP_UNREACH_NLRI); NextHops splits it into addresses.
	NextHop []byte
	// Prefixes are the NLRI when AFI is AFIIPv4 or AFIIPv6 and SAFI is
	// unicast (1) or multicast (2); otherwise Raw holds them undecoded.
	Prefixes []netip.Prefix
	Raw      []byte
}

// NextHops splits NextHop into addresses: one IPv4 (4 octets), one IPv6
// (16) or a global and a link-local IPv6 (32, RFC 2545 §3). Other lengths
// give nil.
func (m MPNLRI) NextHops() []netip.Addr {
	switch len(m.NextHop) {
	case 4:
		return []netip.Addr{netip.AddrFrom4([4]byte(m.NextHop))}
	case 16:
		return []netip.Addr{netip.AddrFrom16([16]byte(m.NextHop))}
	case 32:
		return []netip.Addr{netip.AddrFrom16([16]byte(m.NextHop)), netip.AddrFrom16([16]byte(m.NextHop[16:]))}
	}
	return nil
}

func (m *MPNLRI) decode(nlri []byte) error {
	m.Raw = nlri
	if (m.AFI != AFIIPv4 && m.AFI != AFIIPv6) || (m.SAFI != 1 && m.SAFI != 2) {
		return nil
	}
	ps, err := ParsePrefixes(nlri, m.AFI == AFIIPv6)
	m.Prefixes = ps
	return err
}

// ParseMPReach parses an MP_REACH_NLRI attribute value (RFC 4760 §3).
func ParseMPReach(v []byte) (MPNLRI, error) {
	if len(v) < 5 {
		return MPNLRI{}, malformed("MP_REACH_NLRI of %d octets", len(v))
	}
	m := MPNLRI{AFI: binary.BigEndian.Uint16(v), SAFI: v[2]}
	nh := int(v[3])
	if len(v) < 4+nh+1 {
		return MPNLRI{}, malformed("MP_REACH_NLRI next hop of %d octets overruns the attribute", nh)
	}
	m.NextHop = v[4 : 4+nh]
	err := m.decode(v[4+nh+1:])
	return m, err
}

// ParseMPUnreach parses an MP_UNREACH_NLRI attribute value (RFC 4760 §4).
func ParseMPUnreach(v []byte) (MPNLRI, error) {
	if len(v) < 3 {
		return MPNLRI{}, malformed("MP_UNREACH_NLRI of %d octets", len(v))
	}
	m := MPNLRI{AFI: binary.BigEndian.Uint16(v), SAFI: v[2]}
	err := m.decode(v[3:])
	return m, err
}

// ParseASPath parses an AS_PATH or AS4_PATH value into segments, with
// 4-octet AS numbers if fourOctet (AS4_PATH always is; AS_PATH is when both
// sides sent the 4-octet AS capability, RFC 6793 §4.1).
func ParseASPath(v []byte, fourOctet bool) ([]Segment, error) {
	asLen := 2
	if fourOctet {
		asLen = 4
	}
	var segs []Segment
	for len(v) > 0 {
		if len(v) < 2 {
			return nil, malformed("truncated AS path segment header")
		}
		typ, n := v[0], int(v[1])
		if len(v) < 2+n*asLen {
			return nil, malformed("AS path segment of %d ASNs overruns the attribute", n)
		}
		s := Segment{Type: typ, ASNs: make([]uint32, n)}
		for i := range n {
			p := v[2+i*asLen:]
			if fourOctet {
				s.ASNs[i] = binary.BigEndian.Uint32(p)
			} else {
				s.ASNs[i] = uint32(binary.BigEndian.Uint16(p))
			}
		}
		segs = append(segs, s)
		v = v[2+n*asLen:]
	}
	return segs, nil
}
