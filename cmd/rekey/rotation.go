package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/rotator"
)

// rotationOut is a rotation as the API answers it, with the structured
// waiting state when the daemon reports one.
type rotationOut struct {
	app.RotationView
	Waiting *waiting `json:"waiting,omitempty"`
}

// waiting is what an active rotation waits for (SHARED-CONTRACTS.md):
// reason, a sentence, since when, the next check or deadline, progress,
// the last error.
type waiting struct {
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	Since     string    `json:"since"`
	NextCheck string    `json:"next_check,omitempty"`
	Deadline  string    `json:"deadline,omitempty"`
	Escalates string    `json:"escalates,omitempty"`
	Progress  *progress `json:"progress,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

type progress struct {
	Done float64 `json:"done"`
	Of   float64 `json:"of"`
	Unit string  `json:"unit"`
}

// humanWaits are the waits only a person ends: rotate --wait returns.
var humanWaits = map[string]bool{"approval": true, "secret": true, "confirm": true, "drain_decision": true, "held": true}

// settled reports whether rotate --wait stops: the rotation ended, or it
// waits for a person.
func (r rotationOut) settled() bool {
	if r.Phase.Terminal() || r.Hold != rotator.HoldNone {
		return true
	}
	return r.Waiting != nil && humanWaits[r.Waiting.Reason]
}

// describe is one line on what the rotation waits for, with countdowns
// relative to now ("" when it waits for nothing).
func (w *waiting) describe(now time.Time) string {
	if w == nil {
		return ""
	}
	s := w.Reason
	if w.Detail != "" {
		s += ": " + w.Detail
	}
	if p := w.Progress; p != nil && p.Of > 0 {
		s += fmt.Sprintf(" (%s/%s %s)", num(p.Done), num(p.Of), p.Unit)
	}
	if t := parseTime(w.NextCheck); !t.IsZero() {
		s += ", next check " + countdown(t, now)
	}
	if t := parseTime(w.Deadline); !t.IsZero() {
		s += ", deadline " + countdown(t, now)
	}
	if t := parseTime(w.Escalates); !t.IsZero() {
		s += ", escalates to on-call " + countdown(t, now)
	}
	if w.LastError != "" {
		s += "; last error: " + w.LastError
	}
	return s
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// countdown says "in 4s" or "now".
func countdown(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "now"
	}
	return "in " + human(d.Seconds())
}

// summary is the rotation on one line.
func (r rotationOut) summary(now time.Time) string {
	line := fmt.Sprintf("%s %s %s/%s phase=%s", r.ID, r.Key, r.Mode, r.Trigger, r.phaseLabel())
	switch {
	case r.Waiting != nil:
		line += " waiting=" + r.Waiting.describe(now)
	case r.Hold != "":
		line += " waiting=" + string(r.Hold) + " (" + r.HoldDetail + ")"
	}
	if r.Request != nil {
		line += " pending=" + string(r.Request.Kind) + " (by " + r.Request.By + ", applied at the daemon's next step)"
	}
	if r.Outcome != "" {
		line += " outcome=" + r.Outcome
	}
	return line
}

// waitingCell is the WAITING column of rotation tables: the reason, its
// progress and a countdown to the next check or the deadline.
func (r rotationOut) waitingCell(now time.Time) string {
	w := r.Waiting
	if w == nil {
		return string(r.Hold)
	}
	s := w.Reason
	if p := w.Progress; p != nil && p.Of > 0 {
		s += " " + num(p.Done) + "/" + num(p.Of)
		if p.Unit == "s" {
			s += "s"
		} else {
			s += " " + p.Unit
		}
	}
	next, deadline, escalates := parseTime(w.NextCheck), parseTime(w.Deadline), parseTime(w.Escalates)
	switch {
	case !next.IsZero():
		s += ", next " + countdown(next, now)
	case !deadline.IsZero():
		s += ", expires " + countdown(deadline, now)
	case !escalates.IsZero():
		s += ", escalates " + countdown(escalates, now)
	case parseTime(w.Since) != time.Time{}:
		s += ", for " + human(now.Sub(parseTime(w.Since)).Round(time.Second).Seconds())
	}
	return s
}

// phaseLabel is the phase as a person reads it: a rotation no step has run
// yet sits in its lifecycle's first phase waiting for nothing
// (awaiting_approval for a key that needs no approval): starting.
func (r rotationOut) phaseLabel() string {
	if r.Phase == rotator.PhaseAwaitingApproval && r.Hold == rotator.HoldNone && r.Waiting == nil && !r.Phase.Terminal() {
		return "starting"
	}
	return string(r.Phase)
}

// printRotation prints one rotation: the API's JSON, or its summary.
func (c *cli) printRotation(raw []byte, r rotationOut) error {
	if c.output == "json" {
		return printRaw(c.stdout, raw)
	}
	_, err := fmt.Fprintln(c.stdout, r.summary(time.Now()))
	return err
}

func rotationTable(rots []rotationOut) *table {
	t := newTable("ROTATION", "KEY", "MODE", "TRIGGER", "PHASE", "WAITING", "ATTEMPTS", "UPDATED")
	now := time.Now()
	for _, r := range rots {
		t.row(r.ID, r.Key, string(r.Mode), string(r.Trigger), r.phaseLabel(), r.waitingCell(now), strconv.Itoa(r.Attempts), r.UpdatedAt)
	}
	return t
}

// activeQuery is the rotations query for active ones only.
func activeQuery(key string, all bool) string {
	q := []string{"limit=1000"}
	if !all {
		q = append(q, "active=true")
	}
	if key != "" {
		q = append(q, "key="+esc(key))
	}
	return "/v1/rotations?" + strings.Join(q, "&")
}
