package clip_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stackscim/stack-scim-operator/internal/clip"
)

func TestString(t *testing.T) {
	cases := map[string]struct {
		in   string
		n    int
		want string
	}{
		"fits":              {"hello", 5, "hello"},
		"clipped":           {"hello world", 8, "hello..."},
		"on a rune":         {strings.Repeat("é", 10), 8, "éé..."},
		"shorter than mark": {"hello", 2, "he"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := clip.String(tc.in, tc.n)
			if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
				t.Fatalf("String(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}
