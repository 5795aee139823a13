package main

import (
	"bytes"
	"context"
	"encoding/json"
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
