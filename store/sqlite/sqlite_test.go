package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/store/sqlstore/storetest"
)

func open(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rotator.Store {
		return open(t, filepath.Join(t.TempDir(), "rekey.db"))
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rotator.Store { return open(t, Memory) })
}

// TestSharedFile runs the multi-daemon tests through two separate *sql.DB
// handles on one file, as two rekey processes would.
func TestSharedFile(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (rotator.Store, rotator.Store) {
		path := filepath.Join(t.TempDir(), "rekey.db")
		return open(t, path), open(t, path)
	})
}

func TestFileModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "nested", "rekey.db")
	s := open(t, path)
	storetest.RecordRun(t, s, "k", storetest.NewSecret()) // WAL and SHM exist once written
	tests := map[string]struct {
		path string
		want os.FileMode
	}{
		"directory": {filepath.Dir(path), 0o700 | os.ModeDir},
		"database":  {path, 0o600},
		"wal":       {path + "-wal", 0o600},
		"shm":       {path + "-shm", 0o600},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != tc.want {
				t.Errorf("mode of %s = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	var mode string
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
}

func TestOpenRefusesURIs(t *testing.T) {
	for name, path := range map[string]string{
		"empty":  "",
		"uri":    "file:rekey.db?mode=ro",
		"query":  filepath.Join(t.TempDir(), "a?b.db"),
		"anchor": filepath.Join(t.TempDir(), "a#b.db"),
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := Open(t.Context(), path); err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", path)
			}
		})
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rekey.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RecordRun(t, s, "k", storetest.NewSecret())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	var n, max int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != sqlstore.MigrationCount() || max != sqlstore.SchemaVersion() {
		t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d", n, max, sqlstore.MigrationCount(), sqlstore.SchemaVersion())
	}
	if _, err := s.GetRotation(t.Context(), "rot-k"); err != nil {
		t.Errorf("data lost on reopen: %v", err)
	}
	if problems, err := s.VerifyAudit(t.Context()); err != nil || len(problems) > 0 {
		t.Errorf("audit after reopen: %v %v", problems, err)
	}
}

// TestUpgradesOlderSchema rewinds a database to schema version 1 and
// reopens it: the missing migrations run, once, and the data stays.
func TestUpgradesOlderSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rekey.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RecordRun(t, s, "k", storetest.NewSecret())
	for _, stmt := range []string{`DROP TABLE adapter_state`, `DROP TABLE inbound_events`, `DROP TABLE replay_guard`, `DROP TABLE outbox`, `ALTER TABLE rotations DROP COLUMN request`, `ALTER TABLE rotations DROP COLUMN contain`, `ALTER TABLE rotations DROP COLUMN held_since`, `DROP TABLE api_tokens`, `DROP TABLE members`, `DROP INDEX rotations_lease_owner`, `ALTER TABLE rotations DROP COLUMN lease_epoch`, `DROP TABLE consumers`, `ALTER TABLE rotations DROP COLUMN lifecycle`, `ALTER TABLE rotations DROP COLUMN waiting`, `DROP INDEX credentials_live`, `DROP INDEX credentials_previous`, `DROP INDEX credentials_minted`, `DROP INDEX rotations_finished`, `DROP INDEX audit_events_counted`, `DELETE FROM schema_migrations WHERE version > 1`} {
		if _, err := s.DB().ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	if err := s.PutState(t.Context(), "slack", "rot-k", "1.2"); err != nil {
		t.Fatalf("the upgraded schema lacks adapter_state: %v", err)
	}
	var versions int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != sqlstore.MigrationCount() {
		t.Errorf("schema_migrations has %d rows (%v), want %d", versions, err, sqlstore.MigrationCount())
	}
	if _, err := s.GetRotation(t.Context(), "rot-k"); err != nil {
		t.Errorf("data lost in the upgrade: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rekey.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', 0)`,
		sqlstore.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Fatalf("error %v does not wrap ErrSchemaTooNew", err)
	}
	t.Log(err)
}

// TestNoPlaintextOnDisk records a whole rotation whose new secret the store
// only ever saw as a fingerprint, then searches every byte SQLite wrote —
// database, WAL, shared memory — for the secret.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	secret := storetest.NewSecret()
	storetest.RecordRun(t, s, "billing", secret)
	search := func(when string) {
		files, err := filepath.Glob(filepath.Join(dir, "rekey.db*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no database files: %v", err)
		}
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		if bytes.Contains(all, []byte(secret.Reveal())) {
			t.Fatalf("%s: the plaintext secret is in the database files", when)
		}
		// The positive control: what the store does keep is found.
		if !bytes.Contains(all, []byte(secret.Fingerprint())) {
			t.Fatalf("%s: the fingerprint is not in the database files either: the search proves nothing", when)
		}
	}
	search("before checkpoint")
	if err := s.Close(); err != nil { // the last connection checkpoints the WAL into the file
		t.Fatal(err)
	}
	search("after checkpoint")
}

