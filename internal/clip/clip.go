// Package clip shortens text for places with a size limit (status fields, condition
// messages, audit values, error details) without cutting a UTF-8 character in two. It is
// the one truncation helper of the project.
package clip

import "unicode/utf8"

// Ellipsis marks clipped text.
const Ellipsis = "..."

// String returns s when it fits in n bytes, else its longest prefix that, with Ellipsis
// appended, does: the result never exceeds n bytes (nor n characters).
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < len(Ellipsis) {
		return Prefix(s, n)
	}
	return Prefix(s, n-len(Ellipsis)) + Ellipsis
}

// Prefix returns the longest prefix of s of at most n bytes that ends on a character
// boundary, with no marker.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
