package rotator_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rekeyhq/rekey/rotator"
)

// gatedSink blocks the first call of one operation ("stage" or "promote")
// until the test opens the gate, as a slow upstream would while its daemon
// loses the lease, and counts that operation's calls.
type gatedSink struct {
	readerSink
	op      string
	calls   *atomic.Int32
	entered chan struct{}
	open    chan struct{}
}

func newGatedSink(s *memSink, op string) gatedSink {
	return gatedSink{readerSink: readerSink{s}, op: op, calls: new(atomic.Int32), entered: make(chan struct{}, 1), open: make(chan struct{})}
}

func (g gatedSink) pass(op string) {
	if op == g.op && g.calls.Add(1) == 1 {
		g.entered <- struct{}{}
		<-g.open
	}
}

// hit reports whether the gated operation was called.
func (g gatedSink) hit() bool { return g.calls.Load() > 0 }

func (g gatedSink) Stage(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	g.pass("stage")
	return g.readerSink.Stage(ctx, t, d)
}

func (g gatedSink) Promote(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	g.pass("promote")
	return g.readerSink.Promote(ctx, t, d)
}

// daemon is a second engine on the env's store, as another daemon
// (owner) with its own lease TTL and metrics.
func (e *env) daemon(owner string, ttl time.Duration, reg *prometheus.Registry) *rotator.Engine {
	e.t.Helper()
	d, err := rotator.New(rotator.Options{
		Store: e.store, Keys: []*rotator.Key{e.key}, Notifiers: map[string]rotator.Notifier{"notes": e.notes},
		Clock: e.clock, Inbound: e.store, State: e.store, Metrics: rotator.NewMetrics(reg),
		Owner: owner, LeaseTTL: ttl,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close(time.Second) })
	return d
}

// runUntilGate runs daemon a on rotation id, following the fake clock,
// until one of its steps is inside gate (what names the side effect for the
// failure message). The channel closes once a's last RunOnce returned.
func (e *env) runUntilGate(a *rotator.Engine, id string, gate gatedSink, what string) <-chan struct{} {
	e.t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx := e.t.Context(); ctx.Err() == nil && !gate.hit(); {
			a.RunOnce(ctx) // returns once a stopped, after the gate
			got, err := e.store.GetRotation(ctx, id)
			if err != nil || got.Phase.Terminal() {
				return
			}
			e.clock.Set(got.NextAttemptAt)
		}
	}()
	select {
	case <-gate.entered:
	case <-time.After(30 * time.Second):
		e.t.Fatal("daemon A never reached the " + what)
	}
	return done
}

// TestLostLeaseStopsBeforeNextSideEffect: while daemon A is inside a side
// effect (staging the first of two sinks), its lease runs out and daemon B
// claims the rotation. A's heartbeat finds the lease gone, and A stops:
// it writes no further sink and commits nothing — its commit would be
// fenced by the epoch anyway. B then finishes the rotation.
func TestLostLeaseStopsBeforeNextSideEffect(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	gate := newGatedSink(e.sinks[0], "stage")
	e.key.Sinks[0].Sink = gate
	reg := prometheus.NewRegistry()
	a := e.daemon("daemon-a", 300*time.Millisecond, reg)
	r := e.trigger(rotator.TriggerManual, "")
	done := e.runUntilGate(a, r.ID, gate, "staging side effect")
	before, err := e.store.GetRotation(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A is stuck in the side effect; its lease runs out (as if A were
	// paused) and B claims the rotation.
	if _, err := e.store.DB().ExecContext(t.Context(), `UPDATE rotations SET lease_until = '' WHERE id = ?`, r.ID); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := e.store.Claim(t.Context(), r.ID, "daemon-b", time.Hour)
	if err != nil || !ok {
		t.Fatalf("B's claim = %v, %v", ok, err)
	}
	for deadline := time.Now().Add(30 * time.Second); metricValue(reg, "rekey_lease_lost_total") < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's heartbeat never noticed the lost lease")
		}
	}
	close(gate.open) // the side effect in flight completes
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("A did not stop")
	}
	if got := e.sinks[1].vals["api"]; got != nil && got.pend != "" {
		t.Errorf("A staged the second sink after losing its lease")
	}
	after, err := e.store.GetRotation(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || after.Phase != before.Phase {
		t.Errorf("A committed after losing its lease: version %d→%d, phase %s→%s", before.Version, after.Version, before.Phase, after.Phase)
	}
	if v := metricValue(reg, "rekey_leases_held"); v != 0 {
		t.Errorf("rekey_leases_held = %v after A stopped, want 0", v)
	}
	// B, the holder, finishes the rotation.
	if err := e.store.Release(t.Context(), r.ID, lb); err != nil {
		t.Fatal(err)
	}
	e.key.Sinks[0].Sink = readerSink{e.sinks[0]}
	if end := e.run(r.ID, 100); end.Phase != rotator.PhaseDone {
		t.Fatalf("rotation ended %s: %s", end.Phase, end.LastError)
	}
}

// metricValue reads an unlabelled counter or gauge; 0 when absent.
func metricValue(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}

// TestFencedCommitWritesNothing: daemon A loses its lease while its last
// sink's cut-over is in flight; the call completes, but A's commit is
// fenced off and A writes nothing at all — not even the credential states
// its side effect implied (the new holder may have moved them on already).
func TestFencedCommitWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	gate := newGatedSink(e.sinks[1], "promote")
	e.key.Sinks[1].Sink = gate
	reg := prometheus.NewRegistry()
	a := e.daemon("daemon-a", 300*time.Millisecond, reg)
	r := e.trigger(rotator.TriggerManual, "")
	done := e.runUntilGate(a, r.ID, gate, "cut-over of the last sink")
	before := e.creds()
	if _, err := e.store.DB().ExecContext(t.Context(), `UPDATE rotations SET lease_until = '' WHERE id = ?`, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.store.Claim(t.Context(), r.ID, "daemon-b", time.Hour); err != nil || !ok {
		t.Fatalf("B's claim = %v, %v", ok, err)
	}
	for deadline := time.Now().Add(30 * time.Second); metricValue(reg, "rekey_lease_lost_total") < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("A's heartbeat never noticed the lost lease")
		}
	}
	close(gate.open)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("A did not stop")
	}
	after := e.creds()
	for gen, c := range after {
		if b, ok := before[gen]; !ok || b.State != c.State {
			t.Errorf("generation %d: %v → %s after A's commit was fenced off", gen, before[gen], c.State)
		}
	}
}
