package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
)

// TestStatusAndPlanFlagALivePreviousGeneration: a generation left live
// beside the current one is shown by status and plan, with what would
// revoke it (here: nothing, no unauthorized policy is configured).
func TestStatusAndPlanFlagALivePreviousGeneration(t *testing.T) {
	dir, cfg := cliConfig(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	fp := func(s string) string { return rotator.Fingerprint(s) }
	if err := st.Save(context.Background(), rotator.Commit{Credentials: []*rotator.Credential{
		{Key: "api", Generation: 1, Name: "api-v1", IssuerID: "id-1", Fingerprint: fp("one"), State: rotator.CredPrevious, CreatedAt: now.Add(-48 * time.Hour)},
		{Key: "api", Generation: 2, Name: "api-v2", IssuerID: "id-2", Fingerprint: fp("two"), State: rotator.CredCurrent, CreatedAt: now},
	}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut := runCLI(t, "", "status", "-c", cfg)
	if code != 0 || !strings.Contains(out, "LIVE PREVIOUS GENERATION: api generation 1 (api-v1) still works beside the current one; nothing revokes it on its own") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "plan", "-c", cfg)
	if code != 0 || !strings.Contains(out, "generation 1 (api-v1) is still live beside the current one") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
}

// TestPlanJSONStreamsTheAnswer: `plan -o json` over the store prints the
// API's answer, streamed, exactly as printRaw prints it from a daemon.
func TestPlanJSONStreamsTheAnswer(t *testing.T) {
	dir, cfg := cliConfig(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut := runCLI(t, "", "plan", "-c", cfg, "-o", "json")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	var plan struct {
		Plan []struct{ Key, Action string }
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Plan) != 1 || plan.Plan[0].Key != "api" || plan.Plan[0].Action != "bootstrap" {
		t.Fatalf("printed %q (%v)", out, err)
	}
	var want bytes.Buffer
	if err := printRaw(&want, []byte(out)); err != nil || want.String() != out {
		t.Fatalf("printed\n%s\nprintRaw would print\n%s", out, want.String())
	}
}

// TestStatusTableInProcessIsTheAPIs: the status table made in process
// from the key views (break-glass) is byte for byte the table made from
// the API's JSON answer, with a key of each state.
func TestStatusTableInProcessIsTheAPIs(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(cfg, []byte(`
daemon: {listen: 127.0.0.1:0, log_level: error}
store: {type: sqlite, path: `+dir+`/rekey.db}
issuers: [{name: rnd, type: random, ledger: `+dir+`/ledger.json}]
sinks: [{name: files, type: file, dir: `+dir+`/secrets}]
keys:
  - {name: api, issuer: rnd, owners: [a@example.com], sinks: [{sink: files}, {sink: files, path: copy}]}
  - {name: web, issuer: rnd, sinks: [{sink: files}], policies: {max_age: 1d}}
  - {name: db, issuer: rnd, sinks: [{sink: files}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-50*time.Hour - 30*time.Minute) // ages print as 2d2h for the test's length
	fp := func(s string) string { return rotator.Fingerprint(s) }
	if err := st.Save(context.Background(), rotator.Commit{Credentials: []*rotator.Credential{
		{Key: "api", Generation: 1, Name: "api-v1", IssuerID: "id-1", Fingerprint: fp("one"), State: rotator.CredPrevious, CreatedAt: then},
		{Key: "api", Generation: 2, Name: "api-v2", IssuerID: "id-2", Fingerprint: fp("two"), State: rotator.CredCurrent, CreatedAt: then},
		{Key: "web", Generation: 4, Name: "web-v4", IssuerID: "id-3", Fingerprint: fp("three"), State: rotator.CredCurrent, CreatedAt: then},
	}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var local, api bytes.Buffer
	c := &cli{ctx: context.Background(), stdout: &local, stderr: io.Discard, getenv: func(string) string { return "" }, config: cfg}
	cl, err := c.openLocal(false)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := c.status(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	viaAPI := *cl
	viaAPI.local = nil // the same in-process API, through its JSON answer
	c.stdout = &api
	if err := c.status(context.Background(), &viaAPI); err != nil {
		t.Fatal(err)
	}
	if local.String() != api.String() {
		t.Fatalf("in process:\n%s\nthrough the API:\n%s", local.String(), api.String())
	}
	for _, want := range []string{"api  2    2d2h", "files:api,files:copy", "web  4    2d2h", "db", "no credential",
		"LIVE PREVIOUS GENERATION: api generation 1 (api-v1)"} {
		if !strings.Contains(local.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, local.String())
		}
	}
}

// token list shows who is behind each token (its creator first), as the
// engine counts them for the two-person rule; -o json has the same chain.
func TestTokenListShowsWhoCreatedEachToken(t *testing.T) {
	_, cfg := cliConfig(t)
	if code, _, errOut := runCLI(t, "", "token", "create", "--break-glass", "-c", cfg, "--user", "alice@example.com", "--role", "approver"); code != exitOK {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "token", "list", "--break-glass", "-c", cfg)
	if code != exitOK {
		t.Fatalf("token list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "CREATED BY") || !strings.Contains(lines[1], "alice@example.com") || !strings.Contains(lines[1], "break-glass:") {
		t.Fatalf("token list:\n%s", out)
	}
}
