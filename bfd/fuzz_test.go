package bfd

import (
	"bytes"
	"testing"
	"time"
)

// unmarshalErrors are the errors Unmarshal may return.
var unmarshalErrors = []error{ErrShort, ErrVersion, ErrLength, ErrTruncated, ErrDetectMult,
	ErrMultipoint, ErrMyDiscriminator, ErrYourDiscriminator, ErrAuthUnsupported}

func isOneOf(err error, errs []error) bool {
	for _, e := range errs {
		if err == e {
			return true
		}
	}
	return false
}

// FuzzUnmarshal: any UDP payload either fails with one of the sentinel
// errors, leaving the Packet alone, or decodes to a Packet that Marshal
// encodes back to the payload's first 24 bytes (with Length 24 where the
// payload's Length was larger) and that decodes again to itself.
//
//	go test -run '^$' -fuzz '^FuzzUnmarshal$' -fuzztime 60s ./bfd/
func FuzzUnmarshal(f *testing.F) {
	b := make([]byte, HeaderLen)
	for _, p := range roundTrips {
		if _, err := p.Marshal(b); err != nil {
			f.Fatalf("seed %+v: %v", p, err)
		}
		f.Add(bytes.Clone(b))
	}
	for _, tc := range malformed {
		f.Add(tc.wire(bytes.Clone(frrUp300ms)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := garbage
		err := Unmarshal(data, &p)
		if err != nil {
			if !isOneOf(err, unmarshalErrors) {
				t.Fatalf("Unmarshal(% x) = %v, not a sentinel", data, err)
			}
			if p != garbage {
				t.Fatalf("Unmarshal(% x) = %v and changed p to %+v", data, err, p)
			}
			return
		}
		if p.Length != data[3] || int(p.Length) > len(data) || p.Length < HeaderLen {
			t.Fatalf("Unmarshal(% x): Length %d", data, p.Length)
		}
		out := make([]byte, HeaderLen)
		n, err := p.Marshal(out)
		if err != nil || n != HeaderLen {
			t.Fatalf("Marshal(Unmarshal(% x) = %+v) = %d, %v", data, p, n, err)
		}
		want := bytes.Clone(data[:HeaderLen])
		want[3] = HeaderLen
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n% x\nfrom\n% x", out, data[:HeaderLen])
		}
		var q Packet
		if err := Unmarshal(out, &q); err != nil {
			t.Fatalf("Unmarshal(re-encoded % x): %v", out, err)
		}
		p.Length = HeaderLen
		if q != p {
			t.Fatalf("decoded again to %+v; want %+v", q, p)
		}
	})
}

// marshalErrors are the errors Marshal may return.
var marshalErrors = []error{ErrShort, ErrField, ErrInterval, ErrDetectMult, ErrMultipoint,
	ErrMyDiscriminator, ErrYourDiscriminator, ErrAuthUnsupported}

// FuzzMarshal: any Packet either fails with one of the sentinel errors,
// writing nothing, or encodes to 24 bytes that Unmarshal accepts and
// decodes back to it (intervals truncated to the microsecond).
//
//	go test -run '^$' -fuzz '^FuzzMarshal$' -fuzztime 30s ./bfd/
func FuzzMarshal(f *testing.F) {
	for _, p := range roundTrips {
		f.Add(uint8(p.Diag), uint8(p.State), flagsOf(&p), p.DetectMult, p.MyDiscriminator,
			p.YourDiscriminator, int64(p.DesiredMinTxInterval), int64(p.RequiredMinRxInterval),
			int64(p.RequiredMinEchoRxInterval), HeaderLen)
	}
	f.Add(uint8(0), uint8(4), uint8(0), uint8(1), uint32(1), uint32(0), int64(-1), int64(0), int64(MaxInterval+1), 10)
	f.Fuzz(func(t *testing.T, diag, state, flags, mult uint8, my, your uint32, tx, rx, echo int64, size int) {
		p := Packet{
			Diag: Diag(diag), State: State(state),
			Poll: flags&bitPoll != 0, Final: flags&bitFinal != 0, CPI: flags&bitCPI != 0,
			AuthPresent: flags&bitAuth != 0, Demand: flags&bitDemand != 0, Multipoint: flags&bitMultipoint != 0,
			DetectMult: mult, MyDiscriminator: my, YourDiscriminator: your,
			DesiredMinTxInterval: time.Duration(tx), RequiredMinRxInterval: time.Duration(rx),
			RequiredMinEchoRxInterval: time.Duration(echo),
		}
		size = min(max(size, 0), 64)
		b := bytes.Repeat([]byte{0xa5}, size)
		n, err := p.Marshal(b)
		if err != nil {
			if !isOneOf(err, marshalErrors) || n != 0 {
				t.Fatalf("Marshal(%+v) = %d, %v", p, n, err)
			}
			if !bytes.Equal(b, bytes.Repeat([]byte{0xa5}, size)) {
				t.Fatalf("Marshal(%+v) = %v and wrote % x", p, err, b)
			}
			return
		}
		var q Packet
		if err := Unmarshal(b[:n], &q); err != nil {
			t.Fatalf("Unmarshal(Marshal(%+v) = % x): %v", p, b[:n], err)
		}
		p.Version, p.Length = Version, HeaderLen
		p.DesiredMinTxInterval = p.DesiredMinTxInterval.Truncate(time.Microsecond)
		p.RequiredMinRxInterval = p.RequiredMinRxInterval.Truncate(time.Microsecond)
		p.RequiredMinEchoRxInterval = p.RequiredMinEchoRxInterval.Truncate(time.Microsecond)
		if q != p {
			t.Fatalf("round trip of % x:\n got %+v\nwant %+v", b[:n], q, p)
		}
	})
}

// flagsOf is p's P F C A D M bits as in byte 1 of the packet.
func flagsOf(p *Packet) uint8 {
	var f uint8
	for _, x := range []struct {
		set bool
		bit uint8
	}{{p.Poll, bitPoll}, {p.Final, bitFinal}, {p.CPI, bitCPI}, {p.AuthPresent, bitAuth},
		{p.Demand, bitDemand}, {p.Multipoint, bitMultipoint}} {
		if x.set {
			f |= x.bit
		}
	}
	return f
}
