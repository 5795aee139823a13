package config

import (
	"strings"
	"testing"
)

// FuzzValidKeyNameMatchesRegexp: the hand-written key name check accepts
// exactly what the documented pattern (keyNameRE) accepts.
func FuzzValidKeyNameMatchesRegexp(f *testing.F) {
	for _, s := range []string{"", "a", "payments-api", "-a", "a-", "A", "a.b_c-d", "0", "a\n", "é", "a b",
		strings.Repeat("a", 128), strings.Repeat("a", 129), "a$", ".a", "_a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := validKeyName(name), keyNameRE.MatchString(name); got != want {
			t.Fatalf("validKeyName(%q) = %v, the pattern says %v", name, got, want)
		}
	})
}
