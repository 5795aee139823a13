package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/rotator"
)

// runUntilReady runs the daemon on cfg until it accepts, then stops it.
func runUntilReady(t *testing.T, cfgPath string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: cfgPath, Logs: logs, Ready: ready}) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon exited: %v\n%s", err, logs)
	case <-time.After(time.Minute):
		t.Fatalf("daemon not ready after a minute\n%s", logs)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v\n%s", err, logs)
		}
	case <-time.After(time.Minute):
		t.Fatalf("daemon did not stop\n%s", logs)
	}
	return logs.String()
}

// The daemon seals its events with the audit key and writes signed
// checkpoints (at start, and at shutdown when the head moved) that a
// verifier holding only the public key accepts.
func TestDaemonSealsAndCheckpointsTheAuditTrail(t *testing.T) {
	dir := t.TempDir()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	t.Setenv("TEST_AUDIT_KEY", strings.Repeat("k", 32))
	t.Setenv("TEST_AUDIT_SIGNING_KEY", base64.StdEncoding.EncodeToString(sk.Seed()))
	cps := filepath.Join(dir, "checkpoints")
	common := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {type: sqlite, path: %q}
issuers: [{name: demo, type: random, ledger: %q}]
sinks: [{name: files, type: file, dir: %q}]
keys: [{name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}]
`, filepath.Join(dir, "rekey.db"), filepath.Join(dir, "ledger.json"), filepath.Join(dir, "secrets"))
	cfgPath := filepath.Join(dir, "rekey.yaml")

	// First unkeyed, as the embedded default: it works and says so.
	if err := os.WriteFile(cfgPath, []byte(common), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := runUntilReady(t, cfgPath)
	for _, want := range []string{"the audit chain is unkeyed", "no signed checkpoints are written"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// Then with a key and checkpoints.
	keyed := common + fmt.Sprintf(`audit: {key_id: k1, key_env: TEST_AUDIT_KEY, checkpoints_dir: %q, signing_key_env: TEST_AUDIT_SIGNING_KEY}
`, cps)
	if err := os.WriteFile(cfgPath, []byte(keyed), 0o600); err != nil {
		t.Fatal(err)
	}
	logs = runUntilReady(t, cfgPath)
	if strings.Contains(logs, "unkeyed") || !strings.Contains(logs, "audit checkpoint written") {
		t.Errorf("keyed daemon's log:\n%s", logs)
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(context.Background(), cfg, NewLogger(&syncBuffer{}, "error"), BuildOptions{EnqueueOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Record one event with the key, as the CLI would, and check the lot.
	if err := d.Store.Save(context.Background(), rotator.Commit{Audit: []rotator.AuditEvent{{At: time.Now(), Actor: "test", Action: "test.event"}}}); err != nil {
		t.Fatal(err)
	}
	if problems, err := d.Store.VerifyAudit(context.Background()); err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", problems, err)
	}
	_, hash, _ := d.Store.AuditHead(context.Background())
	if rotator.AuditHashKeyID(hash) != "k1" {
		t.Errorf("last event %q not sealed with k1", hash)
	}
	problems, err := d.VerifyAuditCheckpoints(context.Background(), cps, sk.Public().(ed25519.PublicKey))
	if err != nil || len(problems) > 0 {
		t.Fatalf("verify against checkpoints: %v %v", problems, err)
	}
	got, _, _ := auditlog.ReadDir(cps, sk.Public().(ed25519.PublicKey))
	if len(got) == 0 {
		t.Fatal("no checkpoint written")
	}
}
