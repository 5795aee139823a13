package consumer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Modes of a consumer.
const (
	ModeReload = "reload" // re-reads the key every Options.Reload
	ModeOnce   = "once"   // reads the key once and never again
)

// Report is what a consumer saw. Keys appear only as SHA-256 fingerprints.
type Report struct {
	Source    string    `json:"source"`
	Mode      string    `json:"mode"`
	Reload    string    `json:"reload"`
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`

	// Requests = Served + Failures. Served are 2xx answers; Failures are
	// every other answer and every request without one.
	Requests int            `json:"requests"`
	Served   int            `json:"served"`
	Failures int            `json:"failures"`
	ByStatus map[string]int `json:"by_status"` // "200", "401", …, StatusError
	// LastError is the last transport error (no HTTP answer), if any.
	LastError string `json:"last_error,omitempty"`

	// Attestations counts reports to rekey of the key held (-attest-url);
	// LastAttested is the fingerprint last accepted (202), at LastAttestedAt.
	Attestations    int       `json:"attestations,omitempty"`
	AttestErrors    int       `json:"attest_errors,omitempty"`
	LastAttestError string    `json:"last_attest_error,omitempty"`
	LastAttested    string    `json:"last_attested,omitempty"`
	LastAttestedAt  time.Time `json:"last_attested_at,omitzero"`

	Reads         int    `json:"reads"`
	ReadErrors    int    `json:"read_errors"`
	LastReadError string `json:"last_read_error,omitempty"`

	// Keys are the keys the consumer held, in the order it first read them.
	Keys []KeySeen `json:"keys"`
	// Switches are the moments the consumer read a key different from the
	// one it held (the first read included).
	Switches []Switch `json:"switches"`
	// Spans are the consecutive requests with the same key and the same
	// answer, in order: a switch of key or a change of answer starts a new
	// span.
	Spans []Span `json:"spans"`
}

// KeySeen is one key the consumer held.
type KeySeen struct {
	Fingerprint string    `json:"fingerprint"`
	ReadAt      time.Time `json:"read_at"` // first read from the source
	FirstSentAt time.Time `json:"first_sent_at,omitzero"`
	LastSentAt  time.Time `json:"last_sent_at,omitzero"`
	Requests    int       `json:"requests"`
	Served      int       `json:"served"`
}

// Switch is the moment a consumer started to use another key.
type Switch struct {
	At time.Time `json:"at"`
	To string    `json:"to"` // fingerprint
}

// Span is a run of requests made with one key that got the same answer.
type Span struct {
	Fingerprint     string    `json:"fingerprint"`
	Status          string    `json:"status"`
	Count           int       `json:"count"`
	FirstSentAt     time.Time `json:"first_sent_at"`
	FirstAnsweredAt time.Time `json:"first_answered_at"`
	LastSentAt      time.Time `json:"last_sent_at"`
	LastAnsweredAt  time.Time `json:"last_answered_at"`
}

// Key returns what the report says of the key with fingerprint fp.
func (r Report) Key(fp string) (KeySeen, bool) {
	for _, k := range r.Keys {
		if k.Fingerprint == fp {
			return k, true
		}
	}
	return KeySeen{}, false
}

// Current returns the fingerprint of the key held last, "" before any.
func (r Report) Current() string {
	if len(r.Switches) == 0 {
		return ""
	}
	return r.Switches[len(r.Switches)-1].To
}

// SwitchedTo returns when the consumer started to use the key with
// fingerprint fp (the last time, if it did so more than once).
func (r Report) SwitchedTo(fp string) (time.Time, bool) {
	for i := len(r.Switches) - 1; i >= 0; i-- {
		if r.Switches[i].To == fp {
			return r.Switches[i].At, true
		}
	}
	return time.Time{}, false
}

// WriteFile writes r as JSON to path atomically (a temporary file renamed
// over it), so a reader never sees half a report.
func (r Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("consumer: write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("consumer: write report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("consumer: write report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("consumer: write report: %w", err)
	}
	return nil
}

// ReadReport reads a report written by WriteFile.
func ReadReport(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{}, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return Report{}, fmt.Errorf("consumer: report %s: %w", path, err)
	}
	return r, nil
}
