package rotator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// foreignSink is a target that holds someone else's secret: it exists and
// carries no managed-by marker.
type foreignSink struct{ *memSink }

func (foreignSink) Inspect(context.Context, rotator.Target) (rotator.SinkState, error) {
	return rotator.SinkState{Exists: true, Managed: false, Current: "someone-elses"}, nil
}

// A key bound to a secret rekey does not own: nothing is ever minted, the
// scheduler backs off, and after three failures the key is held with one
// notification. Before preflight, every tick minted, failed to stage,
// revoked and notified — forever.
func TestForeignTargetMintsNothingAndHoldsTheKey(t *testing.T) {
	w := newCrashWorld(t, true)
	w.key.Bootstrap = true
	w.key.Sinks[1].Sink = foreignSink{w.sinks[1]}
	w.restart("")
	for range 60 { // an hour of scheduler ticks, one a minute
		if err := w.engine.Evaluate(w.ctx); err != nil && !strings.Contains(err.Error(), "no current") {
			t.Logf("evaluate: %v", err)
		}
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
	}
	w.engine.Close(5 * time.Second)
	w.iss.mu.Lock()
	minted := len(w.iss.secrets)
	w.iss.mu.Unlock()
	if minted != 0 {
		t.Fatalf("%d credentials minted for a key whose sink rekey does not own", minted)
	}
	rs, err := w.store.ListRotations(w.ctx, rotator.RotationFilter{Key: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("%d rotations created in an hour, want 3 (backoff 1m, 4m, then held)", len(rs))
	}
	for _, r := range rs {
		if r.Phase != rotator.PhaseFailed || !strings.Contains(r.Outcome, "does not manage") {
			t.Fatalf("rotation %s ended %s: %s", r.ID, r.Phase, r.Outcome)
		}
	}
	held := 0
	w.notes[0].mu.Lock()
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventHeld && strings.Contains(ev.Message, "held after 3 failed rotations") {
			held++
		}
	}
	w.notes[0].mu.Unlock()
	if held != 1 {
		t.Fatalf("%d notifications that the key is held, want 1", held)
	}
}
