package bench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/issuers/random"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/file"
	"github.com/rekeyhq/rekey/store/sqlite"
)

// BenchmarkStagedRotation compares one full staged rotation through the
// engine (random issuer, file sink, zero quiet period, real SQLite store:
// every phase persisted before its side effect) with the bare issuer and
// sink calls the rotation makes (mint, stage, verify, promote, inspect,
// revoke, cleanup). It prints engine time / bare time (target ≤ 1.2).
//
// "paired" runs the two alternately, one rotation and one set of bare
// calls per round, and reports the ratio of their sums as overhead-x: on a
// machine shared with other work, load then weighs on both sides alike.
func BenchmarkStagedRotation(b *testing.B) {
	var bare, engine time.Duration
	b.Run("bare-calls", func(b *testing.B) {
		one := bareRotation(b, b.TempDir())
		start := time.Now()
		for b.Loop() {
			one()
		}
		bare = time.Since(start) / time.Duration(b.N)
	})
	b.Run("engine", func(b *testing.B) {
		one := engineRotation(b, b.TempDir())
		start := time.Now()
		for b.Loop() {
			one()
		}
		engine = time.Since(start) / time.Duration(b.N)
	})
	if bare > 0 && engine > 0 {
		fmt.Printf("staged rotation: bare calls %s, engine %s, overhead %.2fx\n", bare, engine, float64(engine)/float64(bare))
	}
	b.Run("paired", func(b *testing.B) {
		oneBare, oneEngine := bareRotation(b, b.TempDir()), engineRotation(b, b.TempDir())
		var tb, te time.Duration
		for b.Loop() {
			s := time.Now()
			oneBare()
			m := time.Now()
			oneEngine()
			tb, te = tb+m.Sub(s), te+time.Since(m)
		}
		b.ReportMetric(float64(tb.Microseconds())/float64(b.N), "bare-µs/op")
		b.ReportMetric(float64(te.Microseconds())/float64(b.N), "engine-µs/op")
		b.ReportMetric(float64(te)/float64(tb), "overhead-x")
	})
}

// bareRotation returns one rotation's worth of bare issuer and sink calls.
func bareRotation(b *testing.B, dir string) func() {
	ctx := context.Background()
	iss, sink := newRandomAndFile(b, dir, slog.New(slog.DiscardHandler))
	t := rotator.Target{Key: "api", Path: "api"}
	prev, err := iss.Mint(ctx, rotator.MintRequest{Key: "api", Name: "api-v0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := sink.Stage(ctx, t, rotator.Delivery{Generation: 0, Fingerprint: prev.Secret.Fingerprint(), Secret: prev.Secret}); err != nil {
		b.Fatal(err)
	}
	prevFP, prevID, gen := prev.Secret.Fingerprint(), prev.ID, 0
	return func() {
		gen++
		m, err := iss.Mint(ctx, rotator.MintRequest{Key: "api", Name: fmt.Sprintf("api-v%d", gen), Generation: gen})
		if err != nil {
			b.Fatal(err)
		}
		d := rotator.Delivery{RotationID: "bare", Generation: gen, Fingerprint: m.Secret.Fingerprint(), Secret: m.Secret, OldGeneration: gen - 1, OldFingerprint: prevFP}
		for _, f := range []func() error{
			func() error { return sink.Stage(ctx, t, d) },
			func() error { return iss.Verify(ctx, "api", m.Secret, nil) },
			func() error { return sink.Promote(ctx, t, d) },
			func() error { _, err := sink.Inspect(ctx, t); return err },
			func() error { return iss.Revoke(ctx, rotator.CredentialRef{Key: "api", ID: prevID}) },
			func() error { return sink.Cleanup(ctx, t, d) },
		} {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		prevFP, prevID = d.Fingerprint, m.ID
	}
}

// engineRotation returns one manual rotation through the engine (after a
// bootstrap), checked to end done.
func engineRotation(b *testing.B, dir string) func() {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	iss, sink := newRandomAndFile(b, dir, log)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	key := &rotator.Key{Name: "api", Issuer: iss, IssuerName: "random", Verify: true,
		Sinks: []rotator.SinkBinding{{SinkName: "file", Sink: sink, Target: rotator.Target{Key: "api", Path: "api"}}}}
	e, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Logger: log, PollInterval: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close(time.Second) })
	rotate := func(t rotator.Trigger) {
		r, err := e.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: t, Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		e.RunOnce(ctx)
		if got, _ := st.GetRotation(ctx, r.ID); got.Phase != rotator.PhaseDone {
			b.Fatalf("rotation ended in %s: %s", got.Phase, got.LastError)
		}
	}
	rotate(rotator.TriggerBootstrap)
	return func() { rotate(rotator.TriggerManual) }
}

func newRandomAndFile(b testing.TB, dir string, log *slog.Logger) (*random.Issuer, *file.Sink) {
	b.Helper()
	rc := random.DefaultConfig()
	rc.Ledger = filepath.Join(dir, "ledger.json")
	iss, err := random.New(rc, log)
	if err != nil {
		b.Fatal(err)
	}
	fc := file.DefaultConfig()
	fc.Dir = filepath.Join(dir, "secrets")
	sink, err := file.New(fc, log)
	if err != nil {
		b.Fatal(err)
	}
	return iss, sink
}

// BenchmarkEngineAlone is one staged rotation through the engine with
// adapters that cost nothing (memIssuer, memSink): what is left is the
// engine's own cost per rotation — its commits, reads and bookkeeping —
// the numerator of BenchmarkStagedRotation's overhead. cpu-µs/op is the
// process's CPU time per rotation, steadier than wall time on a shared
// machine.
func BenchmarkEngineAlone(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	key := &rotator.Key{Name: "api", Issuer: &memIssuer{}, IssuerName: "mem",
		Sinks: []rotator.SinkBinding{{SinkName: "mem", Sink: &memSink{}, Target: rotator.Target{Key: "api", Path: "api"}}}}
	e, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Logger: slog.New(slog.DiscardHandler), PollInterval: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(time.Second)
	rotate := func(t rotator.Trigger) {
		r, err := e.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: t, Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		e.RunOnce(ctx)
		if got, _ := st.GetRotation(ctx, r.ID); got.Phase != rotator.PhaseDone {
			b.Fatalf("rotation ended in %s: %s", got.Phase, got.LastError)
		}
	}
	rotate(rotator.TriggerBootstrap)
	cpu0 := cpuTime()
	for b.Loop() {
		rotate(rotator.TriggerManual)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
