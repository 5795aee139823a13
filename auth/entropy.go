package auth

import (
	"math"
	"strings"
	"unicode"
)

// MinSharedTokenBits is the least estimated entropy accepted for a shared
// secret configured by hand (the bootstrap admin token, the metrics
// token): 32 bytes.
const MinSharedTokenBits = 256

// EstimateBits estimates the entropy of a token configured by hand: the
// number of its characters that are not repeats of an earlier stretch
// (as a compressor would find them) times the bits per character of the
// alphabet it is drawn from, capped by what its distinct characters
// allow. The alphabet is that of the recommended shapes when the token
// has one — hex (16 symbols), base64 or base64url (64) — else the one its
// character classes span (lower, upper, digits, other). Random tokens of
// the recommended shapes pass (`openssl rand -hex 32` 256 bits, 32 bytes
// in base64 256–264); words, repeats and short tokens do not: "password"
// sixteen times, "0123456789abcdef" four times or "a" 128 times stay far
// below 256.
func EstimateBits(s string) float64 {
	var lower, upper, digit, other bool
	distinct := map[rune]bool{}
	rs := []rune(s)
	for _, r := range rs {
		distinct[r] = true
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	alphabet := 0
	for _, c := range []struct {
		on bool
		n  int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.on {
			alphabet += c.n
		}
	}
	if alphabet == 0 {
		return 0
	}
	switch {
	case isHex(s):
		alphabet = 16
	case isBase64(s) && upper && lower:
		alphabet = 64
	}
	// A string of few distinct symbols is drawn from a small alphabet,
	// whatever classes they belong to.
	alphabet = min(alphabet, 4*len(distinct))
	return float64(unpredictable(rs, alphabet)) * math.Log2(float64(alphabet))
}

// keyboard rows, in order: a walk along a row (qwerty…, asdf…, 1234…) is a
// run in this order.
const keyboard = "1234567890-=qwertyuiop[]asdfghjkl;'zxcvbnm,./"

// unpredictable counts the characters that neither repeat an earlier
// stretch nor continue a pattern a person types: it is the least of novel
// over the token, the differences between neighbours (runs such as
// "abcdef" or "9876"), between characters two apart (counters such as
// "000102…"), and between neighbours' keyboard positions (walks such as
// "qwertyuiop"). A random token loses nothing: its differences are as
// random as it is.
func unpredictable(rs []rune, alphabet int) int {
	n := novel(rs, alphabet)
	keys := make([]rune, len(rs))
	for i, r := range rs {
		keys[i] = r + 1<<20 // off the keyboard: no walk
		if j := strings.IndexRune(keyboard, unicode.ToLower(r)); j >= 0 {
			keys[i] = rune(j)
		}
	}
	for _, t := range []struct {
		rs  []rune
		lag int
	}{{rs, 1}, {rs, 2}, {keys, 1}} {
		if len(t.rs) > t.lag {
			n = min(n, t.lag+novel(diffs(t.rs, t.lag), alphabet))
		}
	}
	return n
}

// diffs is the difference of each character and the one lag before it.
func diffs(rs []rune, lag int) []rune {
	out := make([]rune, len(rs)-lag)
	for i := range out {
		out[i] = rs[i+lag] - rs[i]
	}
	return out
}

// isHex: hex digits of one case, with at least one letter (digits alone
// are drawn from 10 symbols, not 16).
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == "" && strings.ContainsAny(s, "abcdef") ||
		strings.Trim(s, "0123456789ABCDEF") == "" && strings.ContainsAny(s, "ABCDEF")
}

func isBase64(s string) bool {
	return strings.Trim(strings.TrimRight(s, "="), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") == ""
}

// novel counts the characters of rs that are not part of a repeat: a
// greedy left-to-right parse that skips, at each position, the longest
// stretch that already occurred earlier — what an LZ77 compressor would
// encode as a back-reference — if it is longer than a random string of
// this length and alphabet would repeat by chance (odds under one in a
// million), so that a random token loses nothing. Quadratic, for tokens
// of a few hundred characters; longer input is judged on its first 4096.
func novel(rs []rune, alphabet int) int {
	if len(rs) > 4096 {
		rs = rs[:4096]
	}
	pairs := float64(len(rs)) * float64(len(rs)) / 2
	minRepeat := max(3, int(math.Ceil(math.Log(pairs*1e6)/math.Log(float64(max(alphabet, 2))))))
	n := 0
	for i := 0; i < len(rs); {
		best := 0
		for j := 0; j < i; j++ {
			k := 0
			for i+k < len(rs) && rs[j+k] == rs[i+k] {
				k++
			}
			best = max(best, k)
		}
		if best >= minRepeat {
			i += best
			continue
		}
		n++
		i++
	}
	return n
}
