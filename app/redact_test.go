package app

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

// TestReportedTokenNeverStoredOrSentEncoded: a live token reported with a
// url that quotes it URL-encoded and base64-encoded reaches neither the
// store (inbound events, audit, outbox), nor a notification, nor the logs,
// in any of those forms (issue 12, item 7).
func TestReportedTokenNeverStoredOrSentEncoded(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var sent []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent = append(sent, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	const exposureSecret = "app-test-exposure-secret-0123456789"
	for name, v := range map[string]string{"exposure-secret": exposureSecret, "hook-secret": "app-test-notify-secret-0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addrFile := filepath.Join(dir, "rekey.addr")
	cfgPath := filepath.Join(dir, "rekey.yaml")
	cfg := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", address_file: %[1]q, admin_listen: "127.0.0.1:0", schedule: "@every 1s", poll_interval: 50ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[2]q}
issuers: [{name: demo, type: random, format: "ka+live/{base62:24}=", ledger: %[3]q}]
sinks: [{name: files, type: file, dir: %[4]q}]
notifiers:
  - {name: log, type: log}
  - {name: hook, type: webhook, url: %[5]q, secret_file: %[6]q}
webhooks: [{name: exposure, type: exposure, secret_file: %[7]q}]
defaults: {notify: [log, hook]}
keys: [{name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}]
`, addrFile, filepath.Join(dir, "rekey.db"), filepath.Join(dir, "ledger.json"), filepath.Join(dir, "secrets"),
		hook.URL, filepath.Join(dir, "hook-secret"), filepath.Join(dir, "exposure-secret"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, logs, stop := runDaemon(t, cfgPath)
	// The scheduler bootstraps the key; its current value is the token.
	var token string
	poll(t, "the key's first generation", func() bool {
		raw, err := os.ReadFile(filepath.Join(dir, "secrets", "api.json"))
		var doc struct {
			Current struct{ Value string } `json:"current"`
		}
		if err == nil && json.Unmarshal(raw, &doc) == nil {
			token = doc.Current.Value
		}
		return token != ""
	})
	b64 := base64.StdEncoding.EncodeToString([]byte(token))
	forms := map[string]string{
		"raw": token, "query-escaped": url.QueryEscape(token), "path-escaped": url.PathEscape(token), "base64": b64,
		"base64 url": base64.RawURLEncoding.EncodeToString([]byte(token)),
	}
	// The token's '+', '/' and '=' change under URL encoding.
	where := "https://ci.example.com/job/" + url.PathEscape(token) + "/console?auth=" + url.QueryEscape("Bearer "+token) +
		"&h=" + b64 + "&u=" + base64.RawURLEncoding.EncodeToString([]byte(token))
	body, _ := json.Marshal(map[string]string{"token": token, "source": "ci", "url": where})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events/exposure", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	key, err := stdwebhooks.ParseKey(exposureSecret)
	if err != nil {
		t.Fatal(err)
	}
	key.SetHeaders(req.Header, "msg_redact_1", time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("report: %s", resp.Status)
	}
	// The emergency rotation revokes the token and replaces it; its
	// notifications carry the report's location.
	poll(t, "a notification naming where the token was seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(sent, "\n"), "ci.example.com")
	})
	_ = stop() // the scan below is what this test is about
	var stored bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(dir, "rekey.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		stored.Write(b)
	}
	mu.Lock()
	notified := strings.Join(sent, "\n")
	mu.Unlock()
	for what, text := range map[string]string{"the store": stored.String(), "a notification": notified, "the logs": logs.String()} {
		for form, v := range forms {
			if strings.Contains(text, v) {
				t.Errorf("the token reached %s %s", what, form)
			}
		}
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(20 * time.Millisecond)
	}
}
