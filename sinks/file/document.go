package file

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// managedBy is the value of the marker that says rekey owns a document.
const managedBy = "rekey"

// entry is one value of a key as stored in its document.
type entry struct {
	Value      string    `json:"value"`
	Generation int       `json:"generation"`
	FP         string    `json:"fingerprint"` // written for consumers; never read back as truth
	UpdatedAt  time.Time `json:"updated_at"`
}

// Fingerprint is the fingerprint of the stored value (recomputed, never
// trusted from the document), "" for a missing entry.
func (e *entry) Fingerprint() string {
	if e == nil || e.Value == "" {
		return ""
	}
	return rotator.Fingerprint(e.Value)
}

// document is the JSON a consumer reads:
//
//	{"managed_by":"rekey","key":"…","current":{"value":…,"generation":…,
//	 "fingerprint":…,"updated_at":…},"pending":{…},"previous":{…}}
//
// Fields rekey does not know are kept as they are. The three entries are
// the document's slots, whose transitions are shared (rotator/slots).
type document struct {
	ManagedBy string
	Key       string
	slots.Slots[*entry]
	extra map[string]json.RawMessage
}

func (d *document) managed() bool { return d.ManagedBy == managedBy }

// known lists the fields document owns, in the order they are written.
var known = []string{"managed_by", "key", "current", "pending", "previous"}

// decodeDocument parses raw. ok is false when raw is not a JSON object at
// all; a field of the wrong shape is an error (doc then holds at least the
// marker).
func decodeDocument(raw []byte) (doc *document, ok bool, err error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return &document{}, false, nil
	}
	doc = &document{}
	// The marker first, so that a caller can tell whose malformed document
	// this is.
	_ = json.Unmarshal(fields["managed_by"], &doc.ManagedBy)
	targets := map[string]any{
		"managed_by": &doc.ManagedBy, "key": &doc.Key,
		"current": &doc.Current, "pending": &doc.Pending, "previous": &doc.Previous,
	}
	for name, v := range fields {
		dst, isKnown := targets[name]
		if !isKnown {
			if doc.extra == nil {
				doc.extra = map[string]json.RawMessage{}
			}
			doc.extra[name] = v
			continue
		}
		// Only the field name goes into the error: a value may be a secret.
		if err := json.Unmarshal(v, dst); err != nil {
			return doc, true, fmt.Errorf("field %q is malformed", name)
		}
	}
	// An entry without a value is an absent slot.
	for _, e := range []**entry{&doc.Current, &doc.Pending, &doc.Previous} {
		if *e != nil && (*e).Value == "" {
			*e = nil
		}
	}
	return doc, true, nil
}

// encode writes the document: known fields, then the others, indented.
func (d *document) encode() ([]byte, error) {
	out := make(map[string]any, len(known)+len(d.extra))
	for k, v := range d.extra {
		out[k] = v
	}
	out["managed_by"] = d.ManagedBy
	out["key"] = d.Key
	for name, e := range map[string]*entry{"current": d.Current, "pending": d.Pending, "previous": d.Previous} {
		if e != nil {
			out[name] = e
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// set replaces the document's slots with next. The entry that becomes
// current is stamped with now: updated_at tells when it became current.
func (d *document) set(next slots.Slots[*entry], now time.Time) {
	if next.Current != nil && next.Current != d.Current {
		e := *next.Current
		e.UpdatedAt = now.UTC()
		next.Current = &e
	}
	d.Slots = next
}

// newEntry is the entry of delivery d, written at now.
func newEntry(d rotator.Delivery, now time.Time) *entry {
	return &entry{Value: d.Secret.Reveal(), Generation: d.Generation, FP: d.Fingerprint, UpdatedAt: now.UTC()}
}
