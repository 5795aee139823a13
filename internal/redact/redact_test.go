package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

const tok = "ka_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345"

func TestToken(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for name, s := range map[string]string{
		"raw":                 "https://ci.example/log?line=" + tok,
		"query-escaped":       "https://ci.example/q?s=" + url.QueryEscape("Bearer "+tok+"&x"),
		"path-escaped":        "https://ci.example/" + url.PathEscape("a/"+tok),
		"lower-case hex":      "https://ci.example/q?s=Bearer%20" + strings.ReplaceAll(tok, "_", "%5f"),
		"double-escaped":      "https://ci.example/q?s=" + url.QueryEscape(url.QueryEscape(tok+" !")),
		"base64":              "https://ci.example/q?h=" + b64([]byte(tok)),
		"base64 url, no pad":  "https://ci.example/q?h=" + base64.RawURLEncoding.EncodeToString([]byte(tok)),
		"basic credential":    "https://ci.example/q?auth=Basic%20" + url.QueryEscape(b64([]byte("user:"+tok))),
		"base64, offset 1":    "h=" + b64([]byte("x"+tok+"yz")),
		"base64, offset 2":    "h=" + b64([]byte("xy"+tok+"z")),
		"base64 inside query": "https://ci.example/q?h=" + url.QueryEscape(b64([]byte("token="+tok))),
	} {
		t.Run(name, func(t *testing.T) {
			got := Token(s, tok)
			if leaks(got) {
				t.Fatalf("Token(%q) = %q still carries the token", s, got)
			}
			if !strings.Contains(got, Marker) {
				t.Fatalf("Token(%q) = %q: nothing marked", s, got)
			}
		})
	}
}

func TestTokenKeepsTheRest(t *testing.T) {
	s := "https://github.com/acme/app/blob/main/.env#L3?t=" + tok
	if got, want := Token(s, tok), "https://github.com/acme/app/blob/main/.env#L3?t="+Marker; got != want {
		t.Fatalf("Token = %q, want %q", got, want)
	}
	if got := Token("https://github.com/acme/app", tok); got != "https://github.com/acme/app" {
		t.Fatalf("a location without the token changed: %q", got)
	}
	if got := Token("x", ""); got != "x" {
		t.Fatalf("an empty token changed the text: %q", got)
	}
}

// leaks reports whether s carries tok in a form a reader could recover.
func leaks(s string) bool {
	if holds(s, tok) {
		return true
	}
	for _, f := range forms(tok) {
		if strings.Contains(s, f) {
			return true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, field := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("?&=/ %", r) }) {
			if b, err := enc.DecodeString(field); err == nil && strings.Contains(string(b), tok) {
				return true
			}
		}
	}
	return false
}
