package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// Test credentials; none may appear in an answer, a Slack call or a log.
const (
	testToken         = "xoxb-test-bot-token-0001"
	testSigningSecret = "test-signing-secret-8f1d"
	testAppToken      = "xapp-test-app-token-0001"
)

// call is one request the fake Slack received.
type call struct {
	Method string
	Form   url.Values
	JSON   map[string]any // response_url posts
}

// fakeSlack is slacktest's server with the methods a click needs added
// (first registration wins); it records every call.
type fakeSlack struct {
	srv      *slacktest.Server
	mu       sync.Mutex
	calls    []call
	users    map[string]string   // user id → email ("" = none)
	groups   map[string][]string // group id → members
	override map[string]http.HandlerFunc
}

func newFakeSlack(t *testing.T, extra ...slacktest.Binder) *fakeSlack {
	t.Helper()
	f := &fakeSlack{
		users:    map[string]string{"UANA": "ana@example.com", "UBOB": "bob@example.com", "UEVE": "eve@example.com", "UNOMAIL": "", "UCASE": " Ana@Example.COM "},
		groups:   map[string][]string{"SSECOPS": {"UBOB"}, "SONCALL": {"UEVE"}},
		override: map[string]http.HandlerFunc{},
	}
	binders := append([]slacktest.Binder{func(c slacktest.Customize) {
		for _, m := range []string{"chat.postEphemeral", "users.info", "usergroups.users.list"} {
			c.Handle("/"+m, f.handle(m))
		}
		c.Handle("/respond/", f.respond)
	}}, extra...)
	f.srv = slacktest.NewTestServer(binders...)
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) apiURL() string { return f.srv.GetAPIURL() }

// fail makes method answer with h.
func (f *fakeSlack) fail(method string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[method] = h
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		h := f.override[method]
		f.calls = append(f.calls, call{Method: method, Form: r.Form})
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "chat.postEphemeral":
			writeJSON(w, map[string]any{"ok": true, "message_ts": "1700000001.000001"})
		case "users.info":
			f.mu.Lock()
			email, ok := f.users[r.Form.Get("user")]
			f.mu.Unlock()
			if !ok {
				writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "user": map[string]any{"id": r.Form.Get("user"), "profile": map[string]any{"email": email}}})
		case "usergroups.users.list":
			f.mu.Lock()
			members, ok := f.groups[r.Form.Get("usergroup")]
			f.mu.Unlock()
			if !ok {
				writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "users": members})
		}
	}
}

// respond stands in for an interaction's response_url.
func (f *fakeSlack) respond(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.calls = append(f.calls, call{Method: "response_url", JSON: body})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, map[string]any{"ok": true})
}

func writeJSON(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

func (f *fakeSlack) all() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// ephemerals returns the texts of the replies sent to clickers only.
func (f *fakeSlack) ephemerals() []string {
	var out []string
	for _, c := range f.all() {
		switch c.Method {
		case "response_url":
			if c.JSON["response_type"] == "ephemeral" && c.JSON["replace_original"] == false {
				s, _ := c.JSON["text"].(string)
				out = append(out, s)
			}
		case "chat.postEphemeral":
			out = append(out, c.Form.Get("text"))
		}
	}
	return out
}

// fakeRotations is a RotationReader over a map.
type fakeRotations struct {
	mu sync.Mutex
	m  map[string]*rotator.Rotation
}

func (f *fakeRotations) put(r *rotator.Rotation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*rotator.Rotation{}
	}
	c := *r
	f.m[r.ID] = &c
}

func (f *fakeRotations) GetRotation(_ context.Context, id string) (*rotator.Rotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.m[id]
	if !ok {
		return nil, fmt.Errorf("rotation %s: %w", id, rotator.ErrNotFound)
	}
	c := *r
	return &c, nil
}

// fakeDecider records decisions; decide (optional) answers them.
type fakeDecider struct {
	mu     sync.Mutex
	calls  []rotator.ApproveRequest
	decide func(req rotator.ApproveRequest) (*rotator.Rotation, error)
}

func (d *fakeDecider) Decide(_ context.Context, req rotator.ApproveRequest) (*rotator.Rotation, error) {
	d.mu.Lock()
	d.calls = append(d.calls, req)
	f := d.decide
	d.mu.Unlock()
	if f != nil {
		return f(req)
	}
	return &rotator.Rotation{ID: req.RotationID}, nil
}

func (d *fakeDecider) requests() []rotator.ApproveRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]rotator.ApproveRequest(nil), d.calls...)
}

// memGuard is an in-memory ReplayGuard.
type memGuard struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (g *memGuard) Seen(_ context.Context, ns, id string, _ time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]bool{}
	}
	k := ns + "\x00" + id
	if g.seen[k] {
		return true, nil
	}
	g.seen[k] = true
	return false, nil
}

// shown is one ShowDecision call.
type shown struct {
	rotation string
	at       slackapproval.Message
	decision slackapproval.Decision
}

// fakeMessages records the decisions the handler asks to show.
type fakeMessages struct {
	mu    sync.Mutex
	calls []shown
}

