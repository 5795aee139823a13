package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// FuzzToken: whatever surrounds it, no piece of Token's output between
// markers holds the token raw, URL-encoded or base64-encoded, and text
// without the token is returned unchanged.
func FuzzToken(f *testing.F) {
	f.Add("https://ci.example/q?t=ka_live_x1y2z3", "ka_live_x1y2z3")
	f.Add("h="+base64.StdEncoding.EncodeToString([]byte("user:tok+en/=")), "tok+en/=")
	f.Add("a=%6b%61%5F", "ka_")
	f.Add("no token here", "secret-value")
	f.Fuzz(func(t *testing.T, s, token string) {
		if len(token) < 4 || strings.Contains(Marker, token) || strings.Contains(token, Marker) {
			return
		}
		out := Token(s, token)
		forms := []string{token, url.QueryEscape(token), url.PathEscape(token), base64.StdEncoding.EncodeToString([]byte(token))}
		for _, piece := range strings.Split(out, Marker) {
			for _, form := range forms {
				if strings.Contains(piece, form) {
					t.Fatalf("Token(%q, %q) = %q keeps %q", s, token, out, form)
				}
			}
		}
		if !strings.Contains(s, token) && !holds(s, token) && !containsAny(s, forms) && out != s && !strings.Contains(out, Marker) {
			t.Fatalf("Token(%q, %q) = %q changed text without the token", s, token, out)
		}
		// Every replaced form is at least 4 bytes and Marker is 10: the
		// output is bounded by 2.5 times the input.
		if len(out) > 3*len(s)+len(Marker) {
			t.Fatalf("Token grew %d bytes to %d", len(s), len(out))
		}
	})
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
