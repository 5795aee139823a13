package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// BenchmarkScrapeCounters measures one scrape of the counters read from the
// store (rekey_credentials_*_total, rekey_watch_alerts_total,
// rekey_rotations_total) over keys with three years of quarterly rotations
// each: 12 generations, 11 finished rotations and 3 audit events per
// rotation (a watch alert for every tenth key). Each iteration is a full
// registry Gather past the counters' two-second cache, so the store is read
// every time; with and without the key label.
func BenchmarkScrapeCounters(b *testing.B, s *sqlstore.Store, keys int) {
	const generations = 12
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
			for b.Loop() {
				mfs, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				var minted float64
				for _, mf := range mfs {
					if mf.GetName() == "rekey_credentials_minted_total" {
						if len(mf.GetMetric()) != want {
							b.Fatalf("%d minted series, want %d", len(mf.GetMetric()), want)
						}
						minted = mf.GetMetric()[0].GetCounter().GetValue()
					}
				}
				if minted < generations {
					b.Fatalf("minted %g, want at least %d", minted, generations)
				}
			}
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
// three audit events, and a watch alert for every tenth key — straight
// into the schema, in multi-row INSERTs of one transaction.
func populateHistory(b *testing.B, s *sqlstore.Store, keys, generations int) {
	b.Helper()
	start := time.Now()
	ctx := b.Context()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	type table struct {
		head string
		cols int
		rows [][]any
	}
	creds := &table{head: `INSERT INTO credentials (key, generation, name, issuer_id, fingerprint, state, rotation_id, created_at, revoked_at) VALUES `, cols: 9}
	rots := &table{head: `INSERT INTO rotations (id, key, trigger_kind, mode, phase, next_attempt_at, created_at, updated_at, finished) VALUES `, cols: 9}
	audit := &table{head: `INSERT INTO audit_events (seq, at, rotation_id, key, actor, action, phase, detail, prev_hash, hash) VALUES `, cols: 10}
	flush := func(t *table) {
		if len(t.rows) == 0 {
			return
		}
		var q strings.Builder
		q.WriteString(t.head)
		args := make([]any, 0, t.cols*len(t.rows))
		for i, r := range t.rows {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + strings.TrimSuffix(strings.Repeat("?, ", t.cols), ", ") + ")")
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, s.Dialect().Rebind(q.String()), args...); err != nil {
			b.Fatal(err)
		}
		t.rows = t.rows[:0]
	}
	add := func(t *table, row ...any) {
		if t.rows = append(t.rows, row); len(t.rows) == 500 {
			flush(t)
		}
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
			add(creds, key, gen, name, "id-"+name, rotator.Fingerprint(name), state, id, now, revoked)
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
			add(rots, id, key, trigger, "staged", phase, now, now, now, 1)
			actions := []string{"rotation.started", "phase.entered", "credential.revoked"}
			if i%10 == 0 && gen == generations {
				actions = append(actions, "watch.alert")
			}
			for _, action := range actions {
				seq++
				add(audit, seq, now, id, key, "rekey", action, "", "{}", "", "")
			}
		}
	}
	for _, t := range []*table{creds, rots, audit} {
		flush(t)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d keys, %d credentials, %d audit events in %s", keys, keys*generations, seq, time.Since(start).Round(time.Millisecond))
}