func (m *fakeMessages) ShowDecision(_ context.Context, r *rotator.Rotation, at slackapproval.Message, d slackapproval.Decision) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, shown{rotation: r.ID, at: at, decision: d})
	return nil
}

func (m *fakeMessages) shown() []shown {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]shown(nil), m.calls...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one handler under test with its fakes.
type env struct {
	t         *testing.T
	slack     *fakeSlack
	rotations *fakeRotations
	decider   *fakeDecider
	guard     *memGuard
	messages  *fakeMessages
	logs      *syncBuffer
	h         *Handler
}

func baseConfig(t *testing.T, apiURL string) Config {
	t.Helper()
	t.Setenv("REKEY_TEST_SLACK_SIGNING", testSigningSecret)
	t.Setenv("REKEY_TEST_SLACK_APP", testAppToken)
	cfg := DefaultConfig()
	cfg.SigningSecretEnv = "REKEY_TEST_SLACK_SIGNING"
	cfg.APIURL = apiURL
	cfg.Approvers = Approvers{UserIDs: []string{"UANA", "UEVE"}, UserGroups: []string{"SSECOPS"}}
	cfg.Timeout = 5 * time.Second
	return cfg
}

// newEnv starts a fake Slack and a handler; mod adjusts the config.
func newEnv(t *testing.T, mod func(*Config), extra ...slacktest.Binder) *env {
	t.Helper()
	e := &env{t: t, slack: newFakeSlack(t, extra...), rotations: &fakeRotations{}, decider: &fakeDecider{},
		guard: &memGuard{}, messages: &fakeMessages{}, logs: &syncBuffer{}}
	cfg := baseConfig(t, e.slack.apiURL())
	if mod != nil {
		mod(&cfg)
	}
	// The bot-token client the Slack notifier lends.
	api := slackgo.New(testToken, slackgo.OptionAPIURL(e.slack.apiURL()))
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := New(cfg, api, e.messages, e.decider, e.rotations, e.guard, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	e.h = h
	return e
}

// heldForApproval stores a rotation held on gate g, as the notifier's
// message shows it; it returns the message's channel id, ts and the
// buttons' value.
func (e *env) heldForApproval(id string, g rotator.Gate) (channel, ts, value string) {
	r := &rotator.Rotation{ID: id, Key: "payments-api", Trigger: rotator.TriggerManual, Actor: "ana@example.com", Mode: rotator.ModeStaged,
		Phase: rotator.PhaseAwaitingApproval, Hold: rotator.HoldApproval}
	switch g {
	case rotator.GateRevoke:
		r.Phase = rotator.PhaseRevoking
	case rotator.GateDrain:
		r.Phase, r.Hold = rotator.PhaseDraining, rotator.HoldDrainTimeout
	}
	e.rotations.put(r)
	return "CREKEY", "1700000000.000002", slackapproval.ButtonValue(id, g)
}

// assertNoLeak checks that no secret reached Slack or the logs.
func (e *env) assertNoLeak() {
	e.t.Helper()
	var b strings.Builder
	for _, c := range e.slack.all() {
		for k, vs := range c.Form {
			if k != "token" {
				b.WriteString(k + "=" + strings.Join(vs, ",") + "\n")
			}
		}
		j, _ := json.Marshal(c.JSON)
		b.Write(j)
	}
	for where, text := range map[string]string{"slack": b.String(), "logs": e.logs.String()} {
		for _, s := range []string{testToken, testSigningSecret, testAppToken} {
			if strings.Contains(text, s) {
				e.t.Errorf("%s contains secret %q", where, s)
			}
		}
	}
}

// signedRequest builds an interaction POST signed as Slack does.
func signedRequest(t *testing.T, secret string, ts time.Time, payload any) *http.Request {
	t.Helper()
	j, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	body := "payload=" + url.QueryEscape(string(j))
	stamp := strconv.FormatInt(ts.Unix(), 10)
	r := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", stamp)
	r.Header.Set("X-Slack-Signature", sign(secret, stamp, []byte(body)))
	return r
}

func sign(secret, stamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", stamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// blockActions is a block_actions payload for a click on a button.
func blockActions(apiURL, user, actionID, value, channel, ts string) map[string]any {
	return map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": "T0001"},
		"api_app_id":   "A0001",
		"token":        "legacy-verification-token",
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"trigger_id":   "123.456.abc",
		"team":         map[string]any{"id": "T0001", "domain": "example"},
		"channel":      map[string]any{"id": channel, "name": "rekey"},
		"message":      map[string]any{"type": "message", "ts": ts, "text": "rekey"},
		"response_url": strings.TrimSuffix(apiURL, "/") + "/respond/T0001/1/abc",
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": slackapproval.DecisionBlock, "type": "button", "value": value,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000000.1",
		}},
	}
}

// click posts a signed click to the handler and waits for its handling.
func (e *env) click(payload any) int {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, signedRequest(e.t, testSigningSecret, time.Now(), payload))
	e.h.wg.Wait()
	return rec.Code
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond) // poll interval
	}
}
