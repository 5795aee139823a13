// Package tmpl parses and renders the Go text/templates that issuer
// configurations use for URLs, headers, JSON bodies and instructions to
// humans, with a small function set (json, pathescape, list, short) and a
// rendering step that refuses output referring to a missing value instead of
// sending "<no value>" to an API. Render errors never quote the data they
// were rendered with, so a template that sees a secret cannot leak it
// through its error.
package tmpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
	"text/template"

	"github.com/rekeyhq/rekey/rotator"
)

// noValue is what text/template prints for a missing map key.
const noValue = "<no value>"

// Funcs are the functions every issuer template may call besides the
// text/template built-ins (urlquery, printf, index, or, …).
//
//	json        JSON-encodes any value: {"scopes": {{json .Params.scopes}}}; a missing value is null
//	pathescape  escapes one URL path segment: /keys/{{pathescape .ID}}
//	urlquery    escapes a query value (the built-in, aware of Segment)
//	list        joins a list with ", " for people: {{list .Params.scopes}}
//	short       shortens a fingerprint to 12 hex characters
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json":       toJSON,
		"pathescape": func(v any) string { return url.PathEscape(raw(v)) },
		"urlquery":   urlquery,
		"list":       list,
		"short":      func(fp string) string { return rotator.ShortFingerprint(fp) },
	}
}

// Segment is a value from outside (an issuer's credential id) in a URL
// template. It prints path-escaped wherever the template writes it, so
// that "{{.ID}}" cannot add segments, a query or a fragment ("a/../b?x"
// prints "a%2F..%2Fb%3Fx"); pathescape and urlquery escape its raw value
// once, and json encodes the raw value.
type Segment string

// String is the value escaped as one path segment.
func (s Segment) String() string { return url.PathEscape(string(s)) }

// MarshalJSON encodes the raw value.
func (s Segment) MarshalJSON() ([]byte, error) { return json.Marshal(string(s)) }

// raw is v as text, a Segment unescaped.
func raw(v any) string {
	v = deref(v)
	if s, ok := v.(Segment); ok {
		return string(s)
	}
	return fmt.Sprint(v)
}

// urlquery is text/template's built-in (its arguments printed together,
// query-escaped) with Segments taken raw, not escaped twice.
func urlquery(args ...any) string {
	vals := make([]any, len(args))
	for i, a := range args {
		if s, ok := deref(a).(Segment); ok {
			vals[i] = string(s)
		} else {
			vals[i] = a
		}
	}
	return url.QueryEscape(fmt.Sprint(vals...))
}

// Parse parses text as the template called name.
func Parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(Funcs()).Parse(text)
	if err != nil {
		// Parse errors quote the template, which is configuration.
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	return t, nil
}

// ErrMissingValue reports a template that referred to a value the data
// does not hold (a parameter the key does not set, a misspelt field).
var ErrMissingValue = errors.New("template refers to a missing value")

// Render executes t with data. The error names the template, never the
// data; it wraps ErrMissingValue when the output would hold "<no value>".
func Render(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render template %s: %s", t.Name(), execReason(err))
	}
	out := b.String()
	if strings.Contains(out, noValue) {
		return "", fmt.Errorf("render template %s: %w", t.Name(), ErrMissingValue)
	}
	return out, nil
}

// execReason keeps the position and the cause of a text/template execution
// error but drops anything after the cause's first colon-separated value,
// which could quote data: "template: x:1:3: executing \"x\" at <.Foo>:
// can't evaluate field Foo in type …" is reduced to its position and the
// action, which come from the template itself.
func execReason(err error) string {
	var ee template.ExecError
	if errors.As(err, &ee) {
		msg := ee.Err.Error()
		// "template: NAME:LINE:COL: executing "NAME" at <ACTION>: CAUSE"
		if i := strings.Index(msg, ": executing "); i >= 0 {
			rest := msg[i+len(": executing "):]
			if j := strings.Index(rest, ">: "); j >= 0 {
				return msg[:i] + ": executing " + rest[:j+1]
			}
		}
		return "execution failed"
	}
	return "execution failed"
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("value cannot be encoded as JSON")
	}
	return string(b), nil
}

// list formats a slice as "a, b, c"; a scalar prints as itself and a
// missing value as the empty string.
func list(v any) string {
	v = deref(v)
	if v == nil {
		return ""
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return fmt.Sprint(v)
	}
	parts := make([]string, 0, rv.Len())
	for i := range rv.Len() {
		parts = append(parts, fmt.Sprint(deref(rv.Index(i).Interface())))
	}
	return strings.Join(parts, ", ")
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface) {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}

// RenderText executes t with data for a person to read: a missing value
// prints as missing instead of failing. The error names the template only.
func RenderText(t *template.Template, data any, missing string) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render template %s: %s", t.Name(), execReason(err))
	}
	return strings.ReplaceAll(b.String(), noValue, missing), nil
}

// CheckFields executes t with sample data and reports only references to
// fields the data type does not have ({{.Nmae}}), the mistakes that do not
// depend on the values; errors caused by sample values are ignored.
func CheckFields(t *template.Template, sample any) error {
	err := t.Execute(io.Discard, sample)
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field") {
		return nil
	}
	return fmt.Errorf("template %s: %s: no such field", t.Name(), execReason(err))
}
