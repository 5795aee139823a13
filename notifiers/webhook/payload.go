package webhook

import (
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// SchemaVersion is the version of Payload. It changes only when a field is
// removed or changes meaning; new fields may be added within a version.
const SchemaVersion = 1

// Payload is the JSON body of every POST — the documented, stable schema
// receivers parse. Every member is always present: strings may be empty,
// owners is an array ([] when none) and fields an object ({} when none).
//
//	{
//	  "version": 1,                      // SchemaVersion
//	  "id": "…",                         // event id, equal to the webhook-id header; de-duplicate on it
//	  "kind": "rotation.held",           // rotator.Event* kinds
//	  "severity": "warning",             // info | warning | critical
//	  "key": "kubeadapt",                // the managed key
//	  "rotation_id": "…",                // "" when the event is not about a rotation
//	  "phase": "draining",               // rotation phase, or ""
//	  "trigger": "age",                  // age | departure | exposure | unauthorized | decommission | manual | bootstrap, or ""
//	  "mode": "staged",                  // staged | emergency, or ""
//	  "actor": "policy:maxage",          // who or what caused it
//	  "owners": ["ana@example.com"],     // people on file for the key
//	  "message": "…",                    // human-readable sentence
//	  "fields": {"fingerprint": "…"},    // extra string details (never secret material)
//	  "at": "2025-03-01T10:00:00Z"       // RFC 3339, UTC
//	}
type Payload struct {
	Version    int               `json:"version"`
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	Severity   string            `json:"severity"`
	Key        string            `json:"key"`
	RotationID string            `json:"rotation_id"`
	Phase      string            `json:"phase"`
	Trigger    string            `json:"trigger"`
	Mode       string            `json:"mode"`
	Actor      string            `json:"actor"`
	Owners     []string          `json:"owners"`
	Message    string            `json:"message"`
	Fields     map[string]string `json:"fields"`
	At         time.Time         `json:"at"`
}

// NewPayload converts an event to the wire schema.
func NewPayload(ev rotator.Event) Payload {
	owners := ev.Owners
	if owners == nil {
		owners = []string{}
	}
	fields := ev.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	return Payload{
		Version:    SchemaVersion,
		ID:         ev.ID,
		Kind:       ev.Kind,
		Severity:   string(ev.Severity),
		Key:        ev.Key,
		RotationID: ev.RotationID,
		Phase:      string(ev.Phase),
		Trigger:    string(ev.Trigger),
		Mode:       string(ev.Mode),
		Actor:      ev.Actor,
		Owners:     owners,
		Message:    ev.Message,
		Fields:     fields,
		At:         ev.At.UTC(),
	}
}
