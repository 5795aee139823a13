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
		t.row(r.ID, r.Key, string(r.Mode), string(r.Trigger), string(r.Phase), string(r.Hold), strconv.Itoa(r.Attempts), r.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return t
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
