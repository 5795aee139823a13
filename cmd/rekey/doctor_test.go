package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doctor on a healthy local configuration exits 0 with a ✔ per check; with
// a secret reference unset it names it with its fix and exits 2
// (configuration), as `validate --online` does; plain validate only warns.
func TestDoctorExitCodes(t *testing.T) {
	dir, cfg := cliConfig(t)
	code, stdout, stderr := runCLI(t, "", "doctor", "-c", cfg)
	if code != exitOK || !strings.Contains(stdout, "✔") || strings.Contains(stdout, "✘") ||
		!strings.Contains(stdout, "issuer rnd") || !strings.Contains(stdout, "sink files: api (key api)") {
		t.Fatalf("healthy: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "rekey.db")); err == nil || !strings.Contains(stdout, "not created yet: rekey run creates "+filepath.Join(dir, "rekey.db")) {
		t.Fatalf("doctor created the store (%v) or did not say where it will be:\n%s", err, stdout)
	}
	broken := filepath.Join(dir, "broken.yaml")
	b, _ := os.ReadFile(cfg)
	yaml := strings.Replace(string(b), "notifiers: [{name: log, type: log}]",
		"notifiers: [{name: log, type: log}, {name: hook, type: webhook, url: 'http://127.0.0.1:1/h', secret_env: REKEY_TEST_NOPE_HOOK}]", 1)
	if err := os.WriteFile(broken, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"doctor"}, {"validate", "--online"}} {
		code, stdout, stderr = runCLI(t, "", append(args, "-c", broken)...)
		if code != exitUsage || !strings.Contains(stdout, "✘") || !strings.Contains(stdout, "notifiers[1].secret_env") ||
			!strings.Contains(stdout, "export REKEY_TEST_NOPE_HOOK") {
			t.Fatalf("%v with a secret unset: exit %d, want %d\n%s%s", args, code, exitUsage, stdout, stderr)
		}
	}
	code, stdout, _ = runCLI(t, "", "validate", "-c", broken)
	if code != exitOK || !strings.Contains(stdout, "WARNING: notifiers[1].secret_env") {
		t.Fatalf("plain validate: exit %d, want 0 with a warning\n%s", code, stdout)
	}
}

// rotate of a key without an approval gate does not print
// phase=awaiting_approval: no step ran yet, the rotation is starting.
func TestRotateWithoutGateIsNotAwaitingApproval(t *testing.T) {
	_, cfg := cliConfig(t)
	code, stdout, stderr := runCLI(t, "", "rotate", "-c", cfg, "--break-glass", "--bootstrap", "api")
	if code != exitOK || strings.Contains(stdout, "awaiting_approval") || !strings.Contains(stdout, "phase=starting") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
}
