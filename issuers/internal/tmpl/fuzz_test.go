package tmpl

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSegment: an id written into a path template, with or without
// pathescape, stays exactly one path segment that decodes back to the id.
func FuzzSegment(f *testing.F) {
	for _, id := range []string{"key_123", "../../admin/users/1", "x?force=true", "a#b%2F", "", "é/ü", "%zz"} {
		f.Add(id, false)
		f.Add(id, true)
	}
	plain, _ := Parse("plain", "/admin/v1/api-keys/{{.ID}}/revoke")
	escaped, _ := Parse("escaped", "/admin/v1/api-keys/{{pathescape .ID}}/revoke")
	f.Fuzz(func(t *testing.T, id string, viaFunc bool) {
		tt := plain
		if viaFunc {
			tt = escaped
		}
		out, err := Render(tt, struct{ ID Segment }{Segment(id)})
		if err != nil {
			return // a "<no value>" id is refused, never sent
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("rendered %q is not a URL: %v", out, err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("id %q added a query or fragment: %q", id, out)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 6 || segs[5] != "revoke" {
			t.Fatalf("id %q changed the path's segments: %q", id, out)
		}
		if got, err := url.PathUnescape(segs[4]); err != nil || got != id {
			t.Fatalf("id %q came out as %q (%v)", id, got, err)
		}
	})
}

// FuzzRender: any template text that parses renders without a panic and
// its errors never quote the data it was rendered with.
func FuzzRender(f *testing.F) {
	for _, s := range []string{`/k/{{pathescape .Name}}`, `{"n": {{json .Params.scopes}}}`, `{{list .Params.x}}`, `{{.Missing}}`,
		`{{index .Params "x" 3}}`, `{{printf "%d" .Name}}`, `{{urlquery .ID .Name}}`, `{{short .Name}}`, `{{template "x"}}`} {
		f.Add(s)
	}
	const secret = "S3CRET-value-never-echoed"
	data := map[string]any{"Name": secret, "ID": Segment(secret + "/id"),
		"Params": map[string]any{"scopes": []string{secret}, "x": secret, "n": 3}}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "S3CRET") || len(text) > 4096 {
			return
		}
		tt, err := Parse("f", text)
		if err != nil {
			return
		}
		for _, render := range []func() (string, error){
			func() (string, error) { return Render(tt, data) },
			func() (string, error) { return RenderText(tt, data, "(missing)") },
		} {
			if _, err := render(); err != nil && strings.Contains(err.Error(), "S3CRET") {
				t.Fatalf("template %q: error quotes the data: %v", text, err)
			}
		}
		_ = CheckFields(tt, data)
	})
}
