package config

import "testing"

func TestCommunity(t *testing.T) {
	tests := []struct {
		in   string
		want Community
		str  string
	}{
		{"65001:100", 65001<<16 | 100, "65001:100"},
		{"0:0", 0, "0:0"},
		{"65535:65535", 0xFFFFFFFF, "65535:65535"},
		{"graceful-shutdown", 0xFFFF0000, "65535:0"},
		{"no-export", 0xFFFFFF01, "65535:65281"},
		{"no-advertise", 0xFFFFFF02, "65535:65282"},
		{"blackhole", 0xFFFF029A, "65535:666"},
	}
	for _, tt := range tests {
		got, err := ParseCommunity(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseCommunity(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("Community(%d).String() = %q, want %q", got, s, tt.str)
		}
	}
	for _, in := range []string{"", "1", "1:2:3", "65536:0", "0:65536", "-1:0", "+1:0", "a:b", " 1:2", "NO-EXPORT", "1:"} {
		if c, err := ParseCommunity(in); err == nil {
			t.Errorf("ParseCommunity(%q) = %v, want an error", in, c)
		}
	}
}

func TestLargeCommunity(t *testing.T) {
	got, err := ParseLargeCommunity("65001:1:2")
	if want := (LargeCommunity{65001, 1, 2}); err != nil || got != want {
		t.Errorf("ParseLargeCommunity = %v, %v; want %v", got, err, want)
	}
	if s := got.String(); s != "65001:1:2" {
		t.Errorf("String() = %q", s)
	}
	max := LargeCommunity{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}
	if s := max.String(); s != "4294967295:4294967295:4294967295" {
		t.Errorf("String() = %q", s)
	}
	for _, in := range []string{"", "1:2", "1:2:3:4", "4294967296:0:0", "a:b:c", "1::2", "-1:0:0"} {
		if l, err := ParseLargeCommunity(in); err == nil {
			t.Errorf("ParseLargeCommunity(%q) = %v, want an error", in, l)
		}
	}
}

func TestStatusRange(t *testing.T) {
	r := StatusRange{200, 299}
	if r.String() != "200-299" || (StatusRange{204, 204}).String() != "204" {
		t.Errorf("String() = %q, %q", r.String(), StatusRange{204, 204}.String())
	}
	for code, want := range map[int]bool{199: false, 200: true, 250: true, 299: true, 300: false} {
		if r.Contains(code) != want {
			t.Errorf("%v.Contains(%d) = %v", r, code, !want)
		}
	}
}

func TestAPINetwork(t *testing.T) {
	tests := []struct{ listen, network, address string }{
		{"unix:///run/anycastd/api.sock", "unix", "/run/anycastd/api.sock"},
		{"127.0.0.1:9480", "tcp", "127.0.0.1:9480"},
		{"[::1]:9480", "tcp", "[::1]:9480"},
		{"", "", ""},
	}
	for _, tt := range tests {
		n, a := API{Listen: tt.listen}.Network()
		if n != tt.network || a != tt.address {
			t.Errorf("API{%q}.Network() = %q, %q; want %q, %q", tt.listen, n, a, tt.network, tt.address)
		}
	}
}
