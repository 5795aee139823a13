package rotator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// Secret holds credential material. Every way of printing it — String,
// Format, MarshalJSON, MarshalText, LogValue — yields "<redacted>"; the raw
// value is available only through Reveal, to be called where it goes on the
// wire.
type Secret struct{ v string }

const redacted = "<redacted>"

// NewSecret wraps a raw value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the raw value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Fingerprint is the hex SHA-256 of the raw value, the only form in which the
// store, audit trail and notifications refer to a credential's material.
func (s Secret) Fingerprint() string { return Fingerprint(s.v) }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Fingerprint returns the hex SHA-256 of a raw secret value.
func Fingerprint(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Scrub replaces the secret's raw value in msg with "<redacted>": a last
// line of defence should an adapter echo a value in an error.
func (s Secret) Scrub(msg string) string {
	if s.v == "" {
		return msg
	}
	return strings.ReplaceAll(msg, s.v, redacted)
}

// ShortFingerprint is the first 12 hex characters, for humans.
func ShortFingerprint(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
