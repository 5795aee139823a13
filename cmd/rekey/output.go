package main

import (
	"encoding/json"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

type table struct {
	head []string
	rows [][]string
}

func newTable(head ...string) *table { return &table{head: head} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				_, _ = io.WriteString(tw, "\t")
			}
			if c == "" {
				c = "-"
			}
			_, _ = io.WriteString(tw, c)
		}
		_, _ = io.WriteString(tw, "\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
	return tw.Flush()
}

func rotationTable(rots []*rotator.Rotation) *table {
	t := newTable("ROTATION", "KEY", "MODE", "TRIGGER", "PHASE", "WAITING", "ATTEMPTS", "UPDATED")
	for _, r := range rots {
		t.row(r.ID, r.Key, string(r.Mode), string(r.Trigger), phaseLabel(r), waitingCell(r.Waiting, time.Now()), strconv.Itoa(r.Attempts), r.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return t
}

// phaseLabel is a rotation's phase as a person reads it: a rotation no step
// has run yet sits in its lifecycle's first phase without waiting for
// anything (awaiting_approval for a key that needs no approval): starting.
func phaseLabel(r *rotator.Rotation) string {
	if r.Phase == rotator.PhaseAwaitingApproval && r.Hold == rotator.HoldNone && r.Waiting == nil {
		return "starting"
	}
	return string(r.Phase)
}

// waitingCell is the WAITING column: the reason, its progress and a
// countdown to the next check or the deadline ("" when not waiting).
func waitingCell(w *rotator.Waiting, now time.Time) string {
	if w == nil {
		return ""
	}
	s := string(w.Reason)
	if p := w.Progress; p != nil {
		unit := p.Unit
		if unit != "s" {
			unit = " " + unit
		}
		s += " " + strconv.FormatInt(p.Done, 10) + "/" + strconv.FormatInt(p.Of, 10) + unit
	}
	switch {
	case !w.NextCheck.IsZero():
		s += ", next " + countdown(w.NextCheck, now)
	case !w.Deadline.IsZero():
		s += ", expires " + countdown(w.Deadline, now)
	default:
		s += ", for " + now.Sub(w.Since).Round(time.Second).String()
	}
	return s
}

// countdown is how long until t, in whole seconds ("now" once passed).
func countdown(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "now"
	}
	return "in " + d.String()
}

// waitingText is the long form `show` prints.
func waitingText(w *rotator.Waiting, now time.Time) string {
	s := string(w.Reason) + " — " + w.Detail + " (since " + w.Since.UTC().Format(time.RFC3339)
	if p := w.Progress; p != nil {
		s += "; " + strconv.FormatInt(p.Done, 10) + " of " + strconv.FormatInt(p.Of, 10) + " " + p.Unit
	}
	if !w.NextCheck.IsZero() {
		s += "; next check " + countdown(w.NextCheck, now)
	}
	if !w.Deadline.IsZero() {
		s += "; deadline " + w.Deadline.UTC().Format(time.RFC3339)
	}
	s += ")"
	if w.LastError != "" {
		s += "\n  last error: " + w.LastError
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dateOnly(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
