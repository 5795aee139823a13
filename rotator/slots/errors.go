package slots

import (
	"errors"
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// The refusals of the transitions. Match them with errors.Is; the errors
// the transitions return also wrap the engine's sentinel (rotator.ErrNotFound
// or rotator.ErrBadState) and carry their classification.
var (
	ErrNotStaged   = errors.New("no pending value with this fingerprint to promote")
	ErrOldGone     = errors.New("the old value to restore is gone")
	ErrOnlyCurrent = errors.New("refusing to roll back a first delivery: it is the only current value")
	ErrMismatch    = errors.New("the delivery's secret does not match its fingerprint")
)

// NotStaged is the error of a promotion of fp, which is not pending:
// permanent (invalid), rotator.ErrNotFound.
func NotStaged(fp string) error {
	return rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("%w (fingerprint %s): %w", ErrNotStaged, rotator.ShortFingerprint(fp), rotator.ErrNotFound))
}

// OldGone is the error of a rollback to old, which the target no longer
// holds: permanent (invalid), rotator.ErrNotFound.
func OldGone(old string) error {
	return rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("%w (old fingerprint %s): %w", ErrOldGone, rotator.ShortFingerprint(old), rotator.ErrNotFound))
}

// OnlyCurrent is the error of a rollback of a first delivery: permanent
// (invariant), rotator.ErrBadState — retrying cannot make an old value
// appear, and removing the only one would leave consumers with nothing.
func OnlyCurrent() error {
	return rotator.PermanentReason(rotator.ReasonInvariant, fmt.Errorf("%w: %w", ErrOnlyCurrent, rotator.ErrBadState))
}

// CheckDelivery refuses a delivery to stage whose secret is missing or does
// not match its fingerprint: permanent (invalid). The error names the
// fingerprint, never the secret.
func CheckDelivery(d rotator.Delivery) error {
	if d.Secret.IsZero() || d.Secret.Fingerprint() != d.Fingerprint {
		return rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%w %s", ErrMismatch, rotator.ShortFingerprint(d.Fingerprint)))
	}
	return nil
}
