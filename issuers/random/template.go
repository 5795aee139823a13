package random

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Character classes of the format placeholders.
const (
	classBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	classHex    = "0123456789abcdef"
	classAlnum  = "0123456789abcdefghijklmnopqrstuvwxyz" // lower-case letters and digits
)

var classes = map[string]string{
	"base62": classBase62,
	"hex":    classHex,
	"alnum":  classAlnum,
}

// maxPlaceholderLen bounds N in {class:N}.
const maxPlaceholderLen = 512

// segment is one piece of a template: literal text, or n random characters
// drawn from alphabet.
type segment struct {
	literal  string
	alphabet string
	n        int
}

// template is a parsed Config.Format.
type template struct {
	segments []segment
}

// parseTemplate parses a format such as "ka_live_{base62:32}". Errors do
// not carry the field name; Validate adds it.
func parseTemplate(format string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segments = append(t.segments, segment{literal: lit.String()})
			lit.Reset()
		}
	}
	placeholders := 0
	for i := 0; i < len(format); {
		c := format[i]
		if c != '{' {
			lit.WriteByte(c)
			i++
			continue
		}
		if strings.HasPrefix(format[i:], "{{") {
			lit.WriteByte('{')
			i += 2
			continue
		}
		end := strings.IndexByte(format[i:], '}')
		if end < 0 {
			return template{}, fmt.Errorf("unclosed placeholder at offset %d (write {{ for a literal {)", i)
		}
		body := format[i+1 : i+end]
		seg, err := parsePlaceholder(body)
		if err != nil {
			return template{}, fmt.Errorf("placeholder {%s}: %w", body, err)
		}
		flush()
		t.segments = append(t.segments, seg)
		placeholders++
		i += end + 1
	}
	flush()
	if placeholders == 0 {
		return template{}, errors.New("must contain at least one placeholder such as {base62:32}")
	}
	return t, nil
}

func parsePlaceholder(body string) (segment, error) {
	class, num, ok := strings.Cut(body, ":")
	if !ok {
		return segment{}, errors.New("want {class:N} with class base62, hex or alnum")
	}
	alphabet, known := classes[class]
	if !known {
		return segment{}, fmt.Errorf("unknown class %q (want base62, hex or alnum)", class)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxPlaceholderLen {
		return segment{}, fmt.Errorf("length %q out of range 1..%d", num, maxPlaceholderLen)
	}
	return segment{alphabet: alphabet, n: n}, nil
}

// entropyBits is the number of random bits in one rendering.
func (t template) entropyBits() float64 {
	var bits float64
	for _, s := range t.segments {
		if s.alphabet != "" {
			bits += float64(s.n) * math.Log2(float64(len(s.alphabet)))
		}
	}
	return bits
}

// render draws a new value from r (crypto/rand.Reader in production).
func (t template) render(r io.Reader) (string, error) {
	var b strings.Builder
	for _, s := range t.segments {
		if s.alphabet == "" {
			b.WriteString(s.literal)
			continue
		}
		chars, err := randomChars(r, s.alphabet, s.n)
		if err != nil {
			return "", err
		}
		b.Write(chars)
	}
	return b.String(), nil
}

// randomChars returns n characters drawn uniformly from alphabet (at most
// 256 characters) by rejection sampling: a byte is used only if it falls
// below the largest multiple of len(alphabet), so that the modulo carries no
// bias.
func randomChars(r io.Reader, alphabet string, n int) ([]byte, error) {
	size := len(alphabet)
	limit := 256 - 256%size // bytes >= limit are rejected
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alphabet[int(b)%size])
			if len(out) == n {
				break
			}
		}
	}
	return out, nil
}

// randomID returns prefix followed by 16 hex characters (64 random bits).
func randomID(prefix string) (string, error) {
	chars, err := randomChars(rand.Reader, classHex, 16)
	if err != nil {
		return "", err
	}
	return prefix + string(chars), nil
}
