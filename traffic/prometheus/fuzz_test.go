package prometheus

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEscapeRoundTrip: a value escaped with promql inside double quotes is
// one string literal that reads back as the value (Go and PromQL share
// these escapes), so no name can end its literal and rewrite the query.
func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"billing-v1", `x"} or vector(0) #`, `a\`, "l1\nl2", "it's", "\t\r", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		q := `"` + Escape(s) + `"`
		got, err := strconv.Unquote(q)
		if err != nil || got != s {
			t.Fatalf("Escape(%q) = %s reads back as %q (%v)", s, q, got, err)
		}
	})
}

// FuzzQueryTemplate: any query template that parseQuery accepts, rendered
// with names that try to end a double-quoted literal, never prints such a
// name unescaped; rendering never panics.
func FuzzQueryTemplate(f *testing.F) {
	for _, s := range []string{
		`sum(rate(http_requests_total{key_name="{{promql .OldName}}",code="401"}[{{.Window}}]))`,
		`{{with .OldID}}x{id="{{promql .}}"}{{end}}`,
		`{{.OldName}}`, `{{printf "%s" .OldName}}`, `{{$x := .OldName}}{{$x}}`, `{{define "t"}}{{.NewName}}{{end}}{{template "t" .}}`,
		`{{promql .OldName | printf "%s"}}`, `{{if .OldName}}{{.Since}}{{end}}`, `{{range $i, $c := .Key}}{{$c}}{{end}}`,
		`{{block "b" .}}{{promql .Key}}{{end}}`, `{{call .Key}}`, `{{index .Key 0}}`, `{{slice .Key 1}}`,
	} {
		f.Add(s)
	}
	const inject = `Z"}or`
	d := Data{Key: "k" + inject, OldID: "o" + inject, NewID: "n" + inject, OldName: "on" + inject, NewName: "nn" + inject, Since: 1, Window: "5m"}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "Z") || len(text) > 4096 {
			return
		}
		tt, err := parseQuery("q", text)
		if err != nil {
			return
		}
		out, err := render(tt, d)
		if err != nil {
			return
		}
		if strings.Contains(out, inject) {
			t.Fatalf("template %q printed a value unescaped: %q", text, out)
		}
	})
}
