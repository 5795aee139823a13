package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.TokenEnv = "SLACK_BOT_TOKEN"
		c.SigningSecretEnv = "SLACK_SIGNING_SECRET"
		c.Channel = "#rekey"
		c.Approvers.UserIDs = []string{"U0123ANA"}
		return c
	}
	tests := map[string]struct {
		mod     func(c *Config)
		wantErr []string
	}{
		"valid":                 {mod: func(*Config) {}},
		"notifications only":    {mod: func(c *Config) { c.SigningSecretEnv, c.Approvers = "", Approvers{} }},
		"channel id":            {mod: func(c *Config) { c.Channel = "C0123ABCD" }},
		"rules without default": {mod: func(c *Config) { c.Channel, c.Channels = "", []Route{{Match: "pay-*", Channel: "#pay"}} }},
		"socket mode": {mod: func(c *Config) {
			c.Mode, c.SigningSecretEnv, c.AppTokenFile = ModeSocket, "", "/run/secrets/slack-app"
		}},
		"no token":              {mod: func(c *Config) { c.TokenEnv = "" }, wantErr: []string{"token_env: required (or token_file)"}},
		"two token sources":     {mod: func(c *Config) { c.TokenFile = "/run/t" }, wantErr: []string{"token_env: set only one"}},
		"bad mode":              {mod: func(c *Config) { c.Mode = "webhook" }, wantErr: []string{`mode: must be http or socket, not "webhook"`}},
		"socket without app":    {mod: func(c *Config) { c.Mode = ModeSocket }, wantErr: []string{"app_token_env: required"}},
		"app token in http":     {mod: func(c *Config) { c.AppTokenEnv = "X" }, wantErr: []string{"app_token_env: only used with mode: socket"}},
		"no channel":            {mod: func(c *Config) { c.Channel = "" }, wantErr: []string{"channel: required (or channels)"}},
		"channel name":          {mod: func(c *Config) { c.Channel = "rekey alerts" }, wantErr: []string{"channel: \"rekey alerts\" is neither"}},
		"rule without channel":  {mod: func(c *Config) { c.Channels = []Route{{Match: "x"}} }, wantErr: []string{"channels[0].channel: required"}},
		"bad glob":              {mod: func(c *Config) { c.Channels = []Route{{Match: "[", Channel: "#x"}} }, wantErr: []string{"channels[0].match: bad glob"}},
		"bad severity":          {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", MinSeverity: "high"}} }, wantErr: []string{"channels[0].min_severity"}},
		"bad trigger":           {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", Triggers: []string{"leak"}}} }, wantErr: []string{`channels[0].triggers: unknown trigger "leak"`}},
		"bad rule mode":         {mod: func(c *Config) { c.Channels = []Route{{Channel: "#x", Mode: "urgent"}} }, wantErr: []string{"channels[0].mode"}},
		"bad oncall group":      {mod: func(c *Config) { c.OncallGroup = "@oncall" }, wantErr: []string{"oncall_group: must be a user group id"}},
		"bad approver id":       {mod: func(c *Config) { c.Approvers.UserIDs = []string{"ana@example.com"} }, wantErr: []string{"approvers.user_ids[0]"}},
		"bad approver group":    {mod: func(c *Config) { c.Approvers.UserGroups = []string{"sec ops"} }, wantErr: []string{"approvers.user_groups[0]"}},
		"buttons, no approvers": {mod: func(c *Config) { c.Approvers = Approvers{} }, wantErr: []string{"approvers: user_ids or user_groups required"}},
		"bad api_url":           {mod: func(c *Config) { c.APIURL = "slack.com/api" }, wantErr: []string{"api_url: must be an absolute http(s) URL"}},
		"api_url with query":    {mod: func(c *Config) { c.APIURL = "https://x/api?token=abc" }, wantErr: []string{"api_url: must not carry"}},
		"zero timeout":          {mod: func(c *Config) { c.Timeout = 0 }, wantErr: []string{"timeout: must be positive"}},
		"several": {mod: func(c *Config) { c.TokenEnv, c.Timeout, c.Mode = "", -time.Second, "x" },
			wantErr: []string{"token_env:", "timeout:", "mode:"}},
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
	t.Setenv("REKEY_TEST_SLACK_SIGNING", testSigningSecret)
	cfg := DefaultConfig()
	cfg.TokenEnv, cfg.SigningSecretEnv, cfg.Channel = "REKEY_TEST_SLACK_TOKEN", "REKEY_TEST_SLACK_SIGNING", "#rekey"
	cfg.Approvers.UserIDs = []string{"UANA"}
	tests := map[string]struct {
		mod     func(c *Config)
		deps    func() (rotator.StateStore, rotator.RotationReader, rotator.Decider, rotator.ReplayGuard)
		wantErr string
	}{
		"unset token": {mod: func(c *Config) { c.TokenEnv = "REKEY_TEST_SLACK_UNSET" }, wantErr: "REKEY_TEST_SLACK_UNSET is not set"},
		"no state": {deps: func() (rotator.StateStore, rotator.RotationReader, rotator.Decider, rotator.ReplayGuard) {
			return nil, &fakeRotations{}, &fakeDecider{}, &memGuard{}
		}, wantErr: "a state store is required"},
		"interactive without decider": {deps: func() (rotator.StateStore, rotator.RotationReader, rotator.Decider, rotator.ReplayGuard) {
			return newMemState(), &fakeRotations{}, nil, &memGuard{}
		}, wantErr: "interactivity needs"},
		"invalid config": {mod: func(c *Config) { c.Channel = "" }, wantErr: "slack: channel: required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cfg
			if tc.mod != nil {
				tc.mod(&c)
			}
			deps := func() (rotator.StateStore, rotator.RotationReader, rotator.Decider, rotator.ReplayGuard) {
				return newMemState(), &fakeRotations{}, &fakeDecider{}, &memGuard{}
			}
			if tc.deps != nil {
				deps = tc.deps
			}
			s, r, d, g := deps()
			_, err := New(c, nil, s, r, d, g)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), testSigningSecret) {
				t.Fatal("error shows a secret")
			}
		})
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
			want: "✓ revoking · ▶ *minting* · staging · cutting over · verifying · cleaning · done"},
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

