package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzReadSecret: `rekey submit` reads the manually minted secret from
// stdin: whatever arrives, it takes the first line only, trimmed, at most
// 64 KiB, never empty, and its errors never quote the input.
func FuzzReadSecret(f *testing.F) {
	for _, s := range []string{"ka_live_0123456789abcdef\n", "  ka_live_x \r\n", "", "\n", "a\nb\n", "no newline",
		strings.Repeat("x", 70<<10), "\x00\xff\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &cli{stdin: bytes.NewReader(in), stdout: io.Discard, stderr: io.Discard}
		sec, err := c.readSecret()
		if err != nil {
			if line := strings.TrimSpace(firstLine(in)); len(line) >= 4 && strings.Contains(err.Error(), line) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		s := sec.Reveal()
		switch {
		case s == "":
			t.Fatal("an empty secret was accepted")
		case strings.ContainsRune(s, '\n'):
			t.Fatalf("the secret spans lines: %q", s)
		case s != strings.TrimSpace(s):
			t.Fatalf("the secret is not trimmed: %q", s)
		case len(s) > 64<<10:
			t.Fatalf("the secret is %d bytes, over the 64 KiB limit", len(s))
		case !strings.Contains(firstLine(in), s):
			t.Fatalf("the secret %q is not from the first line of %q", s, in)
		}
	})
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
