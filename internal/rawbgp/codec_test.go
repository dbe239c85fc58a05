package rawbgp

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

var (
	pfx4    = netip.MustParsePrefix("203.0.113.0/24")
	host4   = netip.MustParsePrefix("203.0.113.1/32")
	pfx6    = netip.MustParsePrefix("2001:db8::/32")
	host6   = netip.MustParsePrefix("2001:db8::1/128")
	nh4     = netip.MustParseAddr("127.0.0.1")
	nh6     = netip.MustParseAddr("2001:db8::ffff")
	routeID = netip.MustParseAddr("198.18.0.2")
)

func TestHeaderLayout(t *testing.T) {
	b := Header(MsgUpdate, []byte{1, 2, 3})
	want := append(bytes.Repeat([]byte{0xff}, 16), 0, 22, 2, 1, 2, 3)
	if !bytes.Equal(b, want) {
		t.Fatalf("Header = % x, want % x", b, want)
	}
	b = HeaderWithLength(MsgKeepalive, 4000, nil)
	if len(b) != HeaderLen || b[16] != 0x0f || b[17] != 0xa0 || b[18] != MsgKeepalive {
		t.Fatalf("HeaderWithLength = % x", b)
	}
	if k := Keepalive(); len(k) != 19 || k[18] != 4 {
		t.Fatalf("Keepalive = % x", k)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		typ  byte
		body []byte
	}{
		{"keepalive", Keepalive(), MsgKeepalive, []byte{}},
		{"notification", Notification(CodeUpdate, SubUpdateMalformedASPath, []byte{9}), MsgNotification, []byte{3, 11, 9}},
		{"route refresh", RouteRefresh(AFIIPv6, SAFIUnicast), MsgRouteRefresh, []byte{0, 2, 0, 1}},
		{"end of rib", EndOfRIB(), MsgUpdate, []byte{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(slices.Concat(tt.msg, Keepalive()))
			m, err := ReadMessage(r)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != tt.typ || !bytes.Equal(m.Body, tt.body) {
				t.Fatalf("got %v body % x, want type %d body % x", m, m.Body, tt.typ, tt.body)
			}
			if m, err := ReadMessage(r); err != nil || m.Type != MsgKeepalive {
				t.Fatalf("second message: %v, %v", m, err)
			}
			if _, err := ReadMessage(r); err != io.EOF {
				t.Fatalf("after the last message: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadMessageRejects(t *testing.T) {
	badMarker := Keepalive()
	badMarker[3] = 0
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad marker", badMarker, ErrMalformed},
		{"length below header", HeaderWithLength(MsgKeepalive, 18, nil), ErrMalformed},
		{"long keepalive", Header(MsgKeepalive, []byte{0}), ErrMalformed},
		{"short open", Header(MsgOpen, make([]byte, 9)), ErrMalformed},
		{"short update", Header(MsgUpdate, []byte{0, 0, 0}), ErrMalformed},
		{"short notification", Header(MsgNotification, []byte{6}), ErrMalformed},
		{"body cut short", HeaderWithLength(MsgUpdate, 30, []byte{0, 0, 0, 0}), io.ErrUnexpectedEOF},
		{"header cut short", Keepalive()[:10], io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadMessage(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, _, err := ParseNotification([]byte{6}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseNotification of 1 octet: %v", err)
	}
}

func TestOpenRoundTrip(t *testing.T) {
	var many [][]byte
	var manyParsed []Capability
	for i := range 20 {
		many = append(many, Cap(byte(100+i), make([]byte, 10)))
		manyParsed = append(manyParsed, Capability{Code: byte(100 + i), Value: make([]byte, 10)})
	}
	tests := []struct {
		name string
		open Open
		want OpenInfo
	}{{
		name: "NEW speaker",
		open: Open{MyAS: ASTrans, HoldTime: 90, BGPID: routeID,
			Caps: [][]byte{CapMP(AFIIPv4, SAFIUnicast), CapMP(AFIIPv6, SAFIUnicast), CapRouteRefresh(), CapFourOctetAS(4200000000)}},
		want: OpenInfo{Version: 4, MyAS: ASTrans, HoldTime: 90, BGPID: routeID, Caps: []Capability{
			{CapCodeMP, []byte{0, 1, 0, 1}}, {CapCodeMP, []byte{0, 2, 0, 1}}, {CapCodeRouteRefresh, []byte{}},
			{CapCodeFourOctetAS, []byte{0xfa, 0x56, 0xea, 0x00}}}},
	}, {
		name: "OLD speaker, no parameters, version 3",
		open: Open{Version: 3, MyAS: 65000, HoldTime: 0, BGPID: routeID},
		want: OpenInfo{Version: 3, MyAS: 65000, BGPID: routeID},
	}, {
		name: "zero BGP ID and a foreign parameter",
		open: Open{MyAS: 1, HoldTime: 3, Params: [][]byte{OptParam(1, []byte{7})}},
		want: OpenInfo{Version: 4, MyAS: 1, HoldTime: 3, BGPID: netip.AddrFrom4([4]byte{}), Params: []Param{{1, []byte{7}}}},
	}, {
		name: "many capabilities, and more in a second parameter",
		open: Open{MyAS: 2, BGPID: routeID, Caps: many, Params: [][]byte{OptParam(ParamCapabilities, CapRouteRefresh())}},
		want: OpenInfo{Version: 4, MyAS: 2, BGPID: routeID, Caps: append(manyParsed, Capability{CapCodeRouteRefresh, []byte{}})},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMessage(bytes.NewReader(tt.open.Marshal()))
			if err != nil || m.Type != MsgOpen {
				t.Fatalf("ReadMessage: %v, %v", m, err)
			}
			got, err := ParseOpen(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseOpen =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	info, _ := ParseOpen(tests[0].open.Marshal()[HeaderLen:])
	if as, ok := info.FourOctetAS(); !ok || as != 4200000000 || info.AS() != 4200000000 {
		t.Errorf("FourOctetAS = %d, %v; AS = %d", as, ok, info.AS())
	}
	if !info.HasMP(AFIIPv6, SAFIUnicast) || info.HasMP(AFIIPv6, 2) {
		t.Errorf("HasMP wrong for %+v", info.Caps)
	}
	if _, err := ParseOpen([]byte{4, 0, 1, 0, 0, 1, 2, 3, 4, 5, 2}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseOpen with overrunning parameters: %v", err)
	}
}

func TestParseOpenExtendedParams(t *testing.T) {
	// RFC 9072: length 255, then type 255 and a 2-octet length; each
	// parameter has a 2-octet length too.
	caps := CapFourOctetAS(65000)
	params := slices.Concat([]byte{ParamCapabilities, 0, byte(len(caps))}, caps)
	body := slices.Concat([]byte{4, 0xfd, 0xe8, 0, 90, 198, 18, 0, 2, 255, 255, 0, byte(len(params))}, params)
	got, err := ParseOpen(body)
	if err != nil {
		t.Fatal(err)
	}
	if as, ok := got.FourOctetAS(); !ok || as != 65000 {
		t.Fatalf("extended parameters parsed as %+v", got)
	}
}

func TestPrefixEncoding(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{"0.0.0.0/0", []byte{0}},
		{"203.0.113.0/24", []byte{24, 203, 0, 113}},
		{"203.0.113.7/24", []byte{24, 203, 0, 113}},
		{"203.0.113.128/25", []byte{25, 203, 0, 113, 128}},
		{"203.0.113.1/32", []byte{32, 203, 0, 113, 1}},
		{"2001:db8::/32", []byte{32, 0x20, 0x01, 0x0d, 0xb8}},
		{"2001:db8::/33", []byte{33, 0x20, 0x01, 0x0d, 0xb8, 0}},
		{"2001:db8::1/128", slices.Concat([]byte{128, 0x20, 0x01, 0x0d, 0xb8}, make([]byte, 11), []byte{1})},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.in)
			got := Prefix(p)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("Prefix = % x, want % x", got, tt.want)
			}
			back, err := ParsePrefixes(got, p.Addr().Is6())
			if err != nil || len(back) != 1 || back[0] != p.Masked() {
				t.Fatalf("ParsePrefixes = %v, %v", back, err)
			}
		})
	}
	for _, bad := range [][]byte{{33, 1, 2, 3, 4, 5}, {24, 203, 0}} {
		if _, err := ParsePrefixes(bad, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePrefixes(% x) = %v", bad, err)
		}
	}
	// Trailing bits past the length are ignored.
	if got, err := ParsePrefixes([]byte{23, 203, 0, 113}, false); err != nil || got[0] != netip.MustParsePrefix("203.0.112.0/23") {
		t.Errorf("ParsePrefixes with host bits = %v, %v", got, err)
	}
}

func TestAttrEncoding(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"short", Attr(Transitive, AttrOrigin, []byte{2}), []byte{0x40, 1, 1, 2}},
		{"forced extended", Attr(Transitive|ExtendedLength, AttrOrigin, []byte{0}), []byte{0x50, 1, 0, 1, 0}},
		{"automatic extended", Attr(Optional, 99, make([]byte, 256))[:4], []byte{0x90, 99, 1, 0}},
		{"lying length", AttrWithLength(Transitive, AttrNextHop, 200, []byte{1, 2, 3, 4}), []byte{0x40, 3, 200, 1, 2, 3, 4}},
		{"lying extended length", AttrWithLength(0, 200, 300, nil), []byte{0x10, 200, 1, 0x2c}},
		{"origin", Origin(7), []byte{0x40, 1, 1, 7}},
		{"next hop", NextHop(nh4), []byte{0x40, 3, 4, 127, 0, 0, 1}},
		{"next hop zero", NextHop(netip.Addr{}), []byte{0x40, 3, 0}},
		{"med", MED(258), []byte{0x80, 4, 4, 0, 0, 1, 2}},
		{"local pref", LocalPref(100), []byte{0x40, 5, 4, 0, 0, 0, 100}},
		{"communities", Communities(65000<<16 | 1), []byte{0xc0, 8, 4, 0xfd, 0xe8, 0, 1}},
		{"as path 2", ASPath2(Seq(65000, 4200000000)), []byte{0x40, 2, 6, 2, 2, 0xfd, 0xe8, 0x5b, 0xa0}},
		{"as path 4 empty", ASPath4(), []byte{0x40, 2, 0}},
		{"as4 path", AS4Path(Set(1)), []byte{0xc0, 17, 6, 1, 1, 0, 0, 0, 1}},
		{"mp unreach", MPUnreach(AFIIPv6, SAFIUnicast, nil), []byte{0x80, 15, 3, 0, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Fatalf("got % x, want % x", tt.got, tt.want)
			}
		})
	}
}

func TestUpdateRoundTrip(t *testing.T) {
	segs := []Segment{Seq(65000, 4200000000), Set(64512, 64513)}
	tests := []struct {
		name      string
		msg       []byte
		withdrawn []netip.Prefix
		nlri      []netip.Prefix
		types     []byte
		announced []netip.Prefix
		gone      []netip.Prefix
		eor       bool
	}{{
		name:  "ipv4 announce",
		msg:   UpdateMsg(nil, Join(Origin(OriginIGP), ASPath4(segs...), NextHop(nh4), MED(5)), Prefixes(pfx4, host4)),
		nlri:  []netip.Prefix{pfx4, host4},
		types: []byte{AttrOrigin, AttrASPath, AttrNextHop, AttrMED}, announced: []netip.Prefix{pfx4, host4},
	}, {
		name:      "ipv4 withdraw",
		msg:       UpdateMsg(Prefix(host4), nil, nil),
		withdrawn: []netip.Prefix{host4}, gone: []netip.Prefix{host4},
	}, {
		name:  "ipv6 announce",
		msg:   UpdateMsg(nil, Join(MPReach(AFIIPv6, SAFIUnicast, nh6.AsSlice(), Prefixes(pfx6, host6)), Origin(0), ASPath2(segs...)), nil),
		types: []byte{AttrMPReach, AttrOrigin, AttrASPath}, announced: []netip.Prefix{pfx6, host6},
	}, {
		name:  "ipv6 withdraw",
		msg:   UpdateMsg(nil, MPUnreach(AFIIPv6, SAFIUnicast, Prefix(host6)), nil),
		types: []byte{AttrMPUnreach}, gone: []netip.Prefix{host6},
	}, {
		name: "ipv4 end of rib", msg: EndOfRIB(), eor: true,
	}, {
		name:  "ipv6 end of rib",
		msg:   UpdateMsg(nil, MPUnreach(AFIIPv6, SAFIUnicast, nil), nil),
		types: []byte{AttrMPUnreach}, eor: true,
	}, {
		name:  "long attribute",
		msg:   UpdateMsg(nil, Join(Origin(0), Attr(Optional|Transitive, 250, make([]byte, 300))), Prefix(pfx4)),
		nlri:  []netip.Prefix{pfx4},
		types: []byte{AttrOrigin, 250}, announced: []netip.Prefix{pfx4},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMessage(bytes.NewReader(tt.msg))
			if err != nil || m.Type != MsgUpdate {
				t.Fatalf("ReadMessage: %v, %v", m, err)
			}
			u, err := ParseUpdate(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			var types []byte
			for _, a := range u.Attrs {
				types = append(types, a.Type)
			}
			ann, err1 := u.Announced()
			gone, err2 := u.AllWithdrawn()
			switch {
			case err1 != nil || err2 != nil:
				t.Fatalf("Announced: %v; AllWithdrawn: %v", err1, err2)
			case !slices.Equal(u.Withdrawn, tt.withdrawn), !slices.Equal(u.NLRI, tt.nlri):
				t.Fatalf("withdrawn %v nlri %v, want %v %v", u.Withdrawn, u.NLRI, tt.withdrawn, tt.nlri)
			case !bytes.Equal(types, tt.types):
				t.Fatalf("attribute types %v, want %v", types, tt.types)
			case !slices.Equal(ann, tt.announced), !slices.Equal(gone, tt.gone):
				t.Fatalf("announced %v withdrawn %v, want %v %v", ann, gone, tt.announced, tt.gone)
			case u.IsEndOfRIB() != tt.eor:
				t.Fatalf("IsEndOfRIB = %v", u.IsEndOfRIB())
			}
		})
	}
}

func TestASPathAndMPReachRoundTrip(t *testing.T) {
	segs := []Segment{Seq(65000, 4200000000), Set(64512)}
	u, err := ParseUpdate(UpdateMsg(nil, Join(ASPath2(segs...), AS4Path(segs...), ASPath4(segs...)), nil)[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	trans := []Segment{Seq(65000, ASTrans), Set(64512)}
	for i, want := range [][]Segment{trans, segs, segs} {
		got, err := ParseASPath(u.Attrs[i].Value, i > 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("attribute %d: ParseASPath = %v, %v; want %v", i, got, err, want)
		}
	}
	if _, err := ParseASPath([]byte{2, 2, 0, 1}, false); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated AS path: %v", err)
	}

	ll := netip.MustParseAddr("fe80::1")
	nh := slices.Concat(nh6.AsSlice(), ll.AsSlice())
	a := MPReach(AFIIPv6, SAFIUnicast, nh, Prefix(host6))
	attrs, err := ParseAttrs(a)
	if err != nil || len(attrs) != 1 {
		t.Fatal(attrs, err)
	}
	mp, err := ParseMPReach(attrs[0].Value)
	if err != nil || mp.AFI != AFIIPv6 || mp.SAFI != SAFIUnicast ||
		!slices.Equal(mp.NextHops(), []netip.Addr{nh6, ll}) || !slices.Equal(mp.Prefixes, []netip.Prefix{host6}) {
		t.Fatalf("ParseMPReach = %+v, %v", mp, err)
	}
	// A foreign family keeps its NLRI raw.
	mp, err = ParseMPReach(MPReach(25, 70, nil, []byte{1, 2, 3})[3:])
	if err != nil || mp.Prefixes != nil || !bytes.Equal(mp.Raw, []byte{1, 2, 3}) {
		t.Fatalf("ParseMPReach of l2vpn/evpn = %+v, %v", mp, err)
	}
}

func TestParseUpdateRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"withdrawn overruns", []byte{0, 9, 0, 0}},
		{"attrs overrun", []byte{0, 0, 0, 9, 0x40, 1, 1, 0}},
		{"attribute overruns", UpdateMsg(nil, AttrWithLength(Transitive, AttrOrigin, 5, []byte{0}), nil)[HeaderLen:]},
		{"nlri too long", UpdateMsg(nil, nil, []byte{40, 1, 2, 3, 4, 5})[HeaderLen:]},
		{"three octets", []byte{0, 0, 0}},
	}
	for _, tt := range tests {
		if _, err := ParseUpdate(tt.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}
