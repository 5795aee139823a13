package tmpl_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
)

type data struct {
	Name   string
	Secret string
	Params map[string]any
}

func TestRender(t *testing.T) {
	const secret = "ka_live_TOPSECRETTOPSECRETTOPSECRET0000"
	d := data{Name: `a "quoted" \ name`, Secret: secret, Params: map[string]any{"scopes": []any{"a:read", "b:write"}, "n": 3}}
	tests := map[string]struct {
		text    string
		want    string
		wantErr string
	}{
		"json string":       {text: `{"name": {{json .Name}}}`, want: `{"name": "a \"quoted\" \\ name"}`},
		"json list":         {text: `{{json .Params.scopes}}`, want: `["a:read","b:write"]`},
		"json missing":      {text: `{{json .Params.nope}}`, want: `null`},
		"pathescape":        {text: `/k/{{pathescape .Name}}`, want: `/k/a%20%22quoted%22%20%5C%20name`},
		"urlquery":          {text: `?name={{urlquery .Name}}`, want: `?name=a+%22quoted%22+%5C+name`},
		"list":              {text: `{{list .Params.scopes}}|{{list .Params.n}}|{{list .Params.nope}}`, want: `a:read, b:write|3|`},
		"short":             {text: `{{short "0123456789abcdef"}}`, want: `0123456789ab`},
		"missing value":     {text: `/k/{{.Params.id}}`, wantErr: "render template t: template refers to a missing value"},
		"exec error quotes": {text: `{{.Secret.Foo}}`, wantErr: `render template t: template: t:1:9: executing "t" at <.Secret.Foo>`},
		"func error":        {text: `{{slice .Secret 3 999}}`, wantErr: `render template t: template: t:1:2: executing "t" at <slice .Secret 3 999>`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tp, err := tmpl.Parse("t", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(tp, d)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Render = %q, %v; want error %q", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secret[8:]) {
					t.Errorf("error leaks the data: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Render = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	tp, _ := tmpl.Parse("t", "{{.Params.nope}}")
	if _, err := tmpl.Render(tp, d); !errors.Is(err, tmpl.ErrMissingValue) {
		t.Errorf("missing value error %v is not ErrMissingValue", err)
	}
	if got, err := tmpl.RenderText(tp, d, "(not set)"); err != nil || got != "(not set)" {
		t.Errorf("RenderText = %q, %v", got, err)
	}
	if _, err := tmpl.Parse("t", "{{nofunc .Name}}"); err == nil || !strings.HasPrefix(err.Error(), "invalid template: ") {
		t.Errorf("Parse(unknown func) = %v", err)
	}
}

func TestCheckFields(t *testing.T) {
	for text, bad := range map[string]bool{
		"{{.Name}}":                 false,
		"{{.Nmae}}":                 true,
		"{{index .Params.x 3}}":     false, // depends on values: not reported
		"{{with .Params.x}}{{end}}": false,
	} {
		tp, _ := tmpl.Parse("t", text)
		if err := tmpl.CheckFields(tp, data{}); (err != nil) != bad {
			t.Errorf("CheckFields(%s) = %v, want error %v", text, err, bad)
		}
	}
}
