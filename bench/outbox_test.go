package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// BenchmarkOutboxHistory shows that the notification outbox costs the same
// whatever history it holds: the same work runs on an empty outbox and on
// one seeded with 1,000,000 delivered rows (bulk-inserted in the set-up).
// The engine runs with a durable outbox and one notifier (which accepts
// every event), and in-memory adapters, so that the store is what is
// measured. Per round: 50 emergency rotations one after the other (the
// time from the trigger to the revoke call at the issuer: exposure-µs
// p50/p99), then 200 staged rotations at once (rotations/s). Compare the
// metrics of history=0 and history=1000000.
//
//	go test -run '^$' -bench BenchmarkOutboxHistory -benchtime 3x ./bench/
func BenchmarkOutboxHistory(b *testing.B) {
	for _, history := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			outboxRound(b, history)
		})
	}
}

func outboxRound(b *testing.B, history int) {
	const keys = 200
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	seedDelivered(b, st, history)
	iss := &memIssuer{revoked: make(chan string, keys)}
	sink := &memSink{}
	var ks []*rotator.Key
	for i := range keys {
		name := fmt.Sprintf("k%04d", i)
		ks = append(ks, &rotator.Key{Name: name, Issuer: iss, IssuerName: "mem", Notifiers: []string{"log"},
			Sinks: []rotator.SinkBinding{{SinkName: "mem", Sink: sink, Target: rotator.Target{Key: name, Path: name}}}})
	}
	note := &countingNotifier{}
	e, err := rotator.New(rotator.Options{Store: st, Keys: ks, Logger: slog.New(slog.DiscardHandler), Outbox: st, State: st,
		Notifiers: map[string]rotator.Notifier{"log": note}, Concurrency: 8, PollInterval: 50 * time.Millisecond,
		Breaker: rotator.BreakerPolicy{Max: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(time.Second)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = e.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	rotateAll := func(trigger rotator.Trigger) time.Duration {
		start := time.Now()
		for _, k := range ks {
			if _, err := e.Trigger(ctx, rotator.TriggerRequest{Key: k.Name, Trigger: trigger, Actor: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
		if !waitFor(5*time.Minute, func() bool {
			r, _ := st.ListRotations(ctx, rotator.RotationFilter{ActiveOnly: true})
			return len(r) == 0
		}) {
			b.Fatal("rotations still active after 5m")
		}
		return time.Since(start)
	}
	rotateAll(rotator.TriggerBootstrap)
	var exposure []time.Duration
	var staged time.Duration
	b.ResetTimer()
	for b.Loop() {
		for _, k := range ks[:50] {
			start := time.Now()
			if _, err := e.Trigger(ctx, rotator.TriggerRequest{Key: k.Name, Trigger: rotator.TriggerExposure, Actor: "bench", Source: "bench"}); err != nil {
				b.Fatal(err)
			}
			select {
			case <-iss.revoked:
				exposure = append(exposure, time.Since(start))
			case <-time.After(time.Minute):
				b.Fatal("no revoke within a minute of an exposure")
			}
			if !waitFor(time.Minute, func() bool { _, err := st.ActiveRotation(ctx, k.Name); return err != nil }) {
				b.Fatal("emergency rotation still active after 1m")
			}
		}
		staged += rotateAll(rotator.TriggerManual)
	}
	b.StopTimer()
	slices.Sort(exposure)
	b.ReportMetric(float64(exposure[len(exposure)/2].Microseconds()), "exposure-µs-p50")
	b.ReportMetric(float64(exposure[len(exposure)*99/100].Microseconds()), "exposure-µs-p99")
	b.ReportMetric(float64(keys*b.N)/staged.Seconds(), "rotations/s")
	var rows int
	_ = st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&rows)
	b.ReportMetric(float64(rows), "outbox-rows")
	b.ReportMetric(float64(note.n.Load()), "delivered")
}

// seedDelivered bulk-inserts n delivered outbox rows of the notifier "log",
// a day old (inside any retention, so nothing prunes them), in one
// statement: history as 10,000 bootstraps and their notifications leave it.
func seedDelivered(b *testing.B, st *sqlstore.Store, n int) {
	if n == 0 {
		return
	}
	start := time.Now()
	at := sqlstore.TimeText(time.Now().Add(-24 * time.Hour))
	_, err := st.DB().ExecContext(context.Background(), `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO outbox (id, notifier, seq, lane, event, created_at, next_attempt_at, delivered_at, attempts)
		SELECT 'log/history-' || i, 'log', i, 1, '{"id":"history","kind":"rotation.phase","message":"history"}', ?, ?, ?, 1 FROM seq`,
		n, at, at, at)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d delivered outbox rows in %s", n, time.Since(start).Round(time.Millisecond))
}
