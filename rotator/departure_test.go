package rotator_test

import (
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// One departure, one of whose keys has a rotation that cannot step aside
// (it watches after its revoke): every other key of the person is rotated
// exactly once however often the event is retried, the blocked key once
// when its rotation ends, and a person hears once that the departure waits.
// On the code before departures were idempotent the retried event started
// a new emergency rotation of the other key at every engine pass.
func TestDepartureActsOnceOnEachKey(t *testing.T) {
	w := newCrashWorld(t, true)
	w.key.Owners = []string{"bob@example.com"}
	w.key.Drain.QuietPeriod = 0
	w.key.Watch = rotator.WatchPolicy{Period: time.Hour, PollInterval: time.Minute}
	other := *w.key
	other.Name = "billing"
	other.Sinks = []rotator.SinkBinding{{SinkName: "mem0", Sink: readerSink{newSink()}, Target: rotator.Target{Key: "billing", Path: "billing"}}}
	w.extra = []*rotator.Key{&other}
	w.restart("")
	w.bootstrap()
	b, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: "billing", Trigger: rotator.TriggerBootstrap, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := w.drive(b.ID, nil); r.Phase != rotator.PhaseDone {
		t.Fatalf("bootstrap of billing: %s", r.Phase)
	}
	// api: a staged rotation past its revoke, watching for an hour.
	a := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	for range 50 {
		w.engine.RunOnce(w.ctx)
		r, _ := w.store.GetRotation(w.ctx, a.ID)
		if r.Phase == rotator.PhaseWatching {
			break
		}
		w.clock.Set(r.NextAttemptAt)
	}
	if _, err := w.engine.ReportDeparture(w.ctx, rotator.DepartureReport{ID: "hr-1", Email: " Bob@Example.com", Actor: "hr"}); err != nil {
		t.Fatal(err)
	}
	for range 200 { // engine passes, each retrying the pending departure
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(30 * time.Second)
	}
	count := func(key string) int {
		rs, err := w.store.ListRotations(w.ctx, rotator.RotationFilter{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rs {
			if r.Trigger == rotator.TriggerDeparture {
				n++
			}
		}
		return n
	}
	if n := count("billing"); n != 1 {
		t.Fatalf("billing rotated %d times for one departure, want once", n)
	}
	if n := count("api"); n != 1 {
		t.Fatalf("api rotated %d times for one departure, want once (after its watch ended)", n)
	}
	waits := 0
	w.notes[0].mu.Lock()
	defer w.notes[0].mu.Unlock()
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventHeld && ev.Fields["keys"] == "api" {
			waits++
		}
	}
	if waits != 1 {
		t.Fatalf("%d notifications that the departure waits, want 1", waits)
	}
	if live := w.iss.liveCount(); live != 2 {
		t.Fatalf("%d live credentials at the issuer, want one per key", live)
	}
}
