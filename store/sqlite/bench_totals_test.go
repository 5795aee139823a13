package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// BenchmarkScrapeCounters10k measures one scrape of the counters read from
// the store (rekey_credentials_*_total, rekey_watch_alerts_total,
// rekey_rotations_total) over 10,000 keys with three years of quarterly
// rotations each: 12 generations, 11 finished rotations and 3 audit events
// per rotation (a watch alert for every tenth key). Each iteration is a full
// registry Gather past the counters' two-second cache, so the store is read
// every time; with and without the key label.
func BenchmarkScrapeCounters10k(b *testing.B) {
	const keys, generations = 10_000, 12
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	populateHistory(b, s, keys, generations)
	for _, perKey := range []bool{true, false} {
		b.Run(fmt.Sprintf("per_key=%v", perKey), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			eng, err := rotator.New(rotator.Options{Store: s, Clock: &steppingClock{t: time.Now(), step: 3 * time.Second},
				Metrics: rotator.NewMetricsWith(reg, rotator.MetricsOptions{PerKey: perKey})})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close(time.Second)
			want := 1
			if perKey {
				want = keys
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				mfs, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				var minted *float64
				for _, mf := range mfs {
					if mf.GetName() == "rekey_credentials_minted_total" {
						if len(mf.GetMetric()) != want {
							b.Fatalf("%d minted series, want %d", len(mf.GetMetric()), want)
						}
						v := mf.GetMetric()[0].GetCounter().GetValue()
						minted = &v
					}
				}
				if minted == nil || *minted < generations {
					b.Fatalf("minted %v, want at least %d", minted, generations)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// steppingClock moves on by step at every reading: every scrape is past
// the counters' cache.
type steppingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// populateHistory bulk-loads keys with generations credentials each (all
// revoked but the last), a finished rotation per later generation with
// three audit events, and a watch alert for every tenth key.
func populateHistory(b *testing.B, s *sqlstore.Store, keys, generations int) {
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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	rot, err := tx.PrepareContext(ctx, `INSERT INTO rotations
		(id, key, trigger_kind, mode, phase, next_attempt_at, created_at, updated_at, finished)
		VALUES (?, ?, ?, 'staged', ?, ?, ?, ?, 1)`)
	if err != nil {
		b.Fatal(err)
	}
	audit, err := tx.PrepareContext(ctx, `INSERT INTO audit_events
		(seq, at, rotation_id, key, actor, action, phase, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, 'rekey', ?, '', '{}', '', '')`)
	if err != nil {
		b.Fatal(err)
	}
	now := sqlstore.TimeText(time.Now())
	seq := 0
	for i := range keys {
		key := fmt.Sprintf("team-%03d/service-%06d", i%500, i)
		for gen := 1; gen <= generations; gen++ {
			name := fmt.Sprintf("%s-v%d", key, gen)
			id := fmt.Sprintf("rot-%s-%d", key, gen)
			state, revoked := string(rotator.CredRevoked), now
			if gen == generations {
				state, revoked = string(rotator.CredCurrent), ""
			}
			if _, err := cred.ExecContext(ctx, key, gen, name, "id-"+name, rotator.Fingerprint(name), state, id, now, revoked); err != nil {
				b.Fatal(err)
			}
			if gen == 1 {
				continue
			}
			trigger, phase := "age", string(rotator.PhaseDone)
			if gen%4 == 0 {
				trigger = "manual"
			}
			if gen%7 == 0 {
				phase = string(rotator.PhaseFailed)
			}
			if _, err := rot.ExecContext(ctx, id, key, trigger, phase, now, now, now); err != nil {
				b.Fatal(err)
			}
			actions := []string{"rotation.started", "phase.entered", "credential.revoked"}
			if i%10 == 0 && gen == generations {
				actions = append(actions, "watch.alert")
			}
			for _, action := range actions {
				seq++
				if _, err := audit.ExecContext(ctx, seq, now, id, key, action); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d keys, %d credentials, %d audit events in %s", keys, keys*generations, seq, time.Since(start).Round(time.Millisecond))
}
