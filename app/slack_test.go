package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// fakeSlack records chat.postMessage and chat.update against slacktest, and
// can play an outage (503 on every method).
type fakeSlack struct {
	srv   *slacktest.Server
	down  atomic.Bool
	mu    sync.Mutex
	posts []map[string]string
	edits []map[string]string
	n     int
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{}
	record := func(into *[]map[string]string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if f.down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_ = r.ParseForm()
			m := map[string]string{}
			for k := range r.Form {
				m[k] = r.Form.Get(k)
			}
			f.mu.Lock()
			f.n++
			ts := m["ts"]
			if ts == "" {
				ts = fmt.Sprintf("1700000000.%06d", f.n)
			}
			m["ts"] = ts
			*into = append(*into, m)
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0OPS", "ts": ts})
		}
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", record(&f.posts))
		c.Handle("/chat.update", record(&f.edits))
		c.Handle("/users.info", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{"id": r.Form.Get("user"),
				"profile": map[string]any{"email": strings.ToLower(strings.TrimPrefix(r.Form.Get("user"), "U")) + "@example.com"}}})
		})
		c.Handle("/users.lookupByEmail", func(w http.ResponseWriter, r *http.Request) {
			if f.down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{"id": "UALICE", "name": "alice"}})
		})
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.posts), len(f.edits)
}

func (f *fakeSlack) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal([]any{f.posts, f.edits})
	return string(b)
}

