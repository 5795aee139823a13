package slack

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/internal/slackapproval"
)

// MessageOf: the fake notifier posted every rotation's message where
// heldForApproval says it is.
func (m *fakeMessages) MessageOf(context.Context, string) (slackapproval.Message, bool, error) {
	return slackapproval.Message{Channel: "CREKEY", TS: "1700000000.000002"}, true, nil
}

// placedMessages is the notifier's record of where it posted each
// rotation's message; a rotation missing from at was never posted.
type placedMessages struct {
	*fakeMessages
	at map[string]slackapproval.Message
}

func (p placedMessages) MessageOf(_ context.Context, id string) (slackapproval.Message, bool, error) {
	m, ok := p.at[id]
	return m, ok, nil
}

// TestClickBinding: a signed click decides a rotation only when it comes
// from the message rekey posted for that rotation, from the configured
// workspace and Slack app.
func TestClickBinding(t *testing.T) {
	const id = "rot_bind0001"
	tests := map[string]struct {
		mod     func(*Config)
		placed  map[string]slackapproval.Message
		edit    func(p map[string]any)
		decided bool
		reply   string // a fragment of the ephemeral refusal
	}{
		"on the rotation's message": {decided: true},
		"value copied onto another message": {
			edit:  func(p map[string]any) { setMessage(p, "CREKEY", "1700000000.999999") },
			reply: "not on the message rekey posted",
		},
		"value copied into another channel": {
			edit:  func(p map[string]any) { setMessage(p, "COTHER", "1700000000.000002") },
			reply: "not on the message rekey posted",
		},
		"no message posted for the rotation": {
			placed: map[string]slackapproval.Message{},
			reply:  "not on the message rekey posted",
		},
		"expected workspace": {mod: func(c *Config) { c.TeamID = "T0001" }, decided: true},
		"another workspace": {
			mod:   func(c *Config) { c.TeamID = "T0001" },
			edit:  func(p map[string]any) { p["team"] = map[string]any{"id": "T0666", "domain": "evil"} },
			reply: "does not belong",
		},
		"expected app": {mod: func(c *Config) { c.APIAppID = "A0001" }, decided: true},
		"another app": {
			mod:   func(c *Config) { c.APIAppID = "A0001" },
			edit:  func(p map[string]any) { p["api_app_id"] = "A0666" },
			reply: "does not belong",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			ch, ts, value := e.heldForApproval(id, "start")
			placed := map[string]slackapproval.Message{id: {Channel: ch, TS: ts}}
			if tc.placed != nil {
				placed = tc.placed
			}
			e.h.messages = placedMessages{fakeMessages: e.messages, at: placed}
			p := blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts)
			if tc.edit != nil {
				tc.edit(p)
			}
			if code := e.click(p); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			reqs := e.decider.requests()
			if tc.decided != (len(reqs) == 1) {
				t.Fatalf("Decide calls %+v, want decided=%v", reqs, tc.decided)
			}
			if tc.reply != "" {
				eph := e.slack.ephemerals()
				if len(eph) != 1 || !strings.Contains(eph[0], tc.reply) {
					t.Fatalf("ephemeral replies %q, want one with %q", eph, tc.reply)
				}
				if len(e.messages.shown()) != 0 {
					t.Fatal("a refused click changed the message")
				}
			}
		})
	}
}

func setMessage(p map[string]any, channel, ts string) {
	p["container"] = map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false}
	p["channel"] = map[string]any{"id": channel, "name": "elsewhere"}
	p["message"] = map[string]any{"type": "message", "ts": ts, "text": "copied"}
}

func TestConfigTeamAndApp(t *testing.T) {
	c := baseConfig(t, "https://slack.com/api/")
	c.TeamID, c.APIAppID = "acme", "app 1"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "team_id: ") || !strings.Contains(err.Error(), "api_app_id: ") {
		t.Fatalf("Validate = %v, want team_id and api_app_id refused", err)
	}
}
