package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the delay RetryAfter returns: an upstream asking for
// more than a day is either confused or gone, and the caller's own backoff
// still applies.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter parses the Retry-After header of an upstream answer (RFC 9110
// §10.2.3: delay-seconds or an HTTP-date) into a delay from now, at most
// MaxRetryAfter. It is zero when the header is absent, unparsable or in
// the past. Every adapter that reads Retry-After uses this one parser.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now).Round(time.Second), MaxRetryAfter)
	}
	return 0
}

// WithRetryAfter returns err carrying the delay the upstream asked for:
// the result has a RetryAfter() time.Duration method, which rekey's retry
// owners (the engine's step loop and notification dispatcher) look for
// with errors.As, and unwraps to err, so its classification
// (rotator.IsPermanent, rotator.ReasonOf) is unchanged. A nil err or a
// non-positive delay returns err as is.
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &retryAfterError{err: err, after: d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return e.err.Error() + " (retry after " + e.after.String() + ")"
}

func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter is the delay the upstream asked for.
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }
