package slack

import (
	"strings"
	"testing"
	"time"

	rekeyconfig "github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.TokenEnv = "SLACK_BOT_TOKEN"
		c.Channel = "#rekey"
		return c
	}
	tests := map[string]struct {
		mod     func(c *Config)
		wantErr []string
	}{
		"valid":                 {mod: func(*Config) {}},
		"channel id":            {mod: func(c *Config) { c.Channel = "C0123ABCD" }},
		"rules without default": {mod: func(c *Config) { c.Channel, c.Channels = "", []Route{{Match: "pay-*", Channel: "#pay"}} }},
		"no token":              {mod: func(c *Config) { c.TokenEnv = "" }, wantErr: []string{"token_env: required (or token_file)"}},
		"two token sources":     {mod: func(c *Config) { c.TokenFile = "/run/t" }, wantErr: []string{"token_env: set only one"}},
		"no channel":            {mod: func(c *Config) { c.Channel = "" }, wantErr: []string{"channel: required (or channels)"}},
		"channel name":          {mod: func(c *Config) { c.Channel = "rekey alerts" }, wantErr: []string{"channel: \"rekey alerts\" is neither"}},
		"rule without channel":  {mod: func(c *Config) { c.Channels = []Route{{Match: "x"}} }, wantErr: []string{"channels[0].channel: required"}},
		"bad glob":              {mod: func(c *Config) { c.Channels = []Route{{Match: "[", Channel: "#x"}} }, wantErr: []string{"channels[0].match: bad glob"}},
		"bad severity":          {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", MinSeverity: "high"}} }, wantErr: []string{"channels[0].min_severity"}},
		"bad trigger":           {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", Triggers: []string{"leak"}}} }, wantErr: []string{`channels[0].triggers: unknown trigger "leak"`}},
		"bad rule mode":         {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", Mode: "urgent"}} }, wantErr: []string{"channels[0].mode"}},
		"bad oncall group":      {mod: func(c *Config) { c.OncallGroup = "@oncall" }, wantErr: []string{"oncall_group: must be a user group id"}},
		"bad api_url":           {mod: func(c *Config) { c.APIURL = "slack.com/api" }, wantErr: []string{"api_url: must be an absolute http(s) URL"}},
		"api_url with query":    {mod: func(c *Config) { c.APIURL = "https://x/api?token=abc" }, wantErr: []string{"api_url: must not carry"}},
		"zero timeout":          {mod: func(c *Config) { c.Timeout = 0 }, wantErr: []string{"timeout: must be positive"}},
		"several": {mod: func(c *Config) { c.TokenEnv, c.Timeout, c.Channel = "", -time.Second, "" },
			wantErr: []string{"token_env:", "timeout:", "channel:"}},
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
	t.Setenv("REKEY_TEST_SLACK_TOKEN", testToken)
	cfg := DefaultConfig()
	cfg.TokenEnv, cfg.Channel = "REKEY_TEST_SLACK_TOKEN", "#rekey"
	tests := map[string]struct {
		mod     func(c *Config)
		state   rotator.StateStore
		wantErr string
	}{
		"unset token":    {mod: func(c *Config) { c.TokenEnv = "REKEY_TEST_SLACK_UNSET" }, state: newMemState(), wantErr: "REKEY_TEST_SLACK_UNSET is not set"},
		"no state":       {wantErr: "a state store is required"},
		"invalid config": {mod: func(c *Config) { c.Channel = "" }, state: newMemState(), wantErr: "slack: channel: required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfg
			if tc.mod != nil {
				tc.mod(&c)
			}
			_, err := New(c, nil, tc.state, &fakeRotations{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatal("error shows a secret")
			}
		})
	}
}

// TestInteractivityMoved: a configuration that still sets the button
// settings on the notifier is refused at each field's path, pointing to
// the slack webhook — ignoring them would silently remove the buttons.
func TestInteractivityMoved(t *testing.T) {
	settings := map[string]any{"token_env": "SLACK_BOT_TOKEN", "channel": "#rekey", "signing_secret_env": "SLACK_SIGNING_SECRET",
		"mode": "socket", "app_token_file": "/run/app", "approvers": map[string]any{"user_ids": []any{"U0123ANA"}}}
	cfg := DefaultConfig()
	err := rekeyconfig.Decode(settings, &cfg, "notifiers[1]")
	if err == nil {
		t.Fatal("moved settings accepted")
	}
	for _, f := range []string{"signing_secret_env", "mode", "app_token_file", "approvers"} {
		want := "notifiers[1]." + f + ": no longer supported: button clicks are received by the slack webhook now"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant %q", err, want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tests := map[string]struct {
		st   messageState
		want string
	}{
		"staged, draining": {st: messageState{Mode: rotator.ModeStaged, Phase: rotator.PhaseDraining},
			want: "✓ approval · ✓ minting · ✓ staging · ✓ verifying · ✓ cutting over · ▶ *draining* · revoking · watching · cleaning · done"},
		"staged, done": {st: messageState{Mode: rotator.ModeStaged, Phase: rotator.PhaseDone},
			want: "✓ approval · ✓ minting · ✓ staging · ✓ verifying · ✓ cutting over · ✓ draining · ✓ revoking · ✓ watching · ✓ cleaning · ✓ done"},
		"rolled back from verifying": {st: messageState{Mode: rotator.ModeStaged, Phase: rotator.PhaseFailed, LastActive: rotator.PhaseVerifying},
			want: "✓ approval · ✓ minting · ✓ staging · ✗ verifying → ↩ *failed*"},
		"emergency": {st: messageState{Mode: rotator.ModeEmergency, Phase: rotator.PhaseMinting},
			want: "✓ revoking · ▶ *minting* · staging · verifying · done"},
		"decommission": {st: messageState{Mode: rotator.ModeEmergency, Trigger: rotator.TriggerDecommission, Phase: rotator.PhaseRemoving},
			want: "✓ revoking · ▶ *removing* · done"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := progressLine(&tc.st); got != tc.want {
				t.Fatalf("progressLine =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}
