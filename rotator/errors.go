package rotator

import (
	"errors"
	"fmt"
)

// Reason classifies a failure; it becomes a metric label and is stored on the
// rotation, so it is a small closed set.
type Reason string

const (
	ReasonNone        Reason = ""
	ReasonTransient   Reason = "transient"    // network, 5xx, timeouts: retried
	ReasonRateLimited Reason = "rate_limited" // 429: retried
	ReasonAuth        Reason = "auth"         // 401/403 from an upstream admin API: permanent
	ReasonInvalid     Reason = "invalid"      // 4xx, bad input: permanent
	ReasonNotManaged  Reason = "not_managed"  // a sink refuses to touch what rekey does not own
	ReasonConflict    Reason = "conflict"     // concurrent writer, check-and-set failed: retried
	ReasonInvariant   Reason = "invariant"    // a safety check refused the step: retried
	ReasonInternal    Reason = "internal"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct {
	err    error
	reason Reason
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err, reason: ReasonOf(err)}
}

// PermanentReason marks err as permanent with an explicit reason.
func PermanentReason(reason Reason, err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err, reason: reason}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// reasonError attaches a Reason to a retryable error.
type reasonError struct {
	err    error
	reason Reason
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// WithReason attaches a reason to err without making it permanent.
func WithReason(reason Reason, err error) error {
	if err == nil {
		return nil
	}
	return &reasonError{err: err, reason: reason}
}

// ReasonOf returns the reason attached to err (the outermost one wins), or
// ReasonTransient / ReasonInternal when none was attached.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonNone
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch t := e.(type) {
		case *permanentError:
			if t.reason != ReasonNone && t.reason != ReasonTransient {
				return t.reason
			}
		case *reasonError:
			return t.reason
		}
	}
	if IsPermanent(err) {
		return ReasonInternal
	}
	return ReasonTransient
}

// HTTPStatusError classifies an upstream HTTP status the way every adapter
// should: 408, 429 and 5xx retryable, 401/403 permanent auth, other 4xx
// permanent.
// what names the adapter and the reference, never a secret.
func HTTPStatusError(what string, status int, detail string) error {
	err := fmt.Errorf("%s: HTTP %d %s", what, status, detail)
	switch {
	case status == 429:
		return WithReason(ReasonRateLimited, err)
	case status >= 500 || status == 408: // 408: the server gave up waiting; try again
		return WithReason(ReasonTransient, err)
	case status == 401 || status == 403:
		return PermanentReason(ReasonAuth, err)
	case status == 409:
		return WithReason(ReasonConflict, err)
	case status >= 400:
		return PermanentReason(ReasonInvalid, err)
	}
	return err
}

// Sentinel errors of the engine and store.
var (
	ErrNotFound       = errors.New("not found")
	ErrActiveRotation = errors.New("key already has an active rotation")
	ErrConflict       = errors.New("concurrent update")
	ErrNotManaged     = errors.New("not managed by rekey")
	ErrBadState       = errors.New("not allowed in this state")
	ErrRejected       = errors.New("rejected") // input checked and refused (a submitted secret)
	// ErrTooManyConsumers: a key already has the most consumers remembered.
	ErrTooManyConsumers = errors.New("too many consumers for the key")
)

// replayedError marks a failed mint answer that the issuer replayed for an
// idempotency key: it stored the key's first answer, a failure, and gives
// it again for the key's whole window whatever happens meanwhile.
type replayedError struct{ err error }

func (e *replayedError) Error() string { return e.err.Error() }
func (e *replayedError) Unwrap() error { return e.err }

// ReplayedFailure marks err, a failed Mint, as the issuer's replay of a
// stored answer to the request's idempotency key (Idempotent-Replayed:
// true): asking again with the same key cannot succeed, so the engine
// abandons the mint intent and mints the next generation under a new key.
// A nil err stays nil.
func ReplayedFailure(err error) error {
	if err == nil {
		return nil
	}
	return &replayedError{err: err}
}

// IsReplayedFailure reports whether err, or an error it wraps, was marked
// ReplayedFailure.
func IsReplayedFailure(err error) bool {
	var r *replayedError
	return errors.As(err, &r)
}
