package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/config"
	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/issuers/internal/probe"
)

func TestConfigValidate(t *testing.T) {
	valid := func() rkhttp.Config {
		t.Setenv("KA_ADMIN_TOKEN", adminToken)
		return exampleConfig(t, "https://api.example.test")
	}
	tests := map[string]struct {
		edit func(c *rkhttp.Config)
		want []string // each a prefix of one error line
	}{
		"example is valid": {edit: func(*rkhttp.Config) {}},
		"minimal is valid": {edit: func(c *rkhttp.Config) {
			*c = rkhttp.Config{
				BaseURL: "https://x.test",
				Auth:    rkhttp.Auth{TokenFile: "/run/token"},
				Mint:    rkhttp.Mint{Request: rkhttp.Request{Path: "/keys"}, IDPath: "id", SecretPath: "key"},
				Revoke:  rkhttp.Revoke{Request: rkhttp.Request{Path: "/keys/{{.ID}}"}},
				List:    rkhttp.List{Request: rkhttp.Request{Path: "/keys"}, IDPath: "id", NamePath: "name"},
			}
		}},
		"everything missing": {
			edit: func(c *rkhttp.Config) { *c = rkhttp.DefaultConfig() },
			want: []string{"base_url: required", "auth.token_env: required", "mint.path: required", "mint.id_path: required",
				"mint.secret_path: required", "revoke.path: required", "list.path: required", "list.id_path: required", "list.name_path: required"},
		},
		"bad base url":      {edit: func(c *rkhttp.Config) { c.BaseURL = "ftp://x" }, want: []string{"base_url: must be an http(s) URL"}},
		"negative timeout":  {edit: func(c *rkhttp.Config) { c.Timeout = -time.Second }, want: []string{"timeout: must not be negative"}},
		"two token sources": {edit: func(c *rkhttp.Config) { c.Auth.TokenFile = "/x" }, want: []string{"auth.token_env: set only one"}},
		"secret header without token": {
			edit: func(c *rkhttp.Config) { c.SecretHeaders = []rkhttp.Auth{{Header: "X-App-Key"}} },
			want: []string{"secret_headers[0].token_env: required"},
		},
		"auth header in plain headers": {
			edit: func(c *rkhttp.Config) { c.Headers = map[string]string{"authorization": "Bearer x"} },
			want: []string{"headers.authorization: set by auth"},
		},
		"bad template": {edit: func(c *rkhttp.Config) { c.Mint.Body = `{"name": {{json .Name}` }, want: []string{"mint.body: invalid template"}},
		"unknown func": {edit: func(c *rkhttp.Config) { c.Mint.Path = "/k/{{jsn .Name}}" }, want: []string{"mint.path: invalid template"}},
		"bad method":   {edit: func(c *rkhttp.Config) { c.Revoke.Method = "DEL ETE" }, want: []string{"revoke.method: "}},
		"bad status":   {edit: func(c *rkhttp.Config) { c.Mint.Success = []any{201, "6xx"} }, want: []string{`mint.success: "6xx" is not a status code`}},
		"bad retry":    {edit: func(c *rkhttp.Config) { c.List.Retry = []any{"500-400"} }, want: []string{"list.retry: "}},
		"bad already":  {edit: func(c *rkhttp.Config) { c.Revoke.AlreadyRevoked = []any{true} }, want: []string{"revoke.already_revoked: "}},
		"revoke without id": {
			edit: func(c *rkhttp.Config) { c.Revoke.Path = "/admin/v1/api-keys" },
			want: []string{"revoke.path: must use {{.ID}}"},
		},
		"idempotency header is valid": {edit: func(c *rkhttp.Config) {
			c.Mint.IdempotencyKeyHeader, c.Mint.IdempotencyWindow = "Idempotency-Key", time.Hour
		}},
		"idempotency window without header": {
			edit: func(c *rkhttp.Config) { c.Mint.IdempotencyWindow = time.Hour },
			want: []string{"mint.idempotency_window: needs mint.idempotency_key_header"},
		},
		"idempotency problems": {
			edit: func(c *rkhttp.Config) {
				c.Mint.IdempotencyKeyHeader, c.Mint.IdempotencyWindow = "Idempotency Key", -time.Second
			},
			want: []string{`mint.idempotency_key_header: "Idempotency Key" is not a header name`, "mint.idempotency_window: must not be negative"},
		},
		"idempotency header is the auth header": {
			edit: func(c *rkhttp.Config) { c.Mint.IdempotencyKeyHeader = "authorization" },
			want: []string{"mint.idempotency_key_header: authorization is set by auth"},
		},
		"idempotency header set twice": {
			edit: func(c *rkhttp.Config) {
				c.Mint.IdempotencyKeyHeader = "Idempotency-Key"
				c.Mint.Headers = map[string]string{"idempotency-key": "{{.RotationID}}"}
			},
			want: []string{"mint.idempotency_key_header: Idempotency-Key is also set by mint.headers"},
		},
		"bad json path": {edit: func(c *rkhttp.Config) { c.List.ItemsPath = "data..x" }, want: []string{"list.items_path: "}},
		"verify problems": {
			edit: func(c *rkhttp.Config) {
				c.Verify = &probe.Config{URL: "/v1/{{.Secret}}", Value: "Bearer x", Expect: []any{200}, Not: []any{401}}
			},
			want: []string{"verify.value: must use {{.Secret}}", "verify.url: the secret goes only", "verify.expect: set only one"},
		},
		"verify without url": {edit: func(c *rkhttp.Config) { c.Verify = &probe.Config{} }, want: []string{"verify.url: required"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %v", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no error line starts with %q in:\n%v", w, err)
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
		})
	}
}

// TestDecodeRejectsUnknownFields: the squashed Request fields are known to
// the strict decoder, typos are not.
func TestDecodeRejectsUnknownFields(t *testing.T) {
	cfg := rkhttp.DefaultConfig()
	err := config.Decode(map[string]any{
		"mint":   map[string]any{"path": "/k", "success": []any{201, "2xx"}, "id_pth": "id"},
		"verify": map[string]any{"url": "/v1", "not": []any{401}},
	}, &cfg, "issuers[0]")
	if err == nil || !strings.Contains(err.Error(), "issuers[0].mint.id_pth") || strings.Contains(err.Error(), "mint.path") {
		t.Fatalf("Decode = %v, want only mint.id_pth reported", err)
	}
	if cfg.Mint.Path != "/k" || len(cfg.Mint.Success) != 2 || cfg.Verify == nil || cfg.Verify.URL != "/v1" {
		t.Errorf("decoded %+v", cfg)
	}
}
