package tmpl

import (
	"testing"
	"text/template"
)

// TestSegment: an outside id prints escaped as one path segment wherever
// it is written, and pathescape, urlquery and json see its raw value once.
func TestSegment(t *testing.T) {
	data := map[string]any{"ID": Segment("../a b?c#d"), "N": 3, "S": "x y"}
	for text, want := range map[string]string{
		`/k/{{.ID}}`:                  `/k/..%2Fa%20b%3Fc%23d`,
		`/k/{{pathescape .ID}}`:       `/k/..%2Fa%20b%3Fc%23d`,
		`/k/{{printf "%s" .ID}}`:      `/k/..%2Fa%20b%3Fc%23d`,
		`?id={{urlquery .ID}}`:        `?id=..%2Fa+b%3Fc%23d`,
		`{{json .ID}}`:                `"../a b?c#d"`,
		`?q={{urlquery .S .N "z" 4}}`: "?q=" + builtinURLQuery(t, `{{urlquery .S .N "z" 4}}`, data),
	} {
		tt, err := Parse("t", text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Render(tt, data); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", text, got, err, want)
		}
	}
}

// builtinURLQuery renders text with text/template's own urlquery.
func builtinURLQuery(t *testing.T, text string, data any) string {
	tt := template.Must(template.New("b").Parse(text))
	var b []byte
	w := writerFunc(func(p []byte) (int, error) { b = append(b, p...); return len(p), nil })
	if err := tt.Execute(w, data); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
