package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
)

// auditEnv is a real SQLite database with an audit trail, the daemon's
// checkpoints of it, and a configuration to verify it with.
type auditEnv struct {
	dir, db, cfg, checkpoints, pub string
	keys                           rotator.AuditKeys
}

const (
	keyA = "audit-key-a-0123456789abcdefghijklmnopqrstuvwxyz"
	keyB = "audit-key-b-0123456789abcdefghijklmnopqrstuvwxyz"
)

// newAuditEnv writes a configuration whose audit section is auditYAML
// (environment variables set by the caller) and a signing key.
func newAuditEnv(t *testing.T, auditYAML string) *auditEnv {
	t.Helper()
	dir := t.TempDir()
	e := &auditEnv{dir: dir, db: filepath.Join(dir, "rekey.db"), cfg: filepath.Join(dir, "rekey.yaml"),
		checkpoints: filepath.Join(dir, "checkpoints"), pub: filepath.Join(dir, "audit.pub")}
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(sk)
	skFile := filepath.Join(dir, "signing.pem")
	if err := os.WriteFile(skFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(t, auditYAML, skFile)
	// The verifier holds the public key only, from `rekey audit pubkey`.
	code, out, errOut := rekey(t, "audit", "pubkey", "-c", e.cfg)
	if code != 0 {
		t.Fatalf("audit pubkey: %d %s", code, errOut)
	}
	if err := os.WriteFile(e.pub, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *auditEnv) writeConfig(t *testing.T, auditYAML, skFile string) {
	t.Helper()
	cfg := fmt.Sprintf(`store: {type: sqlite, path: %q}
issuers: [{name: demo, type: random, ledger: %q}]
sinks: [{name: file, type: file, dir: %q}]
audit:
  checkpoints_dir: %q
  signing_key_file: %q
%s`, e.db, filepath.Join(e.dir, "ledger.json"), filepath.Join(e.dir, "sink"), e.checkpoints, skFile, auditYAML)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// appendEvents appends events to the trail as the daemon would, sealed with
// keys, and writes a checkpoint after them.
func (e *auditEnv) appendEvents(t *testing.T, keys rotator.AuditKeys, evs ...rotator.AuditEvent) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetAuditKeys(keys)
	for _, ev := range evs {
		if err := s.Save(ctx, rotator.Commit{Audit: []rotator.AuditEvent{ev}}); err != nil {
			t.Fatal(err)
		}
	}
	sk := e.signingKey(t)
	w, err := auditlog.NewWriter(e.checkpoints, sk, s.AuditHead, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Write(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *auditEnv) signingKey(t *testing.T) ed25519.PrivateKey {
	b, err := os.ReadFile(filepath.Join(e.dir, "signing.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := auditlog.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func rekey(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// history is an emergency rotation and a decommission, as the attacker
// finds them.
func history(at time.Time) []rotator.AuditEvent {
	ev := func(i int, rot, key, actor, action string, d map[string]string) rotator.AuditEvent {
		return rotator.AuditEvent{At: at.Add(time.Duration(i) * time.Second), RotationID: rot, Key: key, Actor: actor, Action: action, Detail: d}
	}
	return []rotator.AuditEvent{
		ev(0, "", "", "rekey", "daemon.started", nil),
		ev(1, "rot-1", "payments", "mallory@example.com", "rotation.started", map[string]string{"trigger": "exposure", "mode": "emergency"}),
		ev(2, "rot-1", "payments", "rekey", "credential.revoked", map[string]string{"generation": "1"}),
		ev(3, "rot-1", "payments", "rekey", "rotation.done", nil),
		ev(4, "rot-2", "billing", "mallory@example.com", "key.decommissioned", map[string]string{"revoked": "2"}),
		ev(5, "", "", "rekey", "daemon.stopped", nil),
	}
}

// rewrite is the attack: on the database itself, change the emergency
// rotation's actor, delete the decommission event, renumber and recompute
// the chain from the first change with sealer, and move the head.
func rewrite(t *testing.T, db string, sealer rotator.AuditKeys) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sql := s.DB()
	var editSeq, delSeq int64
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sql.QueryRow(`SELECT seq FROM audit_events WHERE action = 'rotation.started' AND actor = 'mallory@example.com'`).Scan(&editSeq))
	must(sql.QueryRow(`SELECT seq FROM audit_events WHERE action = 'key.decommissioned'`).Scan(&delSeq))
	_, err = sql.Exec(`UPDATE audit_events SET actor = 'alice@example.com' WHERE seq = ?`, editSeq)
	must(err)
	_, err = sql.Exec(`DELETE FROM audit_events WHERE seq = ?`, delSeq)
	must(err)
	_, err = sql.Exec(`UPDATE audit_events SET seq = seq - 1 WHERE seq > ?`, delSeq)
	must(err)
	evs, err := s.Audit(ctx, rotator.AuditFilter{})
	must(err)
	for i := range evs {
		if evs[i].Seq < editSeq {
			continue
		}
		evs[i].PrevHash = evs[i-1].Hash
		evs[i].Hash = sealer.Seal(evs[i].PrevHash, evs[i])
		_, err = sql.Exec(`UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, evs[i].PrevHash, evs[i].Hash, evs[i].Seq)
		must(err)
	}
	last := evs[len(evs)-1]
	_, err = sql.Exec(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash)
	must(err)
}

func TestAuditRewriteAttackIsDetected(t *testing.T) {
	t.Setenv("TEST_AUDIT_KEY_A", keyA)
	t.Setenv("TEST_AUDIT_KEY_B", keyB)
	unkeyed := rotator.AuditKeys{}
	keyedA := rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": rotator.NewSecret(keyA)}}
	keyedB := rotator.AuditKeys{Current: "b", Keys: map[string]rotator.Secret{"a": rotator.NewSecret(keyA), "b": rotator.NewSecret(keyB)}}
	guessed := rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": rotator.NewSecret(strings.Repeat("g", 40))}}
	const keyedYAML = "  key_id: a\n  key_env: TEST_AUDIT_KEY_A\n"
	const rotatedYAML = "  key_id: b\n  key_env: TEST_AUDIT_KEY_B\n  keys: [{id: a, key_env: TEST_AUDIT_KEY_A}]\n"
	at := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)

	tests := map[string]struct {
		yaml string
		// seal: the sealers the daemon used, one per half of the history
		// (a key rotation in between when they differ).
		seal [2]rotator.AuditKeys
		// attacker recomputes the chain with this.
		attacker rotator.AuditKeys
		// wantPlain: what verify without checkpoints finds (0: nothing —
		// the attack the issue reports).
		wantPlain, wantSeq int64
		want               string
	}{
		"unkeyed chain recomputed unkeyed": {
			yaml: "", seal: [2]rotator.AuditKeys{unkeyed, unkeyed}, attacker: unkeyed,
			wantPlain: 0, wantSeq: 1, want: "do not reproduce checkpoint"},
		"keyed chain recomputed unkeyed": {
			yaml: keyedYAML, seal: [2]rotator.AuditKeys{keyedA, keyedA}, attacker: unkeyed,
			wantPlain: 2, wantSeq: 2, want: "unkeyed event after keyed events from 1"},
		"keyed chain recomputed with a guessed key": {
			yaml: keyedYAML, seal: [2]rotator.AuditKeys{keyedA, keyedA}, attacker: guessed,
			wantPlain: 2, wantSeq: 2, want: `MAC mismatch under audit key "a"`},
		"old database (unkeyed) gets a key, recomputed unkeyed": {
			yaml: keyedYAML, seal: [2]rotator.AuditKeys{unkeyed, keyedA}, attacker: unkeyed,
			wantPlain: 0, wantSeq: 1, want: "do not reproduce checkpoint"},
		"across an audit key rotation, recomputed with a guessed key": {
			yaml: rotatedYAML, seal: [2]rotator.AuditKeys{keyedA, keyedB}, attacker: guessed,
			wantPlain: 2, wantSeq: 2, want: `MAC mismatch under audit key "a"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newAuditEnv(t, tc.yaml)
			h := history(at)
			e.appendEvents(t, tc.seal[0], h[:3]...)
			e.appendEvents(t, tc.seal[1], h[3:]...)

			code, out, errOut := rekey(t, "audit", "verify", "-c", e.cfg, "--checkpoints", e.checkpoints, "--pubkey", e.pub)
			if code != 0 || !strings.Contains(out, "audit trail intact") {
				t.Fatalf("before the attack: exit %d\n%s%s", code, out, errOut)
			}
			if tc.yaml == "" && !strings.Contains(out, "unkeyed: detects accidents, not an attacker with database access") {
				t.Errorf("an unkeyed trail is not called so: %s", out)
			}

			rewrite(t, e.db, tc.attacker)

			code, out, errOut = rekey(t, "audit", "verify", "-c", e.cfg)
			switch {
			case tc.wantPlain == 0 && code != 0:
				t.Errorf("without checkpoints the chain was expected to verify (the reported attack); exit %d\n%s%s", code, out, errOut)
			case tc.wantPlain == 0 && tc.yaml != "" && !strings.Contains(errOut, "WARNING: the last event (5) is unkeyed"):
				t.Errorf("a keyed configuration with an unkeyed head is not flagged:\n%s", errOut)
			case tc.wantPlain != 0 && (code != exitAudit || !strings.Contains(errOut, fmt.Sprintf("first at event %d", tc.wantPlain))):
				t.Errorf("without checkpoints: exit %d, want %d naming event %d\n%s%s", code, exitAudit, tc.wantPlain, out, errOut)
			}

			code, out, errOut = rekey(t, "audit", "verify", "-c", e.cfg, "--checkpoints", e.checkpoints, "--pubkey", e.pub)
			if code != exitAudit {
				t.Fatalf("with checkpoints: exit %d, want %d\n%s%s", code, exitAudit, out, errOut)
			}
			if !strings.Contains(errOut, fmt.Sprintf("first at event %d", tc.wantSeq)) || !strings.Contains(out, tc.want) {
				t.Errorf("with checkpoints: want event %d, %q in\n%s%s", tc.wantSeq, tc.want, out, errOut)
			}
		})
	}
}

// TestAuditDeletedTailIsDetected: deleting the last events and moving the
// head back leaves a chain that verifies on its own; the checkpoint says
// the head was further.
func TestAuditDeletedTailIsDetected(t *testing.T) {
	e := newAuditEnv(t, "")
	h := history(time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC))
	e.appendEvents(t, rotator.AuditKeys{}, h...)
	s, err := sqlite.Open(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	var hash string
	_ = db.QueryRow(`SELECT hash FROM audit_events WHERE seq = 4`).Scan(&hash)
	for _, q := range []string{`DELETE FROM audit_events WHERE seq > 4`, `UPDATE audit_head SET seq = 4, hash = '` + hash + `' WHERE id = 1`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if code, out, _ := rekey(t, "audit", "verify", "-c", e.cfg); code != 0 {
		t.Fatalf("the chain alone was expected to verify: %d %s", code, out)
	}
	code, out, errOut := rekey(t, "audit", "verify", "-c", e.cfg, "--checkpoints", e.checkpoints, "--pubkey", e.pub)
	if code != exitAudit || !strings.Contains(out, "the trail ends at event 4") || !strings.Contains(errOut, "first at event 5") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestAuditExportResumes(t *testing.T) {
	e := newAuditEnv(t, "")
	h := history(time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC))
	e.appendEvents(t, rotator.AuditKeys{}, h[:4]...)
	out := filepath.Join(e.dir, "audit.jsonl")
	if code, _, errOut := rekey(t, "audit", "export", "-c", e.cfg, "--out", out); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	e.appendEvents(t, rotator.AuditKeys{}, h[4:]...)
	if code, _, errOut := rekey(t, "audit", "export", "-c", e.cfg, "--out", out); code != 0 || !strings.Contains(errOut, "exported events 5..6") {
		t.Fatalf("second export: %s", errOut)
	}
	b, _ := os.ReadFile(out)
	if n := strings.Count(string(b), "\n"); n != 6 {
		t.Fatalf("%d lines, want 6:\n%s", n, b)
	}
	code, stdout, _ := rekey(t, "audit", "export", "-c", e.cfg, "--since", "5")
	if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"seq":6`) {
		t.Fatalf("export to stdout: %d %s", code, stdout)
	}
}
