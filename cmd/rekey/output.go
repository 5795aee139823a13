package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
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

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printRaw prints an API answer as it came, indented.
func printRaw(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
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

// human formats a number of seconds for tables: 3m14s, 5h2m, 12d4h.
func human(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	if d < 0 {
		d = 0
	}
	if days := int(d / (24 * time.Hour)); days > 0 {
		if h := int(d % (24 * time.Hour) / time.Hour); h > 0 {
			return fmt.Sprintf("%dd%dh", days, h)
		}
		return fmt.Sprintf("%dd", days)
	}
	if d >= time.Hour {
		return strconv.Itoa(int(d/time.Hour)) + "h" + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	}
	return d.Round(time.Second).String()
}

// humanPtr is human for an optional value ("" when absent).
func humanPtr(s *int64) string {
	if s == nil {
		return ""
	}
	return human(float64(*s))
}

func jsonInto(raw []byte, v any) error { return json.Unmarshal(raw, v) }

func jsonBytes(v any) ([]byte, error) { return json.Marshal(v) }
