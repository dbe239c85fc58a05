package health

import (
	"strings"
	"testing"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		max  int
		want string
	}{
		{"empty", "", 4, ""},
		{"short", "abc", 4, "abc"},
		{"exactly max", "abcd", 4, "abcd"},
		{"ascii", "abcdef", 4, "abcd..."},
		{"max 0", "abc", 0, "..."},
		{"2-byte rune split", "abcé", 4, "abc..."},
		{"2-byte rune ends at the cut", "abé!", 4, "abé..."},
		{"2-byte rune after the cut", "abcdé", 4, "abcd..."},
		{"3-byte rune, 1 byte in", "abc€", 4, "abc..."},
		{"3-byte rune, 2 bytes in", "ab€", 4, "ab..."},
		{"3-byte rune ends at the cut", "a€!", 4, "a€..."},
		{"4-byte rune, 1 byte in", "abc😀", 4, "abc..."},
		{"4-byte rune, 2 bytes in", "ab😀", 4, "ab..."},
		{"4-byte rune, 3 bytes in", "a😀", 4, "a..."},
		{"4-byte rune ends at the cut", "😀!", 4, "😀..."},
		{"only a split rune", "😀", 2, "..."},
		{"invalid bytes kept", "\xff\xfe\xfd\xfc", 2, "\xff\xfe..."},
		{"stray continuation bytes", "a\x80\x80\x80\x80", 3, "a\x80\x80..."},
		{"incomplete rune at the cut", "ab\xe2\x82x", 4, "ab\xe2\x82..."},
		{"invalid byte before a split rune", "\xffé", 2, "\xff..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.s, tc.max)
			if got != tc.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
			}
			if len(got) > tc.max+len("...") {
				t.Errorf("truncate(%q, %d) is %d bytes long", tc.s, tc.max, len(got))
			}
		})
	}
	// Long multi-byte text: the cut falls inside a rune wherever max is.
	s := strings.Repeat("€", 100)
	for max := 1; max < 30; max++ {
		got := truncate(s, max)
		if want := strings.Repeat("€", max/3) + "..."; got != want {
			t.Errorf("truncate(€ x 100, %d) = %q, want %q", max, got, want)
		}
	}
}
