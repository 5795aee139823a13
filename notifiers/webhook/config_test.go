package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.URL = "https://hooks.example.com/rekey"
		c.SecretEnv = "HOOK_SECRET"
		return c
	}
	tests := map[string]struct {
		mod     func(c *Config)
		wantErr []string
	}{
		"valid":           {mod: func(*Config) {}},
		"http allowed":    {mod: func(c *Config) { c.URL = "http://127.0.0.1:8080/x" }},
		"no url":          {mod: func(c *Config) { c.URL = "" }, wantErr: []string{"url: required"}},
		"relative url":    {mod: func(c *Config) { c.URL = "/hooks?token=abc" }, wantErr: []string{"url: must be an absolute http(s) URL"}},
		"ftp url":         {mod: func(c *Config) { c.URL = "ftp://example.com/x" }, wantErr: []string{"url: must be"}},
		"userinfo":        {mod: func(c *Config) { c.URL = "https://user:pw@example.com/x" }, wantErr: []string{"url: must not carry user:password"}},
		"no secret":       {mod: func(c *Config) { c.SecretEnv = "" }, wantErr: []string{"secret_env: required (or secret_file)"}},
		"both secrets":    {mod: func(c *Config) { c.SecretFile = "/run/s" }, wantErr: []string{"secret_env: set only one"}},
		"zero timeout":    {mod: func(c *Config) { c.Timeout = 0 }, wantErr: []string{"timeout: must be positive"}},
		"zero attempts":   {mod: func(c *Config) { c.MaxAttempts = 0 }, wantErr: []string{"max_attempts: must be between 1 and 20"}},
		"many attempts":   {mod: func(c *Config) { c.MaxAttempts = 21 }, wantErr: []string{"max_attempts:"}},
		"reserved header": {mod: func(c *Config) { c.Headers = map[string]string{"Webhook-Signature": "x"} }, wantErr: []string{"headers.Webhook-Signature: not allowed"}},
		"auth header":     {mod: func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }, wantErr: []string{"headers.authorization: not allowed: would hold a secret inline"}},
		"bad header name": {mod: func(c *Config) { c.Headers = map[string]string{"X Team": "a"} }, wantErr: []string{"headers.X Team: not a valid header name"}},
		"multi-line":      {mod: func(c *Config) { c.Headers = map[string]string{"X-Team": "a\r\nX-Evil: 1"} }, wantErr: []string{"headers.X-Team: value must be a single line"}},
		"several errors": {
			mod:     func(c *Config) { c.URL, c.Timeout, c.MaxAttempts = "", -time.Second, 0 },
			wantErr: []string{"url: required", "timeout:", "max_attempts:"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "token=abc") || strings.Contains(line, "pw@") {
					t.Errorf("error repeats the URL: %q", line)
				}
			}
		})
	}
}
