package health

import "unicode/utf8"

// truncate returns s if it is at most max bytes long, else its first max
// bytes followed by "...", or fewer bytes when the cut would split a rune:
// the result is at most max+3 bytes long. Bytes that are not valid UTF-8
// count as runes of one byte (they are kept, not dropped).
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	// Only a rune that starts in the last UTFMax-1 bytes can run past max.
	for i := max - 1; i >= 0 && i > max-utf8.UTFMax; i-- {
		if !utf8.RuneStart(s[i]) {
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if valid := r != utf8.RuneError || size > 1; valid && i+size > max {
			cut = i
		}
		break
	}
	return s[:cut] + "..."
}
