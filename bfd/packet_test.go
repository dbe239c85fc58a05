package bfd

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// frrUp300ms is a Control packet written by hand from the figure of RFC
// 5880 §4.1: what FRR's bfdd sends in Up with its defaults (300 ms × 3, no
// C bit, Required Min Echo RX 50 ms) to a peer that it knows.
var frrUp300ms = []byte{
	0x20,                   // Vers 1 (001), Diag 0 (00000)
	0xc0,                   // Sta 3 = Up (11), P F C A D M all 0
	0x03,                   // Detect Mult 3
	0x18,                   // Length 24
	0x4a, 0x2b, 0x3c, 0x4d, // My Discriminator 0x4a2b3c4d
	0x00, 0x00, 0x00, 0x07, // Your Discriminator 7
	0x00, 0x04, 0x93, 0xe0, // Desired Min TX 300000 µs
	0x00, 0x04, 0x93, 0xe0, // Required Min RX 300000 µs
	0x00, 0x00, 0xc3, 0x50, // Required Min Echo RX 50000 µs
}

var frrUp300msPacket = Packet{
	Version:                   1,
	Diag:                      DiagNone,
	State:                     StateUp,
	DetectMult:                3,
	Length:                    24,
	MyDiscriminator:           0x4a2b3c4d,
	YourDiscriminator:         7,
	DesiredMinTxInterval:      300 * time.Millisecond,
	RequiredMinRxInterval:     300 * time.Millisecond,
	RequiredMinEchoRxInterval: 50 * time.Millisecond,
}

// garbage is a Packet with every field set, to show that Unmarshal sets all
// of them (or, on error, none).
var garbage = Packet{
	Version: 7, Diag: 31, State: StateInit, Poll: true, Final: true, CPI: true,
	AuthPresent: true, Demand: true, Multipoint: true, DetectMult: 99, Length: 99,
	MyDiscriminator: 99, YourDiscriminator: 99, DesiredMinTxInterval: time.Hour,
	RequiredMinRxInterval: time.Hour, RequiredMinEchoRxInterval: time.Hour,
}

func TestPacketGoldenFRR(t *testing.T) {
	p := garbage
	if err := Unmarshal(frrUp300ms, &p); err != nil {
		t.Fatalf("Unmarshal(FRR Up 300ms×3): %v", err)
	}
	if p != frrUp300msPacket {
		t.Errorf("Unmarshal(FRR Up 300ms×3):\n got %+v\nwant %+v", p, frrUp300msPacket)
	}
	b := make([]byte, HeaderLen)
	n, err := frrUp300msPacket.Marshal(b)
	if err != nil || n != HeaderLen {
		t.Fatalf("Marshal = %d, %v; want 24, nil", n, err)
	}
	if !bytes.Equal(b, frrUp300ms) {
		t.Errorf("Marshal:\n got % x\nwant % x", b, frrUp300ms)
	}
}

// TestPacketGoldenFreeRADIUS decodes the test vector of another
// implementation (FreeRADIUS src/tests/unit/protocols/bfd: version 1, Up,
// multiplier 3, discriminators 0xdeadbeef and 0x21126809, intervals 31,
// 127 and 255 µs) and encodes it back.
func TestPacketGoldenFreeRADIUS(t *testing.T) {
	wire := []byte{
		0x20, 0xc0, 0x03, 0x18, 0xde, 0xad, 0xbe, 0xef, 0x21, 0x12, 0x68, 0x09,
		0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x00, 0xff,
	}
	want := Packet{
		Version: 1, State: StateUp, DetectMult: 3, Length: 24,
		MyDiscriminator: 0xdeadbeef, YourDiscriminator: 0x21126809,
		DesiredMinTxInterval:      31 * time.Microsecond,
		RequiredMinRxInterval:     127 * time.Microsecond,
		RequiredMinEchoRxInterval: 255 * time.Microsecond,
	}
	var p Packet
	if err := Unmarshal(wire, &p); err != nil || p != want {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", p, err, want)
	}
	b := make([]byte, 64)
	if n, err := want.Marshal(b); err != nil || !bytes.Equal(b[:n], wire) {
		t.Errorf("Marshal = % x, %v; want % x", b[:n], err, wire)
	}
}

