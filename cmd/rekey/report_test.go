package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReportAgainAfterTheRevoke: `rekey report` run again over the same
// scanner output fails CI while the matched credential is still live
// (its emergency has not revoked it yet), and passes once it is revoked —
// never claiming that emergency rotations started. On the code before,
// the run after the revoke said "1 finding(s) matched a live credential
// (emergency rotations started)" and exited 7.
func TestReportAgainAfterTheRevoke(t *testing.T) {
	dir, cfg := cliConfig(t)
	live := bootstrapAPI(t, dir, cfg)
	b, _ := json.Marshal([]map[string]any{{"RuleID": "generic-api-key", "Secret": live, "File": "config.env", "StartLine": 3, "Commit": "abc"}})
	report := string(b)

	code, stdout, stderr := runCLI(t, report, "report", "--break-glass", "-c", cfg, "--format", "gitleaks", "-o", "json", "-")
	var first struct {
		Results []struct {
			RotationID string `json:"rotation_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &first); err != nil || len(first.Results) != 1 || first.Results[0].RotationID == "" {
		t.Fatalf("first report: %v %s", err, stdout)
	}
	if code != exitExposed || !strings.Contains(stderr, "1 emergency rotation(s) started") {
		t.Fatalf("first report: exit %d, want %d (%s)", code, exitExposed, stderr)
	}

	// Not revoked yet (nothing drove the emergency): still a live match,
	// but nothing new started.
	code, stdout, stderr = runCLI(t, report, "report", "--break-glass", "-c", cfg, "--format", "gitleaks", "-")
	if code != exitExposed || !strings.Contains(stderr, "already reported, not revoked yet") || strings.Contains(stderr, "started") {
		t.Fatalf("report again before the revoke: exit %d, want %d (%s %s)", code, exitExposed, stdout, stderr)
	}

	driveToEnd(t, cfg, first.Results[0].RotationID)
	code, stdout, stderr = runCLI(t, report, "report", "--break-glass", "-c", cfg, "--format", "gitleaks", "-")
	if code != exitOK || strings.Contains(stdout+stderr, "matched a live credential (") || !strings.Contains(stdout, "generation 1, already revoked (already reported)") ||
		!strings.Contains(stdout, "1 finding(s), 0 matched a live credential") {
		t.Fatalf("report again after the revoke: exit %d, want 0 (%s %s)", code, stdout, stderr)
	}
}

// driveToEnd runs the engine over the store of cfg until rotation id ends.
func driveToEnd(t *testing.T, cfg, id string) {
	t.Helper()
	var errb bytes.Buffer
	c := &cli{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &errb, getenv: os.Getenv, config: cfg}
	cl, err := c.openLocal(true)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		cl.step(c.ctx, id)
		r, err := cl.local.Store.GetRotation(c.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Phase.Terminal() {
			if r.Phase != "done" {
				t.Fatalf("emergency ended %s: %s", r.Phase, r.LastError)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("emergency still %s (%s) after 30s: %s", r.Phase, r.Hold, errb.String())
		}
		time.Sleep(stepFloor) // the engine's retry_base; the deadline bounds the wait
	}
}