// TestCommitSurvivesSIGKILL commits in a child process that then kills
// itself with SIGKILL, as a crash would, and finds the commit on reopen.
func TestCommitSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("REKEY_SQLITE_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "rekey.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCommitSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "REKEY_SQLITE_CRASH_CHILD="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
	}
	s := open(t, path)
	r, err := s.GetRotation(t.Context(), "rot-crash")
	if err != nil {
		t.Fatalf("the committed rotation is gone: %v", err)
	}
	if r.Phase != rotator.PhaseStaging || r.Version != 1 {
		t.Errorf("rotation after crash: phase %s version %d, want staging 1", r.Phase, r.Version)
	}
	if problems, err := s.VerifyAudit(t.Context()); err != nil || len(problems) > 0 {
		t.Errorf("audit after crash: %v %v", problems, err)
	}
}

func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		os.Exit(3)
	}
	now := time.Now()
	r := &rotator.Rotation{ID: "rot-crash", Key: "k", Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged,
		Phase: rotator.PhaseMinting, CreatedAt: now, UpdatedAt: now}
	ev := rotator.AuditEvent{At: now, RotationID: r.ID, Key: "k", Actor: "test", Action: "rotation.started"}
	if err := s.CreateRotation(ctx, rotator.Commit{Rotation: r, Audit: []rotator.AuditEvent{ev}}); err != nil {
		os.Exit(4)
	}
	r.Phase = rotator.PhaseStaging
	ev.Action = "rotation.phase"
	if err := s.Save(ctx, rotator.Commit{Rotation: r, Audit: []rotator.AuditEvent{ev}}); err != nil {
		os.Exit(5)
	}
	// No Close, no checkpoint: die with the commit only in the WAL.
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestOlderBinaryRunsAgainstAdditiveSchema plays the older daemon of a
// rolling upgrade: a newer rekey migrated the database with an additive
// migration (a new column with a default, a new table) that this build does
// not know. This build still opens it and records a whole rotation; a newer
// migration that is not additive makes it refuse.
func TestOlderBinaryRunsAgainstAdditiveSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rekey.db")
	s := open(t, path)
	next := sqlstore.SchemaVersion() + 1
	for _, stmt := range []string{
		`ALTER TABLE rotations ADD COLUMN from_the_future TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE future_things (id TEXT NOT NULL PRIMARY KEY)`,
		fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'additive, from the future', '')`, next),
		fmt.Sprintf(`INSERT INTO schema_compat (version, additive) VALUES (%d, 1)`, next),
	} {
		if _, err := s.DB().ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	storetest.RecordRun(t, s, "k", storetest.NewSecret())
	if problems, err := s.VerifyAudit(t.Context()); err != nil || len(problems) > 0 {
		t.Errorf("audit: %v %v", problems, err)
	}
	if _, err := s.DB().ExecContext(t.Context(), fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'breaking, from the future', '')`, next+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(t.Context(), path)
	if err == nil {
		s2.Close()
		t.Fatal("opened a database with a newer migration that is not additive")
	}
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Fatalf("error %v does not wrap ErrSchemaTooNew", err)
	}
}
