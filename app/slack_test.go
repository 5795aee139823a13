package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/config"
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
daemon: {listen: "127.0.0.1:0", poll_interval: 20ms, retry_base: 50ms, retry_max: 200ms}
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

	boot, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: "setup"})
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
