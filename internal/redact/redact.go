// Package redact removes a reported token from the text that travels with
// its report (a location URL, a source or type label) before anything is
// logged, stored or sent: the inbound table, the audit trail and the
// notifications see only what Token leaves. The webhooks and the scanner
// report parser share it so that every way in redacts alike.
package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// Marker replaces a removed token.
const Marker = "<redacted>"

// maxDecode bounds how many layers of percent-encoding Token looks through.
const maxDecode = 3

// Token returns s without token in any of the forms a URL or a header dump
// carries it: raw; URL-encoded (query and path escaping); base64 (standard
// and URL alphabets, padded or not, alone or inside a longer base64 value
// such as a Basic credential, at any alignment). If what is left still
// holds the token once percent-decoded (up to three times, any hex case),
// nothing of s can be trusted and Token returns Marker alone.
func Token(s, token string) string {
	if token == "" || s == "" {
		return s
	}
	for _, form := range forms(token) {
		s = strings.ReplaceAll(s, form, Marker)
	}
	if holds(s, token) {
		return Marker
	}
	return s
}

// forms lists the encodings of token to replace, longest first so that a
// form containing another is replaced whole.
func forms(token string) []string {
	out := []string{token, url.QueryEscape(token), url.PathEscape(token)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, base64Forms(enc, token)...)
	}
	// Longest first; drop duplicates and forms too short to mean the token.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, f := range out {
		if len(f) >= 4 && !seen[f] {
			seen[f] = true
			uniq = append(uniq, f)
		}
	}
	for i := 1; i < len(uniq); i++ {
		for j := i; j > 0 && len(uniq[j]) > len(uniq[j-1]); j-- {
			uniq[j], uniq[j-1] = uniq[j-1], uniq[j]
		}
	}
	return uniq
}

// base64Forms is token encoded at the three alignments it can take inside
// a longer value: with 0, 1 or 2 bytes before it. Only the characters that
// depend on the token alone are kept (those mixing in a neighbour byte are
// dropped), so the form matches whatever surrounds it; the padded
// whole-value encoding is listed too.
func base64Forms(enc *base64.Encoding, token string) []string {
	out := []string{enc.EncodeToString([]byte(token))}
	for pre := 0; pre < 3; pre++ {
		b := enc.WithPadding(base64.NoPadding).EncodeToString(append(make([]byte, pre), token...))
		// Characters covering the pre bytes (and the one shared with the
		// token) come first; the last, partial group may mix in what follows.
		start := 0
		if pre > 0 {
			start = (pre*8 + 5) / 6
		}
		end := (pre + len(token)) * 8 / 6 // characters made of complete 6-bit groups
		if end > start {
			out = append(out, b[start:end])
		}
	}
	return out
}

// holds reports whether s, percent-decoded up to maxDecode times, contains
// token (raw or in one of its forms).
func holds(s, token string) bool {
	for range maxDecode + 1 {
		if strings.Contains(s, token) {
			return true
		}
		d, err := url.QueryUnescape(s)
		if err != nil {
			d, err = url.PathUnescape(s)
		}
		if err != nil || d == s {
			return false
		}
		s = d
	}
	return strings.Contains(s, token)
}