// Slack down during a rotation: the rotation still completes (the approval
// comes from the CLI/API path), and the queued messages are delivered once
// Slack is back — one parent message, none lost, none duplicated — and
// none of them holds key material.
func TestSlackOutageLosesNothing(t *testing.T) {
	dir := t.TempDir()
	fs := newFakeSlack(t)
	if err := os.WriteFile(filepath.Join(dir, "slack-token"), []byte("xoxb-test-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", poll_interval: 20ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers: [{name: demo, type: random, ledger: %[1]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
notifiers:
  - {name: slack, type: slack, token_file: %[1]s/slack-token, api_url: "%[2]s", channel: "#ops"}
defaults:
  approval: {gates: [start], approvers: [bob]}
keys:
  - {name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}
`, dir, fs.srv.GetAPIURL())
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Engine.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	boot, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: rotator.ActorScheduler})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, d, boot.ID, rotator.PhaseDone)
	waitFor(t, "bootstrap messages delivered", func() bool { n, _ := fs.counts(); return n > 0 && pending(t, d) == 0 })
	postsBefore, _ := fs.counts()

	fs.down.Store(true)
	r, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "approval hold", func() bool {
		got, _ := d.Store.GetRotation(ctx, r.ID)
		return got.Hold == rotator.HoldApproval
	})
	if _, err := d.Engine.Decide(ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob", Verdict: rotator.VerdictApprove, Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, d, r.ID, rotator.PhaseDone)
	if n, _ := fs.counts(); n != postsBefore {
		t.Fatalf("messages reached Slack while it was down (%d → %d)", postsBefore, n)
	}
	if pending(t, d) == 0 {
		t.Fatal("nothing queued while Slack was down")
	}

	fs.down.Store(false)
	waitFor(t, "queued messages delivered", func() bool { return pending(t, d) == 0 })
	var failed, total int
	if err := sqlDB(d).QueryRow(`SELECT COUNT(*), COALESCE(SUM(failed), 0) FROM outbox WHERE notifier = 'slack'`).Scan(&total, &failed); err != nil {
		t.Fatal(err)
	}
	if failed != 0 {
		t.Fatalf("%d of %d notifications given up", failed, total)
	}
	// One parent message for the rotation, updated in place; every event
	// delivered exactly once (the outbox marks each one delivered once).
	var parents int
	fs.mu.Lock()
	for _, p := range fs.posts[postsBefore:] {
		if p["thread_ts"] == "" {
			parents++
		}
	}
	fs.mu.Unlock()
	if parents != 1 {
		t.Fatalf("%d parent messages for one rotation after the outage, want 1", parents)
	}
	var delivered int
	if err := sqlDB(d).QueryRow(`SELECT COUNT(*) FROM outbox WHERE notifier = 'slack' AND delivered_at <> ''`).Scan(&delivered); err != nil {
		t.Fatal(err)
	}
	if delivered != total {
		t.Fatalf("%d of %d notifications delivered", delivered, total)
	}
	// No key material in any message.
	secrets, _ := filepath.Glob(filepath.Join(dir, "secrets", "*.json"))
	for _, f := range secrets {
		b, _ := os.ReadFile(f)
		var doc struct{ Current struct{ Value string } }
		_ = json.Unmarshal(b, &doc)
		if doc.Current.Value == "" || strings.Contains(fs.text(), doc.Current.Value) {
			t.Fatal("a key value reached Slack (or the sink is empty)")
		}
	}
}

func pending(t *testing.T, d *Daemon) int {
	t.Helper()
	var n int
	if err := sqlDB(d).QueryRow(`SELECT COUNT(*) FROM outbox WHERE notifier = 'slack' AND delivered_at = '' AND failed = 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitPhase(t *testing.T, d *Daemon, id string, want rotator.Phase) {
	t.Helper()
	waitFor(t, "rotation "+string(want), func() bool {
		r, err := d.Store.GetRotation(context.Background(), id)
		return err == nil && r.Phase == want
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sqlDB(d *Daemon) *sql.DB { return d.Store.(interface{ DB() *sql.DB }).DB() }

// A click on the Slack message's Approve button, signed as Slack signs it,
// reaches the engine through the slack webhook (built after the engine) and
// the message then shows the decision.
func TestSlackClickApprovesThroughTheWebhook(t *testing.T) {
	dir := t.TempDir()
	fs := newFakeSlack(t)
	const signing = "app-test-signing-secret"
	for name, v := range map[string]string{"slack-token": "xoxb-test-token", "slack-signing": signing} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", poll_interval: 20ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers: [{name: demo, type: random, ledger: %[1]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
notifiers:
  - {name: chat, type: slack, token_file: %[1]s/slack-token, api_url: "%[2]s", channel: "#ops"}
webhooks:
  - {name: clicks, type: slack, notifier: chat, signing_secret_file: %[1]s/slack-signing, api_url: "%[2]s", approvers: {user_ids: [UBOB]}}
defaults:
  approval: {gates: [start], approvers: [bob@example.com]}
keys:
  - {name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}
`, dir, fs.srv.GetAPIURL())
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Engine.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	boot, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: rotator.ActorScheduler})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, d, boot.ID, rotator.PhaseDone)
	r, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	value := slackapproval.ButtonValue(r.ID, rotator.GateStart)
	var parentTS string
	waitFor(t, "the Approve button on the rotation's message", func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for _, m := range append(append([]map[string]string{}, fs.posts...), fs.edits...) {
			if strings.Contains(m["blocks"], value) && strings.Contains(m["blocks"], slackapproval.ActionApprove) {
				parentTS = m["ts"]
				return true
			}
		}
		return false
	})

	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "UBOB"},
		"container": map[string]any{"type": "message", "channel_id": "C0OPS", "message_ts": parentTS},
		"actions":   []any{map[string]any{"action_id": slackapproval.ActionApprove, "block_id": slackapproval.DecisionBlock, "value": value, "type": "button"}},
	})
	body := "payload=" + url.QueryEscape(string(payload))
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signing))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	req := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	rec := httptest.NewRecorder()
	d.PublicHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("interaction answered %d: %s", rec.Code, rec.Body)
	}
	waitPhase(t, d, r.ID, rotator.PhaseDone)
	approvals, err := d.Store.Approvals(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(approvals) != 1 || approvals[0].Approver != "bob@example.com" || approvals[0].Via != "slack" {
		t.Fatalf("approvals %+v, want bob@example.com via slack", approvals)
	}
	waitFor(t, "the decision on the message", func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for _, m := range fs.edits {
			// blocks is JSON: "<@UBOB>" travels as "\u003c@UBOB\u003e".
			if m["ts"] == parentTS && strings.Contains(m["blocks"], "*Approved* (start gate) by \\u003c@UBOB\\u003e") {
				return true
			}
		}
		return false
	})
}

// The slack webhook must name a slack notifier; button settings left on
// the notifier are refused with where they went.
func TestSlackWebhookValidation(t *testing.T) {
	tests := map[string]struct {
		notifiers, webhooks string
		want                []string
	}{
		"unknown notifier": {
			notifiers: `[{name: log, type: log}]`,
			webhooks:  `[{name: clicks, type: slack, signing_secret_env: S, approvers: {user_ids: [UBOB]}}]`,
			want:      []string{`webhooks[0].notifier: unknown notifier "slack": configure a slack notifier`},
		},
		"not a slack notifier": {
			notifiers: `[{name: slack, type: log}]`,
			webhooks:  `[{name: clicks, type: slack, signing_secret_env: S, approvers: {user_ids: [UBOB]}}]`,
			want:      []string{`webhooks[0].notifier: notifier "slack" is a log notifier`},
		},
		"button settings on the notifier": {
			notifiers: `[{name: slack, type: slack, token_env: T, channel: "#ops", signing_secret_env: S, approvers: {user_ids: [UBOB]}}]`,
			webhooks:  `[]`,
			want: []string{
				"notifiers[0].signing_secret_env: no longer supported: button clicks are received by the slack webhook now",
				"notifiers[0].approvers: no longer supported: button clicks are received by the slack webhook now",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			yaml := fmt.Sprintf(`
issuers: [{name: demo, type: random}]
sinks: [{name: files, type: file, dir: /tmp/x}]
notifiers: %s
webhooks: %s
keys: [{name: api, issuer: demo, sinks: [{sink: files}]}]
`, tc.notifiers, tc.webhooks)
			cfg, err := config.Parse([]byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			errs := Validate(cfg)
			for _, w := range tc.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("errors:\n%v\nwant %q", errs, w)
				}
			}
		})
	}
}
