// Package stdwebhooks implements the Standard Webhooks signature scheme
// (https://www.standardwebhooks.com) for both ends of a webhook: a message
// carries the headers webhook-id, webhook-timestamp (unix seconds) and
// webhook-signature, a space-separated list of "v1,<base64 HMAC-SHA256>"
// signatures over "id.timestamp.body"; the secret is either the raw HMAC key
// or "whsec_" + the base64 of the key. rekey's inbound exposure and departure
// webhooks verify with it, and its outbound webhook notifier signs the same
// way. Keys print as "<redacted>" and no error ever contains key material.
package stdwebhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names, as Standard Webhooks defines them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is the clock skew Verify allows when given none.
const DefaultTolerance = 5 * time.Minute

// SecretPrefix marks a Standard Webhooks secret: "whsec_" + base64 key.
const SecretPrefix = "whsec_"

// MinKeyLen is the shortest HMAC key a receiver should accept. Standard
// Webhooks recommends 24 to 64 random bytes.
const MinKeyLen = 16

// maxIDLen bounds webhook-id, which receivers store and log.
const maxIDLen = 256

// Errors returned by Verify and VerifyRequest; wrapped errors say why.
var (
	// ErrSignature: headers missing or malformed, or no signature matches.
	ErrSignature = errors.New("invalid signature")
	// ErrTimestamp: webhook-timestamp malformed or outside the tolerance.
	ErrTimestamp = errors.New("timestamp outside tolerance")
)

// Key is an HMAC-SHA256 key derived from a configured secret. Every way of
// printing it yields "<redacted>".
type Key struct{ b []byte }

const redacted = "<redacted>"

// ParseKey derives the key from a secret: the base64-decoded rest of a
// "whsec_<base64>" secret, or else the secret's bytes. The error never
// contains the secret.
func ParseKey(secret string) (Key, error) {
	if rest, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) == 0 {
			return Key{}, errors.New("secret has the whsec_ prefix but is not valid base64")
		}
		return Key{b: b}, nil
	}
	if secret == "" {
		return Key{}, errors.New("empty secret")
	}
	return Key{b: []byte(secret)}, nil
}

// Len is the key's length in bytes.
func (k Key) Len() int { return len(k.b) }

// Equal reports whether k and o are the same key (in constant time).
func (k Key) Equal(o Key) bool { return hmac.Equal(k.b, o.b) }

func (k Key) String() string               { return redacted }
func (k Key) GoString() string             { return redacted }
func (k Key) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (k Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (k Key) LogValue() slog.Value         { return slog.StringValue(redacted) }

func (k Key) mac(id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, k.b)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func (k Key) Sign(id, timestamp string, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(k.mac(id, timestamp, body))
}

// SetHeaders signs body as message id sent at t and sets the three headers
// on h; senders (and tests) use it.
func (k Key) SetHeaders(h http.Header, id string, t time.Time, body []byte) {
	ts := strconv.FormatInt(t.Unix(), 10)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, k.Sign(id, ts, body))
}

// Verify checks a received message the way a Standard Webhooks receiver
// does: id, timestamp and signature are the three header values and body
// the raw request body. The timestamp (unix seconds) must lie within
// tolerance of now, in either direction (DefaultTolerance when tolerance
// ≤ 0); one of the space-separated "v1,<base64>" signatures must match
// (several are sent while the sender rotates its secret). Errors wrap
// ErrSignature or ErrTimestamp.
func (k Key) Verify(id, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return fmt.Errorf("%w: missing %s, %s or %s", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	if len(k.b) == 0 {
		return fmt.Errorf("%w: no key", ErrSignature)
	}
	if _, err := checkTimestamp(timestamp, now, tolerance); err != nil {
		return err
	}
	want := k.mac(id, timestamp, body)
	for _, sig := range strings.Fields(signature) {
		version, enc, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}

func checkTimestamp(timestamp string, now time.Time, tolerance time.Duration) (time.Time, error) {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed %s", ErrTimestamp, HeaderTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	t := time.Unix(sec, 0)
	if skew := now.Sub(t); skew > tolerance || skew < -tolerance {
		return time.Time{}, fmt.Errorf("%w: %s off (tolerance %s)", ErrTimestamp, skew.Round(time.Second), tolerance)
	}
	return t, nil
}

// Message is an authenticated message's identity.
type Message struct {
	ID        string    // webhook-id: the same on every delivery attempt
	Timestamp time.Time // webhook-timestamp: fresh on every attempt
	// RawTimestamp is the header as sent. ID + "." + RawTimestamp names one
	// signed attempt: a compliant sender never sends it twice, so seeing it
	// again means the message was replayed.
	RawTimestamp string
}

// AttemptID is ID + "." + RawTimestamp, the replay-detection key.
func (m Message) AttemptID() string { return m.ID + "." + m.RawTimestamp }

// VerifyRequest checks the Standard Webhooks headers of a request whose raw
// body is body, trying each key (a receiver may hold the old and the new
// secret while rotating). webhook-id must also be 1 to 256 visible ASCII
// characters, since receivers store and log it. Errors wrap ErrSignature or
// ErrTimestamp.
func VerifyRequest(h http.Header, body []byte, now time.Time, tolerance time.Duration, keys ...Key) (Message, error) {
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id != "" && !visibleASCII(id, maxIDLen) {
		return Message{}, fmt.Errorf("%w: %s must be 1 to %d visible ASCII characters", ErrSignature, HeaderID, maxIDLen)
	}
	if len(keys) == 0 {
		return Message{}, fmt.Errorf("%w: no key", ErrSignature)
	}
	var err error
	for _, k := range keys {
		if err = k.Verify(id, ts, body, sig, now, tolerance); err == nil {
			t, _ := checkTimestamp(ts, now, tolerance)
			return Message{ID: id, Timestamp: t, RawTimestamp: ts}, nil
		}
		if errors.Is(err, ErrTimestamp) {
			return Message{}, err
		}
	}
	return Message{}, err
}

func visibleASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Sign is Key.Sign for a secret given as configured (raw or "whsec_…"),
// with the signature of notifiers/webhook.Sign.
func Sign(secret, id, timestamp string, body []byte) (string, error) {
	k, err := ParseKey(secret)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return k.Sign(id, timestamp, body), nil
}

// Verify is Key.Verify for a secret given as configured (raw or
// "whsec_…"), with the signature of notifiers/webhook.Verify.
func Verify(secret, id, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return fmt.Errorf("%w: missing %s, %s or %s", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	if _, err := checkTimestamp(timestamp, now, tolerance); err != nil {
		return err
	}
	k, err := ParseKey(secret)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return k.Verify(id, timestamp, body, signature, now, tolerance)
}
