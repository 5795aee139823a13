package sqlite

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// BenchmarkKeyStates100k measures KeyStates over 100,000 keys, each with a
// current credential and a revoked older generation, every tenth with an
// active rotation and every fifth with a finished one: `rekey plan` must
// cover 100k keys in at most a second, this call included.
func BenchmarkKeyStates100k(b *testing.B) {
	const keys = 100_000
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	populate(b, s, keys)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		states, err := s.KeyStates(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(states) != keys {
			b.Fatalf("%d key states, want %d", len(states), keys)
		}
	}
	// Wall time suffers when the machine is shared; CPU time per call is
	// the figure that does not.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// populate bulk-loads the benchmark's rows in one transaction, straight into
// the schema: going through Save would only measure 100k commits.
func populate(b *testing.B, s *sqlstore.Store, keys int) {
	b.Helper()
	start := time.Now()
	ctx := b.Context()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	cred, err := tx.PrepareContext(ctx, `INSERT INTO credentials
		(key, generation, name, issuer_id, fingerprint, state, rotation_id, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, '', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	rot, err := tx.PrepareContext(ctx, `INSERT INTO rotations
		(id, key, trigger_kind, mode, phase, next_attempt_at, created_at, updated_at, finished)
		VALUES (?, ?, 'age', 'staged', ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := sqlstore.TimeText(time.Now())
	for i := range keys {
		key := fmt.Sprintf("team-%03d/service-%06d", i%500, i)
		for gen, state := range []rotator.CredentialState{rotator.CredRevoked, rotator.CredCurrent} {
			name := fmt.Sprintf("%s-v%d", key, gen+1)
			revoked := ""
			if state == rotator.CredRevoked {
				revoked = now
			}
			if _, err := cred.ExecContext(ctx, key, gen+1, name, "id-"+name, rotator.Fingerprint(name), string(state), now, revoked); err != nil {
				b.Fatal(err)
			}
		}
		if i%5 == 0 {
			if _, err := rot.ExecContext(ctx, "done-"+key, key, string(rotator.PhaseDone), now, now, now, 1); err != nil {
				b.Fatal(err)
			}
		}
		if i%10 == 0 {
			if _, err := rot.ExecContext(ctx, "active-"+key, key, string(rotator.PhaseDraining), now, now, now, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d keys in %s", keys, time.Since(start).Round(time.Millisecond))
}