func TestButtonValue(t *testing.T) {
	for _, g := range []rotator.Gate{rotator.GateStart, rotator.GateRevoke, rotator.GateDrain} {
		v := ButtonValue("rot_0123abcd", g)
		if v != "rot_0123abcd:"+string(g) {
			t.Fatalf("ButtonValue = %q", v)
		}
		id, gate, ok := parseButtonValue(v)
		if !ok || id != "rot_0123abcd" || gate != g {
			t.Fatalf("parseButtonValue(%q) = %q %q %v", v, id, gate, ok)
		}
	}
	for _, bad := range []string{"", "rot_x", "rot_x:", ":start", "rot_x:delete"} {
		if _, _, ok := parseButtonValue(bad); ok {
			t.Errorf("parseButtonValue(%q) accepted", bad)
		}
	}
}

func TestTrustedResponseURL(t *testing.T) {
	n := &Notifier{cfg: Config{APIURL: "http://127.0.0.1:4567/"}}
	tests := map[string]bool{
		"https://hooks.slack.com/actions/T1/2/abc": true,
		"https://hooks.slack-gov.com/actions/T1":   true,
		"http://hooks.slack.com/actions/T1":        false,
		"https://evil.example/slack.com":           false,
		"https://slack.com.evil.example/x":         false,
		"http://127.0.0.1:4567/respond/x":          true,
		"http://127.0.0.1:9999/respond/x":          false,
		"not a url":                                false,
	}
	for raw, want := range tests {
		if got := n.trustedResponseURL(raw); got != want {
			t.Errorf("trustedResponseURL(%q) = %v, want %v", raw, got, want)
		}
	}
}
