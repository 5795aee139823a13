package slots

import "github.com/rekeyhq/rekey/rotator"

// Value is what a slot holds. Fingerprint returns the SHA-256 fingerprint of
// the secret (rotator.Fingerprint), and "" for an absent value; the zero
// value of the type must be absent.
type Value interface {
	Fingerprint() string
}

// Slots are the three values of one target.
type Slots[V Value] struct {
	Current, Pending, Previous V
}

// Stage puts v beside the current value, or as the current value when
// there is none (a first delivery; a pending copy of v is then dropped).
func Stage[V Value](s Slots[V], v V) (Slots[V], bool) {
	var absent V
	want := v.Fingerprint()
	switch {
	case want == "", s.Current.Fingerprint() == want:
		return s, false
	case s.Current.Fingerprint() == "":
		s.Current = v
		if s.Pending.Fingerprint() == want {
			s.Pending = absent
		}
		return s, true
	case s.Pending.Fingerprint() == want:
		return s, false
	}
	s.Pending = v
	return s, true
}

// Promote makes the pending value d current and the current one previous
// (replacing an older previous value). It fails with ErrNotStaged when d
// is neither pending nor already current.
func Promote[V Value](s Slots[V], d rotator.Delivery) (Slots[V], bool, error) {
	switch {
	case d.Fingerprint != "" && s.Current.Fingerprint() == d.Fingerprint:
		return s, false, nil
	case d.Fingerprint == "" || s.Pending.Fingerprint() != d.Fingerprint:
		return s, false, NotStaged(d.Fingerprint)
	}
	return Slots[V]{Current: s.Pending, Previous: s.Current}, true, nil
}

// Cleanup drops the previous value and a pending value other than d.
func Cleanup[V Value](s Slots[V], d rotator.Delivery) (Slots[V], bool) {
	var absent V
	changed := false
	if s.Previous.Fingerprint() != "" {
		s.Previous, changed = absent, true
	}
	if fp := s.Pending.Fingerprint(); fp != "" && fp != d.Fingerprint {
		s.Pending, changed = absent, true
	}
	return s, changed
}

// Rollback makes the value d.OldFingerprint current again (from previous,
// or from pending) when d is current, and removes d from every slot. A
// target that never saw d is left alone. It fails with ErrOnlyCurrent when
// d was a first delivery (there is no old value to go back to) and with
// ErrOldGone when the old value was already cleaned up.
func Rollback[V Value](s Slots[V], d rotator.Delivery) (Slots[V], bool, error) {
	var absent V
	undo, old := d.Fingerprint, d.OldFingerprint
	if undo == "" {
		return s, false, nil
	}
	changed := false
	if s.Current.Fingerprint() == undo && undo != old {
		switch {
		case old == "":
			return s, false, OnlyCurrent()
		case s.Previous.Fingerprint() == old:
			s.Current, s.Previous = s.Previous, absent
		case s.Pending.Fingerprint() == old:
			s.Current, s.Pending = s.Pending, absent
		default:
			return s, false, OldGone(old)
		}
		changed = true
	}
	// d must not stay anywhere else either.
	if s.Pending.Fingerprint() == undo {
		s.Pending, changed = absent, true
	}
	if s.Previous.Fingerprint() == undo {
		s.Previous, changed = absent, true
	}
	return s, changed, nil
}

// Replace makes v the only value: current, with no pending and no previous
// value beside it. It is an emergency's delivery, whose old value is
// revoked already and worth nothing to consumers.
func Replace[V Value](s Slots[V], v V) (Slots[V], bool) {
	if v.Fingerprint() == "" {
		return s, false
	}
	if s.Current.Fingerprint() == v.Fingerprint() && s.Pending.Fingerprint() == "" && s.Previous.Fingerprint() == "" {
		return s, false
	}
	return Slots[V]{Current: v}, true
}
