package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// stubAPI answers the Slack calls a click makes without a network.
type stubAPI struct{}

func (stubAPI) GetUserGroupMembersContext(context.Context, string, ...slackgo.GetUserGroupMembersOption) ([]string, error) {
	return []string{"UBOB"}, nil
}

func (stubAPI) GetUserInfoContext(_ context.Context, user string, _ ...slackgo.GetUserInfoOption) (*slackgo.User, error) {
	u := &slackgo.User{ID: user}
	u.Profile.Email = strings.ToLower(user) + "@example.com"
	return u, nil
}

func (stubAPI) SendMessageContext(context.Context, string, ...slackgo.MsgOption) (string, string, string, error) {
	return "", "", "", nil
}

func (stubAPI) PostEphemeralContext(context.Context, string, string, ...slackgo.MsgOption) (string, error) {
	return "", nil
}

// FuzzInteraction sends any payload, signed, through the HTTP handler and
// the click handling behind it: no panic, an answer of 200 or 400, and a
// decision reaches the engine only for a block_actions click by an
// approver, on rekey's button, on the message the notifier posted for the
// rotation it names.
func FuzzInteraction(f *testing.F) {
	value := slackapproval.ButtonValue("rot_fuzz0001", rotator.GateStart)
	for _, p := range []map[string]any{
		blockActions("https://slack.com/api/", "UANA", slackapproval.ActionApprove, value, "CREKEY", "1700000000.000002"),
		blockActions("https://slack.com/api/", "UBOB", slackapproval.ActionDeny, value, "COTHER", "1700000000.000002"),
		blockActions("https://slack.com/api/", "UMALLORY", slackapproval.ActionApprove, "rot_fuzz0001:revoke", "CREKEY", "1"),
		{"type": "view_submission"}, {"type": "block_actions", "actions": nil},
	} {
		j, _ := json.Marshal(p)
		f.Add(string(j))
	}
	f.Add(`{"type":"block_actions","actions":[{"action_id":"rekey_approve","value":":start"}]}`)
	f.Add(`not json`)
	_ = os.Setenv("REKEY_FUZZ_SLACK_SIGNING", testSigningSecret)
	cfg := DefaultConfig()
	cfg.SigningSecretEnv = "REKEY_FUZZ_SLACK_SIGNING"
	cfg.Approvers = Approvers{UserIDs: []string{"UANA"}, UserGroups: []string{"SSECOPS"}}
	rotations := &fakeRotations{}
	rotations.put(&rotator.Rotation{ID: "rot_fuzz0001", Key: "payments-api", Trigger: rotator.TriggerManual, Actor: "ana@example.com",
		Mode: rotator.ModeStaged, Phase: rotator.PhaseAwaitingApproval, Hold: rotator.HoldApproval})
	decider := &fakeDecider{}
	h, err := New(cfg, stubAPI{}, &fakeMessages{}, decider, rotations, &memGuard{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = h.Close() })
	f.Fuzz(func(t *testing.T, payload string) {
		body := "payload=" + url.QueryEscape(payload)
		stamp := strconv.FormatInt(time.Now().Unix(), 10)
		r := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Slack-Request-Timestamp", stamp)
		r.Header.Set("X-Slack-Signature", sign(testSigningSecret, stamp, []byte(body)))
		before := len(decider.requests())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		h.wg.Wait()
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for %q", rec.Code, payload)
		}
		reqs := decider.requests()
		if len(reqs) == before {
			return
		}
		var cb slackgo.InteractionCallback
		if err := json.Unmarshal([]byte(payload), &cb); err != nil {
			t.Fatalf("a decision from a payload that is not JSON: %q", payload)
		}
		c, ok := clickOf(cb)
		if !ok || c.channelID != "CREKEY" || c.messageTS != "1700000000.000002" || (c.userID != "UANA" && c.userID != "UBOB") ||
			c.value != value || len(reqs) != before+1 || reqs[before].RotationID != "rot_fuzz0001" {
			t.Fatalf("decision %+v from %q", reqs[len(reqs)-1], payload)
		}
	})
}
