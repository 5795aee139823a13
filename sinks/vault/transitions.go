package vault

import (
	"errors"
	"fmt"
	"maps"

	"github.com/rekeyhq/rekey/rotator"
)

// fields names the three KV fields of a target.
type fields struct{ cur, pend, prev string }

// slots are the three values a target holds ("" = absent). The transitions
// below are pure: each returns the new slots and whether anything changed,
// so that a replay writes nothing.
type slots struct{ cur, pend, prev string }

var (
	errNotStaged   = errors.New("no pending value with this fingerprint to promote")
	errOldGone     = errors.New("the old value to restore is gone")
	errOnlyCurrent = errors.New("refusing to roll back a first delivery: it is the only current value")
)

func fp(v string) string {
	if v == "" {
		return ""
	}
	return rotator.Fingerprint(v)
}

// readSlots extracts our fields from a version's data. A field that is not
// a string is an error naming the field, never its content.
func readSlots(data map[string]any, f fields) (slots, error) {
	var s slots
	for _, x := range []struct {
		name string
		dst  *string
	}{{f.cur, &s.cur}, {f.pend, &s.pend}, {f.prev, &s.prev}} {
		v, ok := data[x.name]
		if !ok || v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok {
			return slots{}, fmt.Errorf("field %q is not a string", x.name)
		}
		*x.dst = str
	}
	return s, nil
}

// apply returns a copy of data with our fields set from s (absent ones
// deleted); fields rekey does not own are kept.
func (s slots) apply(data map[string]any, f fields) map[string]any {
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	for name, v := range map[string]string{f.cur: s.cur, f.pend: s.pend, f.prev: s.prev} {
		if v == "" {
			delete(out, name)
		} else {
			out[name] = v
		}
	}
	return out
}

// stage puts secret beside the current value, or as current when there is
// none.
func stage(s slots, secret string) (slots, bool) {
	want := fp(secret)
	switch {
	case fp(s.cur) == want:
		return s, false
	case s.cur == "":
		s.cur = secret
		if fp(s.pend) == want {
			s.pend = ""
		}
		return s, true
	case fp(s.pend) == want:
		return s, false
	}
	s.pend = secret
	return s, true
}

// promote makes the pending value with fingerprint want current and the
// current one previous.
func promote(s slots, want string) (slots, bool, error) {
	if fp(s.cur) == want {
		return s, false, nil
	}
	if fp(s.pend) != want {
		return s, false, errNotStaged
	}
	return slots{cur: s.pend, prev: s.cur}, true, nil
}

// cleanup drops the previous value and a pending value other than keep.
func cleanup(s slots, keep string) (slots, bool) {
	changed := false
	if s.prev != "" {
		s.prev, changed = "", true
	}
	if s.pend != "" && fp(s.pend) != keep {
		s.pend, changed = "", true
	}
	return s, changed
}

// rollback makes the value with fingerprint old current again and removes
// the value with fingerprint undo.
func rollback(s slots, undo, old string) (slots, bool, error) {
	changed := false
	if fp(s.cur) == undo && undo != old {
		switch {
		case old == "":
			return s, false, errOnlyCurrent
		case fp(s.prev) == old:
			s.cur, s.prev = s.prev, ""
		case fp(s.pend) == old:
			s.cur, s.pend = s.pend, ""
		default:
			return s, false, errOldGone
		}
		changed = true
	}
	if s.pend != "" && fp(s.pend) == undo {
		s.pend, changed = "", true
	}
	if s.prev != "" && fp(s.prev) == undo {
		s.prev, changed = "", true
	}
	return s, changed, nil
}