// TestPacketBitLayout places each field of byte 0 and 1 where the figure of
// RFC 5880 §4.1 has it, one at a time.
func TestPacketBitLayout(t *testing.T) {
	base := Packet{State: StateDown, DetectMult: 1, MyDiscriminator: 1}
	for _, tc := range []struct {
		name   string
		set    func(*Packet)
		b0, b1 byte
	}{
		{"down", func(*Packet) {}, 0x20, 0x40},
		{"admin-down", func(p *Packet) { p.State = StateAdminDown }, 0x20, 0x00},
		{"init", func(p *Packet) { p.State, p.YourDiscriminator = StateInit, 1 }, 0x20, 0x80},
		{"up", func(p *Packet) { p.State, p.YourDiscriminator = StateUp, 1 }, 0x20, 0xc0},
		{"diag 1", func(p *Packet) { p.Diag = DiagControlDetectExpired }, 0x21, 0x40},
		{"diag 8", func(p *Packet) { p.Diag = DiagReverseConcatPathDown }, 0x28, 0x40},
		{"diag 31", func(p *Packet) { p.Diag = 31 }, 0x3f, 0x40},
		{"poll", func(p *Packet) { p.Poll = true }, 0x20, 0x60},
		{"final", func(p *Packet) { p.Final = true }, 0x20, 0x50},
		{"cpi", func(p *Packet) { p.CPI = true }, 0x20, 0x48},
		{"demand", func(p *Packet) { p.Demand = true }, 0x20, 0x42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.set(&p)
			b := make([]byte, HeaderLen)
			if _, err := p.Marshal(b); err != nil {
				t.Fatal(err)
			}
			if b[0] != tc.b0 || b[1] != tc.b1 {
				t.Errorf("bytes 0-1 = %08b %08b; want %08b %08b", b[0], b[1], tc.b0, tc.b1)
			}
			var q Packet
			if err := Unmarshal(b, &q); err != nil {
				t.Fatal(err)
			}
			p.Version, p.Length = 1, 24
			if q != p {
				t.Errorf("decoded %+v; want %+v", q, p)
			}
		})
	}
}

// roundTrips are valid packets: named edge cases, then every state with
// every diagnostic, then every combination of P, F, C and D.
var roundTrips = func() []Packet {
	ps := []Packet{
		frrUp300msPacket,
		{State: StateDown, DetectMult: 3, MyDiscriminator: 1, DesiredMinTxInterval: time.Second, RequiredMinRxInterval: time.Second},
		{State: StateAdminDown, Diag: DiagAdministrativelyDown, DetectMult: 1, MyDiscriminator: 1},
		{ // every field at its largest
			Diag: 31, State: StateUp, Poll: true, Final: true, CPI: true, Demand: true,
			DetectMult: 255, MyDiscriminator: 0xffffffff, YourDiscriminator: 0xffffffff,
			DesiredMinTxInterval: MaxInterval, RequiredMinRxInterval: MaxInterval,
			RequiredMinEchoRxInterval: MaxInterval,
		},
		{ // smallest non-zero intervals
			State: StateInit, DetectMult: 2, MyDiscriminator: 2, YourDiscriminator: 1,
			DesiredMinTxInterval: time.Microsecond, RequiredMinRxInterval: time.Microsecond,
			RequiredMinEchoRxInterval: time.Microsecond,
		},
		{ // 3 × 50 ms, and zero RX: "do not send me periodic packets"
			State: StateUp, DetectMult: 3, MyDiscriminator: 0x80000000, YourDiscriminator: 0x7fffffff,
			DesiredMinTxInterval: 50 * time.Millisecond,
		},
	}
	for s := StateAdminDown; s <= StateUp; s++ {
		for d := Diag(0); d <= 31; d++ {
			ps = append(ps, Packet{State: s, Diag: d, DetectMult: 3, MyDiscriminator: uint32(d) + 1,
				YourDiscriminator: uint32(s), DesiredMinTxInterval: 100 * time.Millisecond,
				RequiredMinRxInterval: 100 * time.Millisecond})
		}
	}
	for bits := range 16 {
		ps = append(ps, Packet{State: StateUp, DetectMult: 3, MyDiscriminator: 10, YourDiscriminator: 20,
			Poll: bits&1 != 0, Final: bits&2 != 0, CPI: bits&4 != 0, Demand: bits&8 != 0,
			DesiredMinTxInterval: 300 * time.Millisecond, RequiredMinRxInterval: 300 * time.Millisecond})
	}
	for i := range ps {
		ps[i].Version, ps[i].Length = Version, HeaderLen
	}
	return ps
}()

