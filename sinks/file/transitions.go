package file

import (
	"errors"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The transitions below are pure: each edits a document in memory and says
// whether anything changed, so that a replay writes nothing.

var (
	errNotStaged   = errors.New("no pending value with this fingerprint to promote")
	errOldGone     = errors.New("the old value to restore is gone")
	errOnlyCurrent = errors.New("refusing to roll back a first delivery: it is the only current value")
)

// stage puts d beside the current value, or as current when there is none.
func stage(doc *document, d rotator.Delivery, now time.Time) bool {
	switch {
	case doc.Current.fp() == d.Fingerprint:
		return false
	case doc.Current.fp() == "":
		doc.Current = newEntry(d, now)
		if doc.Pending.fp() == d.Fingerprint {
			doc.Pending = nil
		}
		return true
	case doc.Pending.fp() == d.Fingerprint:
		return false
	}
	doc.Pending = newEntry(d, now)
	return true
}

// promote makes the pending value d current, the current one previous.
func promote(doc *document, d rotator.Delivery, now time.Time) (bool, error) {
	if doc.Current.fp() == d.Fingerprint {
		return false, nil
	}
	if doc.Pending.fp() != d.Fingerprint {
		return false, errNotStaged
	}
	next := *doc.Pending
	next.UpdatedAt = now.UTC()
	doc.Previous, doc.Current, doc.Pending = doc.Current, &next, nil
	return true, nil
}

// cleanup drops the previous value and a pending value other than d.
func cleanup(doc *document, d rotator.Delivery) bool {
	changed := false
	if doc.Previous != nil {
		doc.Previous, changed = nil, true
	}
	if doc.Pending != nil && doc.Pending.fp() != d.Fingerprint {
		doc.Pending, changed = nil, true
	}
	return changed
}

// rollback makes the value d.OldFingerprint current again and removes d.
func rollback(doc *document, d rotator.Delivery, now time.Time) (bool, error) {
	changed := false
	if doc.Current.fp() == d.Fingerprint && doc.Current.fp() != d.OldFingerprint {
		var old **entry
		switch {
		case d.OldFingerprint == "":
			return false, errOnlyCurrent
		case doc.Previous.fp() == d.OldFingerprint:
			old = &doc.Previous
		case doc.Pending.fp() == d.OldFingerprint:
			old = &doc.Pending
		default:
			return false, errOldGone
		}
		restored := **old
		restored.UpdatedAt = now.UTC()
		*old = nil
		doc.Current, changed = &restored, true
	}
	// d must not stay anywhere else either.
	if doc.Pending.fp() == d.Fingerprint {
		doc.Pending, changed = nil, true
	}
	if doc.Previous.fp() == d.Fingerprint {
		doc.Previous, changed = nil, true
	}
	return changed, nil
}
