// Package textcheck says whether text people or senders give rekey is
// safe to store and show (rekey show, the audit trail, notifications): no
// control characters, no bidirectional overrides, valid UTF-8. The admin
// API and the inbound webhooks apply the same rule.
package textcheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field is one text field of an inbound report that is stored or shown
// (rekey show, the audit, notifications): Max bounds its length in bytes
// (0: no bound).
type Field struct {
	Name  string
	Value string
	Max   int
}

// CheckText refuses fields a terminal or a chat message would interpret:
// invalid UTF-8, control characters (C0, DEL, C1 — escape sequences, a
// carriage return that overwrites a line) and bidirectional overrides that
// reorder what is shown. Every problem is reported, each naming its field.
func CheckText(fields ...Field) error {
	var errs []error
	for _, f := range fields {
		switch {
		case !Printable(f.Value):
			errs = append(errs, fmt.Errorf("%s: must be printable text", f.Name))
		case f.Max > 0 && len(f.Value) > f.Max:
			errs = append(errs, fmt.Errorf("%s: longer than %d bytes", f.Name, f.Max))
		}
	}
	return errors.Join(errs...)
}

// Printable reports whether s is valid UTF-8 without control characters
// or bidirectional formatting characters.
func Printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unprintable)
}

// Escape makes s printable by quoting what Printable refuses (as Go
// escapes: \x1b, \u202e, \ufffd for invalid UTF-8), leaving the rest as
// is: for text read from content an attacker may shape (a scanned file's
// name), where refusing the report would let them suppress it.
func Escape(s string) string {
	if Printable(s) {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unprintable(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}
