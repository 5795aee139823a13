package auth

import (
	"math"
	"unicode"
)

// MinSharedTokenBits is the least estimated entropy accepted for a shared
// secret configured by hand (the bootstrap admin token, the metrics
// token): 32 bytes.
const MinSharedTokenBits = 256

// EstimateBits estimates the entropy of a token configured by hand: its
// length times log2 of the alphabet its character classes span (lower,
// upper, digits, other), capped by what its distinct characters allow. It
// is generous to random strings (`openssl rand -hex 32` gives 330) and
// harsh to words, repeats and short tokens.
func EstimateBits(s string) float64 {
	var lower, upper, digit, other bool
	distinct := map[rune]bool{}
	n := 0
	for _, r := range s {
		n++
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
	// A string of few distinct symbols is drawn from a small alphabet,
	// whatever classes they belong to.
	alphabet = min(alphabet, 4*len(distinct))
	return float64(n) * math.Log2(float64(alphabet))
}
