package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliConfig is a daemon on a fresh directory: SQLite, the random issuer,
// the file sink and the log notifier.
func cliConfig(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	cfg = filepath.Join(dir, "rekey.yaml")
	yaml := `
daemon: {listen: 127.0.0.1:0, retry_base: 10ms, retry_max: 20ms, log_level: error}
store: {type: sqlite, path: ` + dir + `/rekey.db}
issuers: [{name: rnd, type: random, ledger: ` + dir + `/ledger.json}]
sinks: [{name: files, type: file, dir: ` + dir + `/secrets}]
notifiers: [{name: log, type: log}]
keys:
  - name: api
    issuer: rnd
    sinks: [{sink: files}]
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestRotateWaitExitsNonZeroWhenTheRotationFails: a rotation that ends
// failed (here: the sink holds a file rekey does not own) exits 6, not 0.
func TestRotateWaitExitsNonZeroWhenTheRotationFails(t *testing.T) {
	dir, cfg := cliConfig(t)
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "api.json"), []byte(`{"someone":"else"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "rotate", "-c", cfg, "--break-glass", "--bootstrap", "--wait", "-o", "json", "api")
	if code != exitOutcome {
		t.Fatalf("exit %d, want %d (stdout %s, stderr %s)", code, exitOutcome, stdout, stderr)
	}
	var r struct{ Phase string }
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Phase == "done" || r.Phase == "" {
		t.Fatalf("printed %q (%v); want the rotation in its final, unsuccessful phase", stdout, err)
	}
}

// TestRotateWaitExitsZeroWhenDone: the good path keeps exit 0.
func TestRotateWaitExitsZeroWhenDone(t *testing.T) {
	_, cfg := cliConfig(t)
	code, stdout, stderr := runCLI(t, "", "rotate", "-c", cfg, "--break-glass", "--bootstrap", "--wait", "api")
	if code != exitOK {
		t.Fatalf("exit %d (stdout %s, stderr %s)", code, stdout, stderr)
	}
}

// bootstrapAPI gives the key api of cliConfig its first credential
// (break-glass) and returns the secret the file sink holds.
func bootstrapAPI(t *testing.T, dir, cfg string) string {
	t.Helper()
	if code, stdout, stderr := runCLI(t, "", "rotate", "-c", cfg, "--break-glass", "--bootstrap", "--wait", "api"); code != exitOK {
		t.Fatalf("bootstrap: exit %d (%s %s)", code, stdout, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secrets", "api.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Current struct{ Value string } `json:"current"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Current.Value == "" {
		t.Fatalf("sink document: %v %s", err, raw)
	}
	return doc.Current.Value
}

// TestReportExitsSevenOnALiveMatch: a finding that matches a live
// credential fails a CI step; findings that match nothing do not.
func TestReportExitsSevenOnALiveMatch(t *testing.T) {
	dir, cfg := cliConfig(t)
	live := bootstrapAPI(t, dir, cfg)
	gitleaks := func(secret string) string {
		b, _ := json.Marshal([]map[string]any{{"RuleID": "generic-api-key", "Secret": secret, "File": "config.env", "StartLine": 3, "Commit": "abc"}})
		return string(b)
	}
	if code, stdout, stderr := runCLI(t, gitleaks("ka_live_nothingmatchesthis0000000000"), "report", "--break-glass", "-c", cfg, "--format", "gitleaks", "-"); code != exitOK {
		t.Fatalf("unmatched finding: exit %d (%s %s)", code, stdout, stderr)
	}
	code, stdout, stderr := runCLI(t, gitleaks(live), "report", "--break-glass", "-c", cfg, "--format", "gitleaks", "-")
	if code != exitExposed {
		t.Fatalf("live match: exit %d, want %d (%s %s)", code, exitExposed, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, live) {
		t.Fatal("the report echoed the secret")
	}
}

// TestValidateRefusesTraversals: `rekey validate` exits 2 and names the
// YAML path of every sink path or mount that would leave its root.
func TestValidateRefusesTraversals(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rekey.yaml")
	yaml := `
store: {type: sqlite, path: ` + dir + `/rekey.db}
issuers: [{name: rnd, type: random}]
sinks:
  - {name: files, type: file, dir: ` + dir + `/secrets}
  - {name: vault, type: vault, address: "https://vault:8200", mount: "secret/../sys", auth: {token_env: VAULT_TOKEN}}
keys:
  - {name: a, issuer: rnd, sinks: [{sink: files, path: ../../etc/x}]}
  - {name: b, issuer: rnd, sinks: [{sink: files, path: /etc/x}]}
  - {name: c, issuer: rnd, sinks: [{sink: vault, path: ../../sys/policy/root}]}
  - {name: d, issuer: rnd, sinks: [{sink: vault, path: x, params: {mount: "secret/../sys"}}]}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "validate", "-c", cfg)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d (%s %s)", code, exitUsage, stdout, stderr)
	}
	for _, path := range []string{"sinks[1].mount: ", "keys[0].sinks[0].path: ", "keys[1].sinks[0].path: ", "keys[2].sinks[0].path: ",
		"keys[3].sinks[0].params.mount: "} {
		if !strings.Contains(stdout+stderr, path) {
			t.Errorf("validate does not report %q:\n%s%s", path, stdout, stderr)
		}
	}
}
