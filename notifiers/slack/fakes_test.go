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

	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/rotator"
)

// memState is an in-memory StateStore; fail makes every call fail.
type memState struct {
	mu   sync.Mutex
	m    map[string]string
	fail error
}

func newMemState() *memState { return &memState{m: map[string]string{}} }

func (s *memState) GetState(_ context.Context, ns, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", false, s.fail
	}
	v, ok := s.m[ns+"\x00"+key]
	return v, ok, nil
}

func (s *memState) PutState(_ context.Context, ns, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.m[ns+"\x00"+key] = value
	return nil
}

func (s *memState) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for k, v := range s.m {
		b.WriteString(k + "=" + v + "\n")
	}
	return b.String()
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

// env is one notifier under test with its fakes.
type env struct {
	t         *testing.T
	slack     *fakeSlack
	state     *memState
	rotations *fakeRotations
	decider   *fakeDecider
	guard     *memGuard
	logs      *syncBuffer
	n         *Notifier
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

func baseConfig(t *testing.T, apiURL string) Config {
	t.Helper()
	t.Setenv("REKEY_TEST_SLACK_TOKEN", testToken)
	t.Setenv("REKEY_TEST_SLACK_SIGNING", testSigningSecret)
	t.Setenv("REKEY_TEST_SLACK_APP", testAppToken)
	cfg := DefaultConfig()
	cfg.TokenEnv = "REKEY_TEST_SLACK_TOKEN"
	cfg.SigningSecretEnv = "REKEY_TEST_SLACK_SIGNING"
	cfg.APIURL = apiURL
	cfg.Channel = "#rekey"
	cfg.OncallGroup = "SONCALL"
	cfg.Approvers = Approvers{UserIDs: []string{"UANA", "UEVE"}, UserGroups: []string{"SSECOPS"}}
	cfg.Timeout = 5 * time.Second
	return cfg
}

// newEnv starts a fake Slack and a notifier; mod adjusts the config.
func newEnv(t *testing.T, mod func(*Config), extra ...slacktest.Binder) *env {
	t.Helper()
	e := &env{t: t, slack: newFakeSlack(t, extra...), state: newMemState(), rotations: &fakeRotations{}, decider: &fakeDecider{},
		guard: &memGuard{}, logs: &syncBuffer{}}
	e.n = e.notifier(mod)
	return e
}

// notifier builds a notifier over the env's fakes (a "restart" when called
// again).
func (e *env) notifier(mod func(*Config)) *Notifier {
	e.t.Helper()
	cfg := baseConfig(e.t, e.slack.apiURL())
	if mod != nil {
		mod(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(cfg, logger, e.state, e.rotations, e.decider, e.guard)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = n.Close() })
	return n
}

func (e *env) notify(evs ...rotator.Event) {
	e.t.Helper()
	for _, ev := range evs {
		if err := e.n.Notify(context.Background(), ev); err != nil {
			e.t.Fatalf("Notify(%s %s): %v", ev.Kind, ev.Phase, err)
		}
	}
}

// assertNoLeak checks that no secret reached Slack, the state store or the
// logs.
func (e *env) assertNoLeak() {
	e.t.Helper()
	for where, text := range map[string]string{"slack": e.slack.dump(), "state": e.state.dump(), "logs": e.logs.String()} {
		for _, s := range []string{fakeSecret, testToken, testSigningSecret, testAppToken} {
			if strings.Contains(text, s) {
				e.t.Errorf("%s contains secret %q", where, s)
			}
		}
	}
}

// events builds the events of one rotation, as the engine would.
type events struct {
	rotation string
	key      string
	mode     rotator.Mode
	trigger  rotator.Trigger
	owners   []string
	n        int
	at       time.Time
}

func newEvents(rotation, key string) *events {
	return &events{rotation: rotation, key: key, mode: rotator.ModeStaged, trigger: rotator.TriggerAge,
		owners: []string{"ana@example.com"}, at: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func (b *events) ev(kind string, phase rotator.Phase, sev rotator.Severity, msg string, fields map[string]string) rotator.Event {
	b.n++
	b.at = b.at.Add(time.Minute)
	return rotator.Event{ID: b.rotation + "-" + strconv.Itoa(b.n), Kind: kind, Severity: sev, Key: b.key, RotationID: b.rotation,
		Phase: phase, Trigger: b.trigger, Mode: b.mode, Actor: "policy:maxage", Owners: b.owners, Message: msg, Fields: fields, At: b.at}
}

func (b *events) started() rotator.Event {
	p, sev := rotator.PhaseAwaitingApproval, rotator.SeverityInfo
	if b.mode == rotator.ModeEmergency {
		p, sev = rotator.PhaseRevoking, rotator.SeverityCritical
	}
	return b.ev(rotator.EventStarted, p, sev, fmt.Sprintf("%s rotation of %s started (%s): key is 91 days old", b.mode, b.key, b.trigger), nil)
}

func (b *events) phase(from, to rotator.Phase, fields map[string]string) rotator.Event {
	if fields == nil {
		fields = map[string]string{}
	}
	fields["from"] = string(from)
	return b.ev(rotator.EventPhase, to, rotator.SeverityInfo, fmt.Sprintf("%s: %s → %s", b.key, from, to), fields)
}

func (b *events) held(phase rotator.Phase, h rotator.Hold, detail string, sev rotator.Severity) rotator.Event {
	return b.ev(rotator.EventHeld, phase, sev, b.key+" waits: "+detail, map[string]string{"hold": string(h)})
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
			"action_id": actionID, "block_id": decisionBlock, "type": "button", "value": value,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000000.1",
		}},
	}
}

// click posts a signed click to the handler and waits for its handling.
func (e *env) click(payload any) int {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.n.Interactions().ServeHTTP(rec, signedRequest(e.t, testSigningSecret, time.Now(), payload))
	e.n.wg.Wait()
	return rec.Code
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
