package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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

// printRaw prints an API answer as it came, indented as json.Indent
// would indent it, but streaming: a plan over 100,000 keys is 27 MB, and
// json.Indent first reserves twice that.
func printRaw(w io.Writer, raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if !json.Valid(raw) {
		var b bytes.Buffer
		return json.Indent(&b, raw, "", "  ") // its error says what is wrong
	}
	in := newIndenter(w)
	_, _ = in.Write(raw)
	return in.Close()
}

// indenter re-indents a JSON document written to it in any number of
// pieces, as json.Indent does with the indent "  ", and ends it with a
// newline on Close. It does not validate: what it is given is JSON
// (printRaw checks; the in-process API writes nothing else).
type indenter struct {
	bw                                   *bufio.Writer
	depth                                int
	inString, escaped, needIndent, wrote bool
}

func newIndenter(w io.Writer) *indenter { return &indenter{bw: bufio.NewWriterSize(w, 64<<10)} }

func (in *indenter) newline() {
	in.bw.WriteByte('\n')
	for range in.depth {
		in.bw.WriteString("  ")
	}
}

func (in *indenter) Write(p []byte) (int, error) {
	bw := in.bw
	for i := 0; i < len(p); i++ {
		c := p[i]
		if in.inString {
			if !in.escaped {
				// The bytes up to the next quote or backslash are the
				// string's, written as they are, at once.
				if j := indexQuoteOrEscape(p[i:]); j > 0 {
					bw.Write(p[i : i+j])
					i += j - 1
					continue
				} else if j < 0 {
					bw.Write(p[i:])
					break
				}
			}
			bw.WriteByte(c)
			switch {
			case in.escaped:
				in.escaped = false
			case c == '\\':
				in.escaped = true
			case c == '"':
				in.inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		in.wrote = true
		if in.needIndent && c != '}' && c != ']' {
			in.needIndent = false
			in.depth++
			in.newline()
		}
		switch c {
		case '"':
			in.inString = true
			bw.WriteByte(c)
		case '{', '[':
			in.needIndent = true // {} and [] stay empty
			bw.WriteByte(c)
		case ',':
			bw.WriteByte(c)
			in.newline()
		case ':':
			bw.WriteString(": ")
		case '}', ']':
			if in.needIndent {
				in.needIndent = false
			} else {
				in.depth--
				in.newline()
			}
			bw.WriteByte(c)
		default:
			bw.WriteByte(c)
		}
	}
	return len(p), nil
}

// indexQuoteOrEscape is the index of the first '"' or '\\' in p, or -1.
func indexQuoteOrEscape(p []byte) int {
	for i, c := range p {
		if c == '"' || c == '\\' {
			return i
		}
	}
	return -1
}

// Close ends the document; an answer cut short is an error.
func (in *indenter) Close() error {
	in.bw.WriteByte('\n')
	if err := in.bw.Flush(); err != nil {
		return err
	}
	if !in.wrote || in.depth != 0 || in.inString || in.needIndent {
		return errors.New("the answer is not a whole JSON document")
	}
	return nil
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