func TestPacketRoundTrip(t *testing.T) {
	b := make([]byte, 128)
	for i, want := range roundTrips {
		t.Run(fmt.Sprintf("%d-%s-%s", i, want.State, want.Diag), func(t *testing.T) {
			n, err := want.Marshal(b)
			if err != nil || n != HeaderLen {
				t.Fatalf("Marshal = %d, %v", n, err)
			}
			got := garbage
			if err := Unmarshal(b[:n], &got); err != nil {
				t.Fatalf("Unmarshal(% x): %v", b[:n], err)
			}
			if got != want {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestMarshalIgnoresVersionAndLength: Version 1 and Length 24 are written
// whatever the Packet says, so a received packet can be sent back as is.
func TestMarshalIgnoresVersionAndLength(t *testing.T) {
	p := frrUp300msPacket
	p.Version, p.Length = 3, 200
	b := make([]byte, HeaderLen)
	if _, err := p.Marshal(b); err != nil || !bytes.Equal(b, frrUp300ms) {
		t.Errorf("Marshal = % x, %v; want % x", b, err, frrUp300ms)
	}
}

func TestMarshalTruncatesBelowMicrosecond(t *testing.T) {
	p := frrUp300msPacket
	p.DesiredMinTxInterval = 1500 * time.Nanosecond
	p.RequiredMinRxInterval = 999 * time.Nanosecond
	p.RequiredMinEchoRxInterval = MaxInterval
	b := make([]byte, HeaderLen)
	if _, err := p.Marshal(b); err != nil {
		t.Fatal(err)
	}
	if got, want := b[12:24], []byte{0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}; !bytes.Equal(got, want) {
		t.Errorf("intervals on the wire % x; want % x", got, want)
	}
}

func TestMarshalRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Packet)
		buf  int
		want error
	}{
		{"buffer 23 bytes", func(*Packet) {}, 23, ErrShort},
		{"state 4", func(p *Packet) { p.State = 4 }, 24, ErrField},
		{"diag 32", func(p *Packet) { p.Diag = 32 }, 24, ErrField},
		{"negative tx", func(p *Packet) { p.DesiredMinTxInterval = -time.Microsecond }, 24, ErrInterval},
		{"negative rx", func(p *Packet) { p.RequiredMinRxInterval = -1 }, 24, ErrInterval},
		{"echo beyond 2^32-1 µs", func(p *Packet) { p.RequiredMinEchoRxInterval = MaxInterval + time.Microsecond }, 24, ErrInterval},
		{"tx beyond 2^32-1 µs by 1 ns", func(p *Packet) { p.DesiredMinTxInterval = MaxInterval + 1 }, 24, ErrInterval},
		{"detect mult 0", func(p *Packet) { p.DetectMult = 0 }, 24, ErrDetectMult},
		{"multipoint", func(p *Packet) { p.Multipoint = true }, 24, ErrMultipoint},
		{"my discriminator 0", func(p *Packet) { p.MyDiscriminator = 0 }, 24, ErrMyDiscriminator},
		{"your discriminator 0 in up", func(p *Packet) { p.YourDiscriminator = 0 }, 24, ErrYourDiscriminator},
		{"your discriminator 0 in init", func(p *Packet) { p.YourDiscriminator, p.State = 0, StateInit }, 24, ErrYourDiscriminator},
		{"auth", func(p *Packet) { p.AuthPresent = true }, 24, ErrAuthUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := frrUp300msPacket
			tc.set(&p)
			b := bytes.Repeat([]byte{0xee}, tc.buf)
			n, err := p.Marshal(b)
			if err != tc.want || n != 0 {
				t.Errorf("Marshal = %d, %v; want 0, %v", n, err, tc.want)
			}
			if !bytes.Equal(b, bytes.Repeat([]byte{0xee}, tc.buf)) {
				t.Errorf("Marshal wrote % x on error", b)
			}
		})
	}
}

// malformed changes frrUp300ms into a packet each rule of RFC 5880 §6.8.6
// discards.
var malformed = []struct {
	name string
	wire func([]byte) []byte
	want error
}{
	{"empty", func([]byte) []byte { return nil }, ErrShort},
	{"23 bytes", func(b []byte) []byte { return b[:23] }, ErrShort},
	{"version 0", func(b []byte) []byte { b[0] &^= 0xe0; return b }, ErrVersion},
	{"version 2", func(b []byte) []byte { b[0] = 0x40 | b[0]&0x1f; return b }, ErrVersion},
	{"version 7", func(b []byte) []byte { b[0] |= 0xe0; return b }, ErrVersion},
	{"length 0", func(b []byte) []byte { b[3] = 0; return b }, ErrLength},
	{"length 23", func(b []byte) []byte { b[3] = 23; return b }, ErrLength},
	{"A bit, length 24", func(b []byte) []byte { b[1] |= bitAuth; return b }, ErrLength},
	{"A bit, length 25", func(b []byte) []byte { b[1] |= bitAuth; b[3] = 25; return append(b, 0) }, ErrLength},
	{"length 25, payload 24", func(b []byte) []byte { b[3] = 25; return b }, ErrTruncated},
	{"length 255, payload 254", func(b []byte) []byte { b[3] = 255; return append(b, make([]byte, 230)...) }, ErrTruncated},
	{"A bit, length 26, payload 24", func(b []byte) []byte { b[1] |= bitAuth; b[3] = 26; return b }, ErrTruncated},
	{"detect mult 0", func(b []byte) []byte { b[2] = 0; return b }, ErrDetectMult},
	{"multipoint", func(b []byte) []byte { b[1] |= bitMultipoint; return b }, ErrMultipoint},
	{"my discriminator 0", func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }, ErrMyDiscriminator},
	{"your discriminator 0 in up", func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }, ErrYourDiscriminator},
	{"your discriminator 0 in init", func(b []byte) []byte { b[1] = 0x80; copy(b[8:12], []byte{0, 0, 0, 0}); return b }, ErrYourDiscriminator},
	{"A bit, length 26", func(b []byte) []byte { b[1] |= bitAuth; b[3] = 26; return append(b, 1, 2) }, ErrAuthUnsupported},
	{"A bit, simple password", func(b []byte) []byte {
		b[1] |= bitAuth
		b[3] = 24 + 3 + 4
		return append(b, 1, 7, 1, 'p', 'a', 's', 's') // Auth Type 1, Len 7, Key ID 1
	}, ErrAuthUnsupported},
	// Several faults: the first in the RFC's order wins.
	{"version 2 and detect mult 0", func(b []byte) []byte { b[0] = 0x40; b[2] = 0; return b }, ErrVersion},
	{"multipoint and my discriminator 0", func(b []byte) []byte { b[1] |= bitMultipoint; copy(b[4:8], []byte{0, 0, 0, 0}); return b }, ErrMultipoint},
	{"your discriminator 0 in up with A bit", func(b []byte) []byte {
		b[1] |= bitAuth
		b[3] = 26
		copy(b[8:12], []byte{0, 0, 0, 0})
		return append(b, 1, 2)
	}, ErrYourDiscriminator},
}

