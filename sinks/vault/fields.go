package vault

import (
	"fmt"
	"maps"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// fields names the three KV fields of a target.
type fields struct{ cur, pend, prev string }

// value is what one field holds ("" = absent).
type value string

// Fingerprint is the value's fingerprint, "" when absent.
func (v value) Fingerprint() string {
	if v == "" {
		return ""
	}
	return rotator.Fingerprint(string(v))
}

// kv are a target's three fields; the transitions over them are shared
// (rotator/slots).
type kv = slots.Slots[value]

// readSlots extracts our fields from a version's data. A field that is not
// a string is an error naming the field, never its content.
func readSlots(data map[string]any, f fields) (kv, error) {
	var s kv
	for _, x := range []struct {
		name string
		dst  *value
	}{{f.cur, &s.Current}, {f.pend, &s.Pending}, {f.prev, &s.Previous}} {
		v, ok := data[x.name]
		if !ok || v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok {
			return kv{}, fmt.Errorf("field %q is not a string", x.name)
		}
		*x.dst = value(str)
	}
	return s, nil
}

// apply returns a copy of data with our fields set from s (absent ones
// deleted); fields rekey does not own are kept.
func apply(s kv, data map[string]any, f fields) map[string]any {
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	for name, v := range map[string]value{f.cur: s.Current, f.pend: s.Pending, f.prev: s.Previous} {
		if v == "" {
			delete(out, name)
		} else {
			out[name] = string(v)
		}
	}
	return out
}
