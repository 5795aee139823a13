package slack

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/rotator"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.SigningSecretEnv = "SLACK_SIGNING_SECRET"
		c.Approvers.UserIDs = []string{"U0123ANA"}
		return c
	}
	tests := map[string]struct {
		mod     func(c *Config)
		wantErr []string
	}{
		"valid":       {mod: func(*Config) {}},
		"groups only": {mod: func(c *Config) { c.Approvers = Approvers{UserGroups: []string{"S0456SECOPS"}} }},
		"socket mode": {mod: func(c *Config) {
			c.Mode, c.SigningSecretEnv, c.AppTokenFile = ModeSocket, "", "/run/secrets/slack-app"
		}},
		"no notifier":        {mod: func(c *Config) { c.Notifier = "" }, wantErr: []string{"notifier: required"}},
		"no signing secret":  {mod: func(c *Config) { c.SigningSecretEnv = "" }, wantErr: []string{"signing_secret_env: required (or signing_secret_file)"}},
		"two secret sources": {mod: func(c *Config) { c.SigningSecretFile = "/run/s" }, wantErr: []string{"signing_secret_env: set only one"}},
		"bad mode":           {mod: func(c *Config) { c.Mode = "webhook" }, wantErr: []string{`mode: must be http or socket, not "webhook"`}},
		"socket without app": {mod: func(c *Config) { c.Mode, c.SigningSecretEnv = ModeSocket, "" }, wantErr: []string{"app_token_env: required"}},
		"secret in socket":   {mod: func(c *Config) { c.Mode, c.AppTokenEnv = ModeSocket, "X" }, wantErr: []string{"signing_secret_env: only used with mode: http"}},
		"app token in http":  {mod: func(c *Config) { c.AppTokenEnv = "X" }, wantErr: []string{"app_token_env: only used with mode: socket"}},
		"bad approver id":    {mod: func(c *Config) { c.Approvers.UserIDs = []string{"ana@example.com"} }, wantErr: []string{"approvers.user_ids[0]"}},
		"bad approver group": {mod: func(c *Config) { c.Approvers.UserGroups = []string{"sec ops"} }, wantErr: []string{"approvers.user_groups[0]"}},
		"no approvers":       {mod: func(c *Config) { c.Approvers = Approvers{} }, wantErr: []string{"approvers: user_ids or user_groups required"}},
		"bad api_url":        {mod: func(c *Config) { c.APIURL = "slack.com/api" }, wantErr: []string{"api_url: must be an absolute http(s) URL"}},
		"api_url with query": {mod: func(c *Config) { c.APIURL = "https://x/api?token=abc" }, wantErr: []string{"api_url: must not carry"}},
		"zero timeout":       {mod: func(c *Config) { c.Timeout = 0 }, wantErr: []string{"timeout: must be positive"}},
		"several": {mod: func(c *Config) { c.Notifier, c.Timeout, c.Mode = "", -time.Second, "x" },
			wantErr: []string{"notifier:", "timeout:", "mode:"}},
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
			if strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error repeats the URL's query: %v", err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Setenv("REKEY_TEST_SLACK_SIGNING", testSigningSecret)
	cfg := DefaultConfig()
	cfg.SigningSecretEnv = "REKEY_TEST_SLACK_SIGNING"
	cfg.Approvers.UserIDs = []string{"UANA"}
	api := slackgo.New(testToken)
	tests := map[string]struct {
		mod     func(c *Config)
		nilDeps bool
		wantErr string
	}{
		"unset secret":   {mod: func(c *Config) { c.SigningSecretEnv = "REKEY_TEST_SLACK_UNSET" }, wantErr: "REKEY_TEST_SLACK_UNSET is not set"},
		"unset app":      {mod: func(c *Config) { c.Mode, c.SigningSecretEnv, c.AppTokenEnv = ModeSocket, "", "REKEY_TEST_APP_UNSET" }, wantErr: "app_token: environment variable REKEY_TEST_APP_UNSET"},
		"no decider":     {nilDeps: true, wantErr: "the decider"},
		"invalid config": {mod: func(c *Config) { c.Approvers.UserIDs = nil }, wantErr: "slack webhook: approvers:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfg
			if tc.mod != nil {
				tc.mod(&c)
			}
			var decider rotator.Decider = &fakeDecider{}
			if tc.nilDeps {
				decider = nil
			}
			_, err := New(c, api, &fakeMessages{}, decider, &fakeRotations{}, &memGuard{}, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testSigningSecret) {
				t.Fatal("error shows a secret")
			}
		})
	}
}