func TestUnmarshalMalformed(t *testing.T) {
	reached := map[error]bool{}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.wire(bytes.Clone(frrUp300ms))
			p := garbage
			err := Unmarshal(b, &p)
			if err != tc.want {
				t.Fatalf("Unmarshal(% x) = %v; want %v", b, err, tc.want)
			}
			reached[err] = true
			if p != garbage {
				t.Errorf("Unmarshal changed p on error: %+v", p)
			}
		})
	}
	for _, err := range unmarshalErrors {
		if !reached[err] {
			t.Errorf("no malformed packet reached %v", err)
		}
	}
}

// TestUnmarshalLengthAndPayload: RFC 5880 §6.8.6 discards a packet whose
// Length is greater than the UDP payload, and nothing else about the two:
// bytes after Length (padding, or a longer datagram) and bytes between 24
// and Length are not read.
func TestUnmarshalLengthAndPayload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wire   func([]byte) []byte
		length uint8
	}{
		{"payload 40, length 24", func(b []byte) []byte { return append(b, bytes.Repeat([]byte{0xff}, 16)...) }, 24},
		{"payload 1500, length 24", func(b []byte) []byte { return append(b, make([]byte, 1476)...) }, 24},
		{"payload 30, length 30", func(b []byte) []byte { b[3] = 30; return append(b, 1, 2, 3, 4, 5, 6) }, 30},
		{"payload 255, length 255", func(b []byte) []byte { b[3] = 255; return append(b, make([]byte, 231)...) }, 255},
		{"payload 40, length 30", func(b []byte) []byte { b[3] = 30; return append(b, make([]byte, 16)...) }, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.wire(bytes.Clone(frrUp300ms))
			var p Packet
			if err := Unmarshal(b, &p); err != nil {
				t.Fatalf("Unmarshal(%d bytes, Length %d): %v", len(b), b[3], err)
			}
			want := frrUp300msPacket
			want.Length = tc.length
			if p != want {
				t.Errorf("got %+v; want %+v", p, want)
			}
		})
	}
}

