package auditlog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/rotator"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func events(n int) []rotator.AuditEvent {
	var evs []rotator.AuditEvent
	prev := ""
	for i := range n {
		e := rotator.AuditEvent{Seq: int64(i + 1), At: time.Unix(int64(i), 0), Action: "a"}
		e.PrevHash = prev
		e.Hash = rotator.AuditHash(prev, e)
		prev = e.Hash
		evs = append(evs, e)
	}
	return evs
}

// writeAt writes a checkpoint of evs' head (the first n events).
func writeAt(t *testing.T, w *auditlog.Writer, head *[]rotator.AuditEvent, evs []rotator.AuditEvent, n int) {
	t.Helper()
	*head = evs[:n]
	if _, wrote, err := w.Write(context.Background()); err != nil || !wrote {
		t.Fatalf("write checkpoint at %d: wrote %v, %v", n, wrote, err)
	}
}

func newWriter(t *testing.T, dir string, sk ed25519.PrivateKey, head *[]rotator.AuditEvent) *auditlog.Writer {
	t.Helper()
	w, err := auditlog.NewWriter(dir, sk, func(context.Context) (int64, string, error) {
		if len(*head) == 0 {
			return 0, "", nil
		}
		last := (*head)[len(*head)-1]
		return last.Seq, last.Hash, nil
	}, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestCheckpoints(t *testing.T) {
	sk := newKey(t)
	pub := sk.Public().(ed25519.PublicKey)
	orig := events(6)
	tests := map[string]struct {
		trail func() []rotator.AuditEvent
		seq   int64
		want  string
	}{
		"intact":         {trail: func() []rotator.AuditEvent { return orig }},
		"intact, longer": {trail: func() []rotator.AuditEvent { return append(append([]rotator.AuditEvent{}, orig...), events(8)[6:]...) }},
		"event edited, chain recomputed": {trail: func() []rotator.AuditEvent {
			evs := append([]rotator.AuditEvent{}, orig...)
			evs[3].Actor = "mallory"
			for i := 3; i < len(evs); i++ {
				evs[i].PrevHash = evs[i-1].Hash
				evs[i].Hash = rotator.AuditHash(evs[i].PrevHash, evs[i])
			}
			return evs
		}, seq: 4, want: "events 4..6 do not reproduce checkpoint"},
		"last events deleted": {trail: func() []rotator.AuditEvent { return orig[:4] }, seq: 5, want: "the trail ends at event 4"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var head []rotator.AuditEvent
			w := newWriter(t, dir, sk, &head)
			writeAt(t, w, &head, orig, 3)
			writeAt(t, w, &head, orig, 6)
			if _, wrote, _ := w.Write(context.Background()); wrote {
				t.Fatal("wrote a second checkpoint of an unchanged head")
			}
			cps, problems, err := auditlog.ReadDir(dir, pub)
			if err != nil || len(problems) > 0 || len(cps) != 2 {
				t.Fatalf("read: %d checkpoints, %v, %v", len(cps), problems, err)
			}
			got := auditlog.Check(tc.trail(), cps)
			if tc.seq == 0 {
				if len(got) > 0 {
					t.Fatalf("problems: %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Seq != tc.seq || !strings.Contains(got[0].Problem, tc.want) {
				t.Fatalf("problems = %v, want event %d: %q", got, tc.seq, tc.want)
			}
		})
	}
}

func TestCheckpointSignature(t *testing.T) {
	sk := newKey(t)
	dir := t.TempDir()
	head := events(2)
	w := newWriter(t, dir, sk, &head)
	c, _, err := w.Write(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != "" || c.Seq != 2 {
		t.Fatalf("checkpoint %+v", c)
	}
	// Another key does not verify it.
	if _, problems, _ := auditlog.ReadDir(dir, newKey(t).Public().(ed25519.PublicKey)); len(problems) != 1 || !strings.Contains(problems[0].Problem, "bad signature") {
		t.Fatalf("problems with the wrong key: %v", problems)
	}
	// A checkpoint moved back to match a shortened trail no longer verifies.
	path := filepath.Join(dir, c.File)
	b, _ := os.ReadFile(path)
	var edited auditlog.Checkpoint
	_ = json.Unmarshal(b, &edited)
	edited.Seq = 1
	b, _ = json.Marshal(edited)
	_ = os.Chmod(path, 0o600)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cps, problems, _ := auditlog.ReadDir(dir, sk.Public().(ed25519.PublicKey))
	if len(cps) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Problem, c.File) {
		t.Fatalf("edited checkpoint: %v %v", cps, problems)
	}
}

func TestKeysParse(t *testing.T) {
	sk := newKey(t)
	pemPub := auditlog.MarshalPublicKey(sk.Public().(ed25519.PublicKey))
	pub, err := auditlog.ParsePublicKey(pemPub)
	if err != nil || !pub.Equal(sk.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := auditlog.ParsePrivateKey([]byte(bad)); err == nil {
			t.Errorf("ParsePrivateKey(%q) succeeded", bad)
		}
	}
}

func TestExportResumes(t *testing.T) {
	evs := events(2500)
	page := func(_ context.Context, after int64, limit int) ([]rotator.AuditEvent, error) {
		lo := min(int(after), len(evs))
		return evs[lo:min(lo+limit, len(evs))], nil
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if n, err := auditlog.LastExported(path); err != nil || n != 0 {
		t.Fatalf("missing file: %d %v", n, err)
	}
	f, _ := os.Create(path)
	last, err := auditlog.Export(context.Background(), f, page, 2400)
	f.Close()
	if err != nil || last != 2500 {
		t.Fatalf("export: %d %v", last, err)
	}
	if n, err := auditlog.LastExported(path); err != nil || n != 2500 {
		t.Fatalf("last exported: %d %v", n, err)
	}
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	var first auditlog.Line
	if err := json.Unmarshal(lines[0], &first); err != nil || len(lines) != 100 || first.Seq != 2401 || first.Hash != evs[2400].Hash {
		t.Fatalf("%d lines, first %+v %v", len(lines), first, err)
	}
	// An interrupted export is not appended to.
	_ = os.WriteFile(path, append(b, []byte(`{"seq":25`)...), 0o600)
	if _, err := auditlog.LastExported(path); err == nil || !strings.Contains(err.Error(), "incomplete line") {
		t.Fatalf("partial line: %v", err)
	}
}

// The writer checkpoints at start, on each tick when the head moved, and at
// Stop.
func TestWriterPeriodicAndAtStop(t *testing.T) {
	dir := t.TempDir()
	sk := newKey(t)
	evs := events(6)
	var mu sync.Mutex
	n := 3
	head := func(context.Context) (int64, string, error) {
		mu.Lock()
		defer mu.Unlock()
		return evs[n-1].Seq, evs[n-1].Hash, nil
	}
	w, err := auditlog.NewWriter(dir, sk, head, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	files := func() int {
		cps, problems, err := auditlog.ReadDir(dir, sk.Public().(ed25519.PublicKey))
		if err != nil || len(problems) > 0 {
			t.Fatalf("read: %v %v", problems, err)
		}
		return len(cps)
	}
	waitFor := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); files() < want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d checkpoints after 10s, want %d", files(), want)
			}
			time.Sleep(5 * time.Millisecond) // polling a directory, with a deadline
		}
	}
	w.Start(context.Background())
	waitFor(1)
	mu.Lock()
	n = 5
	mu.Unlock()
	waitFor(2)
	mu.Lock()
	n = 6
	mu.Unlock()
	w.Stop()
	if got := files(); got != 3 {
		t.Fatalf("%d checkpoints after Stop, want 3 (heads 3, 5, 6)", got)
	}
	cps, _, _ := auditlog.ReadDir(dir, sk.Public().(ed25519.PublicKey))
	if problems := auditlog.Check(evs, cps); len(problems) > 0 {
		t.Fatal(problems)
	}
}
