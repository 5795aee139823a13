package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signature errors returned by Verify.
var (
	// ErrSignature: headers missing, malformed, or no signature matches.
	ErrSignature = errors.New("webhook: invalid signature")
	// ErrTimestamp: webhook-timestamp malformed or outside the tolerance.
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
)

// DefaultTolerance is the clock skew Verify allows when given none.
const DefaultTolerance = 5 * time.Minute

// secretPrefix marks a Standard Webhooks secret: "whsec_" + base64 key.
const secretPrefix = "whsec_"

// signingKey derives the HMAC key from a configured secret.
func signingKey(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(key) == 0 {
			return nil, errors.New("secret has the whsec_ prefix but is not valid base64")
		}
		return key, nil
	}
	if secret == "" {
		return nil, errors.New("empty secret")
	}
	return []byte(secret), nil
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), as
// Standard Webhooks defines it. The key is secret itself, or, for a
// "whsec_<base64>" secret, the decoded bytes.
func Sign(secret, id, timestamp string, body []byte) (string, error) {
	key, err := signingKey(secret)
	if err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, timestamp, body)), nil
}

// Verify checks a received message the way a Standard Webhooks receiver
// does: id, timestamp and signature are the webhook-id, webhook-timestamp
// and webhook-signature headers, body the raw request body. The timestamp
// (unix seconds) must lie within tolerance of now (DefaultTolerance when
// tolerance ≤ 0); the signature header may list several space-separated
// "v1,<base64>" signatures (during a secret rotation) and one must match.
// Errors wrap ErrSignature or ErrTimestamp and never contain the secret.
func Verify(secret, id, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return fmt.Errorf("%w: missing webhook-id, webhook-timestamp or webhook-signature", ErrSignature)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed webhook-timestamp", ErrTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %s off", ErrTimestamp, skew.Round(time.Second))
	}
	key, err := signingKey(secret)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	want := mac(key, id, timestamp, body)
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
