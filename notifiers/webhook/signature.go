package webhook

import (
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

// The signing scheme is Standard Webhooks (internal/stdwebhooks, shared
// with the inbound exposure and departure webhooks): headers webhook-id,
// webhook-timestamp (unix seconds) and webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>"; a secret "whsec_<base64>"
// is decoded, any other is the raw key.

// Errors returned by Verify; wrapped errors say why.
var (
	// ErrSignature: headers missing, malformed, or no signature matches.
	ErrSignature = stdwebhooks.ErrSignature
	// ErrTimestamp: webhook-timestamp malformed or outside the tolerance.
	ErrTimestamp = stdwebhooks.ErrTimestamp
)

// DefaultTolerance is the clock skew Verify allows when given none.
const DefaultTolerance = stdwebhooks.DefaultTolerance

// Sign returns the webhook-signature header value for a message.
func Sign(secret, id, timestamp string, body []byte) (string, error) {
	return stdwebhooks.Sign(secret, id, timestamp, body)
}

// Verify checks a received message's signature header (several
// space-separated signatures are allowed; one must match) and that its
// timestamp (unix seconds) lies within tolerance of now (DefaultTolerance
// when tolerance ≤ 0). Receivers of rekey's notifications can call it.
func Verify(secret, id, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	return stdwebhooks.Verify(secret, id, timestamp, body, signature, now, tolerance)
}
