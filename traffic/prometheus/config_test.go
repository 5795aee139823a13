package prometheus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promsrc "github.com/rekeyhq/rekey/traffic/prometheus"
)

func TestValidate(t *testing.T) {
	const q = `sum(rate(http_requests_total{key="{{promql .OldName}}",code="401"}[{{.Window}}]))`
	tests := map[string]struct {
		edit func(*promsrc.Config)
		want []string // substrings of the error; none: valid
	}{
		"minimal":            {edit: func(*promsrc.Config) {}},
		"no default query":   {edit: func(c *promsrc.Config) { c.Query = "" }},
		"path prefix":        {edit: func(c *promsrc.Config) { c.URL = "https://mimir.internal/prometheus" }},
		"url required":       {edit: func(c *promsrc.Config) { c.URL = "" }, want: []string{"url: required"}},
		"url scheme":         {edit: func(c *promsrc.Config) { c.URL = "ftp://x" }, want: []string{"url: must be an http(s) URL"}},
		"url credentials":    {edit: func(c *promsrc.Config) { c.URL = "http://u:p@x:9090" }, want: []string{"url: must not carry credentials"}},
		"url query":          {edit: func(c *promsrc.Config) { c.URL = "http://x:9090/?a=b" }, want: []string{"url: must not have a query"}},
		"bad template":       {edit: func(c *promsrc.Config) { c.Query = "sum({{.OldName" }, want: []string{"query: invalid template"}},
		"unescaped name":     {edit: func(c *promsrc.Config) { c.Query = `x{key="{{.OldName}}"}` }, want: []string{"query: {{.OldName}} prints a value unescaped"}},
		"unescaped in with":  {edit: func(c *promsrc.Config) { c.Query = `x{key="{{with .OldID}}{{.}}{{end}}"}` }, want: []string{"{{.}} prints a value unescaped"}},
		"unescaped variable": {edit: func(c *promsrc.Config) { c.Query = `{{$n := .NewName}}x{key="{{$n}}"}` }, want: []string{"{{$n}} prints a value unescaped"}},
		"unescaped printf":   {edit: func(c *promsrc.Config) { c.Query = `x{key="{{printf "%s" .Key}}"}` }, want: []string{"unescaped"}},
		"escaped by pipe":    {edit: func(c *promsrc.Config) { c.Query = `x{key="{{.OldName | promql}}"}` }},
		"escaped printf":     {edit: func(c *promsrc.Config) { c.Query = `x{key=~"{{printf "%s|%s" .OldName .NewName | promql}}"}` }},
		"since and window":   {edit: func(c *promsrc.Config) { c.Query = `increase(x[{{.Window}}] @ {{.Since}})` }},
		"unknown field":      {edit: func(c *promsrc.Config) { c.Query = `x{key="{{promql .Name}}"}` }, want: []string{"query: invalid template", "can't evaluate field Name"}},
		"negative window":    {edit: func(c *promsrc.Config) { c.Window = -time.Second }, want: []string{"window: must be a positive"}},
		"sub-ms window":      {edit: func(c *promsrc.Config) { c.Window = 1500 * time.Microsecond }, want: []string{"window: must be a positive"}},
		"negative timeout":   {edit: func(c *promsrc.Config) { c.Timeout = -time.Second }, want: []string{"timeout: must be at least 1ms"}},
		"bearer both":        {edit: func(c *promsrc.Config) { c.BearerTokenEnv, c.BearerTokenFile = "T", "/f" }, want: []string{"bearer_token_env: set only one"}},
		"basic without password": {
			edit: func(c *promsrc.Config) { c.BasicAuth.Username = "u" },
			want: []string{"basic_auth.password_env: required"},
		},
		"basic without user": {
			edit: func(c *promsrc.Config) { c.BasicAuth.PasswordEnv = "P" },
			want: []string{"basic_auth.username: required"},
		},
		"basic and bearer": {
			edit: func(c *promsrc.Config) {
				c.BasicAuth = promsrc.BasicAuth{Username: "u", PasswordEnv: "P"}
				c.BearerTokenEnv = "T"
			},
			want: []string{"basic_auth: set either basic_auth or bearer_token_*"},
		},
		"authorization header": {
			edit: func(c *promsrc.Config) { c.Headers = map[string]string{"authorization": "Bearer x"} },
			want: []string{"headers.authorization: credentials go in"},
		},
		"bad header": {
			edit: func(c *promsrc.Config) { c.Headers = map[string]string{"a b": "x", "X-Ok": "a\nb"} },
			want: []string{`headers: "a b" is not a header name`, "headers.X-Ok: must not contain a line break"},
		},
		"tenant header": {edit: func(c *promsrc.Config) { c.Headers = map[string]string{"X-Scope-OrgID": "team-a"} }},
		"ca and insecure": {
			edit: func(c *promsrc.Config) { c.CAFile, c.InsecureSkipVerify = "/ca.pem", true },
			want: []string{"insecure_skip_verify: set either"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfgFor("http://prometheus:9090", q, 0)
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := promsrc.DefaultConfig()
	if c.Window != 5*time.Minute || c.Timeout != 10*time.Second || c.EmptyIsZero {
		t.Fatalf("DefaultConfig() = %+v", c)
	}
}

func TestNewResolvesCredentials(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		edit func(*promsrc.Config)
		want string
	}{
		"missing env": {edit: func(c *promsrc.Config) { c.BearerTokenEnv = "REKEY_TEST_UNSET_TOKEN" }, want: "bearer_token: environment variable REKEY_TEST_UNSET_TOKEN is not set"},
		"empty file":  {edit: func(c *promsrc.Config) { c.BearerTokenFile = empty }, want: "is empty"},
		"basic password": {edit: func(c *promsrc.Config) {
			c.BasicAuth = promsrc.BasicAuth{Username: "u", PasswordFile: filepath.Join(dir, "nope")}
		}, want: "basic_auth.password: read secret file"},
		"bad ca file": {edit: func(c *promsrc.Config) { c.CAFile = empty }, want: "ca_file: " + empty + " holds no PEM certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfgFor("http://127.0.0.1:9", "vector(0)", 0)
			tc.edit(&c)
			if _, err := promsrc.New(c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":     {`billing-v1`, `billing-v1`},
		"quote":     {`a"b`, `a\"b`},
		"backslash": {`a\b`, `a\\b`},
		"escaped":   {`a\"b`, `a\\\"b`},
		"single":    {`a'b`, `a\x27b`},
		"newline":   {"a\nb\r\tc", `a\nb\r\tc`},
		"injection": {`"} or vector(0) #`, `\"} or vector(0) #`},
		"unicode":   {`clé`, `clé`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := promsrc.Escape(tc.in); got != tc.want {
				t.Fatalf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestExamples decodes every prometheus source of examples/traffic as app
// does, and checks the keys' drain queries against the same rules.
func TestExamples(t *testing.T) {
	sources, queries := exampleTraffic(t, "prometheus")
	if len(sources) < 3 {
		t.Fatalf("want prometheus examples for ingress-nginx, Envoy and client-side counters, got %d files", len(sources))
	}
	for file, ms := range sources {
		for _, m := range ms {
			cfg, err := decodeExample(m)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			for _, q := range queries[file] {
				c := cfg
				c.Query = q
				if err := c.Validate(); err != nil {
					t.Errorf("%s: drain.query %q: %v", file, q, err)
				}
			}
		}
	}
}
