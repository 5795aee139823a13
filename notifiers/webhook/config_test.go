package webhook

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	rekeyconfig "github.com/rekeyhq/rekey/config"
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
		"reserved header": {mod: func(c *Config) { c.Headers = map[string]string{"Webhook-Signature": "x"} }, wantErr: []string{"headers.Webhook-Signature: not allowed"}},
		"auth header":     {mod: func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer x"} }, wantErr: []string{"headers.authorization: not allowed: would hold a secret inline"}},
		"bad header name": {mod: func(c *Config) { c.Headers = map[string]string{"X Team": "a"} }, wantErr: []string{"headers.X Team: not a valid header name"}},
		"multi-line":      {mod: func(c *Config) { c.Headers = map[string]string{"X-Team": "a\r\nX-Evil: 1"} }, wantErr: []string{"headers.X-Team: value must be a single line"}},
		"several errors": {
			mod:     func(c *Config) { c.URL, c.Timeout = "", -time.Second },
			wantErr: []string{"url: required", "timeout:"},
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

// TestMaxAttemptsDeprecated: a configuration written for the notifier's
// old retry loop still loads; the setting is ignored (one POST per Notify)
// and a warning says who retries now.
func TestMaxAttemptsDeprecated(t *testing.T) {
	rc := newReceiver(t, response{status: 503})
	settings := map[string]any{"url": rc.srv.URL, "secret_file": secretFile(t, testSecret), "max_attempts": 5}
	cfg := DefaultConfig()
	if err := rekeyconfig.Decode(settings, &cfg, "notifiers[2]"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	n := newNotifier(t, cfg, &logs)
	if !strings.Contains(logs.String(), "max_attempts is deprecated and ignored: retries are owned by rekey's notification outbox") {
		t.Fatalf("no deprecation warning: %q", logs.String())
	}
	if err := n.Notify(context.Background(), testEvent()); err == nil {
		t.Fatal("want the 503")
	}
	if got := len(rc.requests()); got != 1 {
		t.Fatalf("%d requests, want 1: max_attempts must not bring the retry loop back", got)
	}
}
