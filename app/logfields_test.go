package app

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogFieldsAreConsistent runs the daemon through a bootstrap and a
// staged rotation (with a notifier that fails, so error lines are
// written), parses every JSON log line, and fails on a key repeated within
// one object, on a field with two JSON types across lines, and on the
// aliases issue 13 found (rotation_id for rotation, error/errors for err).
func TestLogFieldsAreConsistent(t *testing.T) {
	dir := t.TempDir()
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	adminToken := hex.EncodeToString(tok)
	for name, v := range map[string]string{"admin-token": adminToken, "hook-secret": "app-test-logs-hook-secret-0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	adminFile := filepath.Join(dir, "admin.addr")
	cfgPath := filepath.Join(dir, "rekey.yaml")
	cfg := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", admin_address_file: %[1]q, admin_token_file: %[2]s/admin-token,
         schedule: "@every 1s", poll_interval: 50ms, retry_base: 50ms, retry_max: 200ms, log_level: debug}
store: {type: sqlite, path: %[2]s/rekey.db}
issuers: [{name: demo, type: random, ledger: %[2]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[2]s/secrets}]
notifiers:
  - {name: log, type: log}
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/hook", secret_file: %[2]s/hook-secret, max_attempts: 2}
defaults: {notify: [log, hook], drain: {quiet_period: 100ms, poll_interval: 50ms}, watch: {period: 100ms, poll_interval: 50ms}}
keys: [{name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}]
`, adminFile, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, stop := runDaemon(t, cfgPath)
	b, err := os.ReadFile(adminFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + strings.TrimSpace(string(b))
	call := func(method, path string, out any) int {
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(`{"reason":"log test"}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if out != nil {
			_ = json.Unmarshal(body, out)
		}
		return resp.StatusCode
	}
	// The scheduler bootstraps the key; then a staged rotation runs.
	var created RotationView
	deadline := time.Now().Add(time.Minute)
	for call("POST", "/v1/keys/api/rotate", &created) != http.StatusCreated {
		if time.Now().After(deadline) {
			t.Fatalf("could not start a rotation\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		var got struct {
			Rotation RotationView `json:"rotation"`
		}
		call("GET", "/v1/rotations/"+created.ID, &got)
		if got.Rotation.Phase == "done" {
			break
		}
		if time.Now().After(deadline) || (got.Rotation.Phase != "" && got.Rotation.Phase.Terminal()) {
			t.Fatalf("rotation %s ended in %q\n%s", created.ID, got.Rotation.Phase, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The webhook notifier's failures are logged before the daemon stops.
	for !strings.Contains(logs.String(), `"err":`) {
		if time.Now().After(deadline) {
			t.Fatalf("no error line logged\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkLogFields(t, logs.String())
}

// checkLogFields parses each line as one JSON object.
func checkLogFields(t *testing.T, logs string) {
	t.Helper()
	types := map[string]string{}
	first := map[string]string{}
	lines := 0
	for line := range strings.Lines(logs) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		lines++
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		fields, err := objectFields(dec, "")
		if err != nil {
			t.Errorf("%v in: %s", err, line)
			continue
		}
		for name, typ := range fields {
			switch name {
			case "rotation_id", "error", "errors":
				t.Errorf("field %q: the same concept is %q elsewhere, in: %s", name, map[string]string{"rotation_id": "rotation", "error": "err", "errors": "err"}[name], line)
			}
			if prev, ok := types[name]; ok && prev != typ {
				t.Errorf("field %q is a %s here and a %s in %s:\n%s", name, typ, prev, first[name], line)
			} else if !ok {
				types[name], first[name] = typ, line
			}
		}
	}
	if lines < 20 || types["rotation"] == "" || types["generation"] == "" || types["err"] == "" {
		t.Fatalf("the run logged too little to check (%d lines; rotation %q, generation %q, err %q):\n%s", lines, types["rotation"], types["generation"], types["err"], logs)
	}
}

// objectFields reads one JSON object from dec and returns the type of each
// field, nested ones as parent.child; a key repeated within one object is
// an error.
func objectFields(dec *json.Decoder, prefix string) (map[string]string, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("key %q twice in one object", prefix+key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		switch raw[0] {
		case '{':
			sub, err := objectFields(json.NewDecoder(bytes.NewReader(raw)), prefix+key+".")
			if err != nil {
				return nil, err
			}
			for k, v := range sub {
				out[k] = v
			}
			out[prefix+key] = "object"
		case '[':
			out[prefix+key] = "array"
		case '"':
			out[prefix+key] = "string"
		case 't', 'f':
			out[prefix+key] = "bool"
		case 'n':
			continue // null is no type
		default:
			out[prefix+key] = "number"
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}
