package vault

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Address = "https://vault.internal:8200"
		c.Auth.TokenEnv = "VAULT_TOKEN"
		return c
	}
	cases := map[string]struct {
		edit func(*Config)
		want string // prefix of one error; "" = valid
	}{
		"defaults with address and token": {edit: func(*Config) {}},
		"no address":                      {edit: func(c *Config) { c.Address = "" }, want: "address: "},
		"address not a URL":               {edit: func(c *Config) { c.Address = "vault:8200" }, want: "address: "},
		"no mount":                        {edit: func(c *Config) { c.Mount = "" }, want: "mount: "},
		"no token":                        {edit: func(c *Config) { c.Auth.TokenEnv = "" }, want: "auth.token_env: "},
		"two token sources":               {edit: func(c *Config) { c.Auth.TokenFile = "/t" }, want: "auth.token_env: "},
		"approle without role":            {edit: func(c *Config) { c.Auth = AuthConfig{Method: AuthAppRole} }, want: "auth.role_id: "},
		"approle":                         {edit: func(c *Config) { c.Auth = AuthConfig{Method: AuthAppRole, RoleID: "r", SecretIDEnv: "SID"} }},
		"kubernetes":                      {edit: func(c *Config) { c.Auth = AuthConfig{Method: AuthKubernetes, Role: "rekey", JWTFile: DefaultJWTFile} }},
		"kubernetes no role":              {edit: func(c *Config) { c.Auth = AuthConfig{Method: AuthKubernetes, JWTFile: DefaultJWTFile} }, want: "auth.role: "},
		"unknown method":                  {edit: func(c *Config) { c.Auth.Method = "ldap" }, want: "auth.method: "},
		"same field twice":                {edit: func(c *Config) { c.PendingField = c.CurrentField }, want: "pending_field: "},
		"empty field":                     {edit: func(c *Config) { c.PreviousField = "" }, want: "previous_field: "},
		"no timeout":                      {edit: func(c *Config) { c.Timeout = 0 }, want: "timeout: "},
		"mount leaving its root":          {edit: func(c *Config) { c.Mount = "secret/../sys" }, want: "mount: "},
		"mount with an empty segment":     {edit: func(c *Config) { c.Mount = "team//kv" }, want: "mount: "},
		"auth mount leaving its root":     {edit: func(c *Config) { c.Auth.Mount = "../sys" }, want: "auth.mount: "},
		"insecure and a CA":               {edit: func(c *Config) { c.TLS = TLSConfig{CAFile: "/ca", InsecureSkipVerify: true} }, want: "tls.insecure_skip_verify: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error starting %q", tc.want)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				found = found || strings.HasPrefix(line, tc.want)
			}
			if !found {
				t.Fatalf("Validate = %q, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Address = "http://127.0.0.1:8200"
	cfg.Auth.TokenEnv = "VAULT_TOKEN"
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		target rotator.Target
		want   ref
	}{
		"relative path": {
			target: rotator.Target{Key: "k", Path: "team/api"},
			want:   ref{mount: "secret", path: "team/api", f: fields{"api_key", "api_key_pending", "api_key_previous"}},
		},
		"API path": {
			target: rotator.Target{Key: "k", Path: "secret/data/team/api"},
			want:   ref{mount: "secret", path: "team/api", f: fields{"api_key", "api_key_pending", "api_key_previous"}},
		},
		"key as path, other mount and field": {
			target: rotator.Target{Key: "billing", Params: map[string]string{"mount": "kv", "field": "token"}},
			want:   ref{mount: "kv", path: "billing", f: fields{"token", "token_pending", "token_previous"}},
		},
		"explicit fields": {
			target: rotator.Target{Key: "k", Path: "kv/data/x", Params: map[string]string{"mount": "kv", "current_field": "key", "pending_field": "next", "previous_field": "old"}},
			want:   ref{mount: "kv", path: "x", f: fields{"key", "next", "old"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := s.resolve(tc.target)
			if err != nil || got != tc.want {
				t.Fatalf("resolve = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := s.resolve(rotator.Target{Key: "k", Params: map[string]string{"pending_field": "api_key"}}); err == nil || !rotator.IsPermanent(err) {
		t.Fatalf("resolve with colliding fields = %v, want a permanent error", err)
	}
}