// TestUnmarshalYourDiscriminatorZero: a packet without Your Discriminator
// is how a session starts, so Down and AdminDown pass.
func TestUnmarshalYourDiscriminatorZero(t *testing.T) {
	for _, sta := range []byte{0x00, 0x40} {
		b := bytes.Clone(frrUp300ms)
		b[1] = sta
		copy(b[8:12], []byte{0, 0, 0, 0})
		var p Packet
		if err := Unmarshal(b, &p); err != nil || p.State != State(sta>>6) || p.YourDiscriminator != 0 {
			t.Errorf("state %s, your discriminator 0: %+v, %v", State(sta>>6), p, err)
		}
	}
}

func TestPacketNoAllocation(t *testing.T) {
	b := make([]byte, 64)
	var p Packet
	bad := bytes.Clone(frrUp300ms)
	bad[2] = 0
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Marshal", func() { _, _ = frrUp300msPacket.Marshal(b) }},
		{"Marshal error", func() { _, _ = p.Marshal(b[:10]) }},
		{"Unmarshal", func() { _ = Unmarshal(frrUp300ms, &p) }},
		{"Unmarshal error", func() { _ = Unmarshal(bad, &p) }},
	} {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per run; want 0", tc.name, n)
		}
	}
	if err := Unmarshal(frrUp300ms, &p); err != nil || p != frrUp300msPacket {
		t.Errorf("after the runs: %+v, %v", p, err)
	}
	if err := Unmarshal(bad, &p); !errors.Is(err, ErrDetectMult) {
		t.Errorf("bad packet: %v", err)
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	var p Packet
	for b.Loop() {
		if err := Unmarshal(frrUp300ms, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	buf := make([]byte, HeaderLen)
	for b.Loop() {
		if _, err := frrUp300msPacket.Marshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}
