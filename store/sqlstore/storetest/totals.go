package storetest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testTotals checks the counters read from the store: minted credentials
// (an intent without an issuer id is not minted), revoked ones plus the
// orphans revoked, watch alerts, finished rotations by outcome, trigger and
// mode (active ones not yet) — and that retention leaves them as they were.
func testTotals(t *testing.T, s rotator.Store) {
	ts, ok := s.(rotator.TotalsStore)
	if !ok {
		t.Fatalf("%T does not implement rotator.TotalsStore", s)
	}
	ctx := ctxFor(t)
	got, err := ts.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 0 || len(got.Rotations) != 0 {
		t.Fatalf("an empty store counts %+v", got)
	}

	intent := cred("a", 3, rotator.CredPending)
	intent.IssuerID = ""
	create(t, s, newRotation("rot-a", "a"), cred("a", 1, rotator.CredCurrent), intent)
	done := get(t, s, "rot-a")
	done.Phase, done.FinishedAt = rotator.PhaseDone, base.Add(time.Hour)
	save(t, s, rotator.Commit{Rotation: done,
		Credentials: []*rotator.Credential{cred("a", 1, rotator.CredRevoked), cred("a", 2, rotator.CredCurrent)},
		Audit:       []rotator.AuditEvent{event("rot-a", "a", "orphan.revoked"), event("rot-a", "a", "watch.alert"), event("rot-a", "a", "phase.entered")},
		Outbox:      []rotator.Notification{{Notifier: "log", Event: rotator.Event{ID: "ev-a", Kind: rotator.EventFinished, Key: "a", At: base}}},
	})
	b := newRotation("rot-b", "b")
	b.Trigger, b.Mode = rotator.TriggerExposure, rotator.ModeEmergency
	create(t, s, b, cred("b", 1, rotator.CredCurrent))
	failed := get(t, s, "rot-b")
	failed.Phase, failed.FinishedAt = rotator.PhaseFailed, base.Add(time.Hour)
	save(t, s, rotator.Commit{Rotation: failed})
	create(t, s, newRotation("rot-c", "c"), cred("c", 1, rotator.CredCurrent)) // active: not counted

	want := rotator.Totals{
		Keys: map[string]rotator.KeyTotals{
			"a": {Minted: 2, Revoked: 2, WatchAlerts: 1},
			"b": {Minted: 1},
			"c": {Minted: 1},
		},
		Rotations: []rotator.RotationTotal{
			{Outcome: rotator.PhaseDone, Trigger: rotator.TriggerAge, Mode: rotator.ModeStaged, Count: 1},
			{Outcome: rotator.PhaseFailed, Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, Count: 1},
		},
	}
	check := func(when string) {
		t.Helper()
		got, err := ts.Totals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got.Rotations, func(x, y rotator.RotationTotal) int { return strings.Compare(string(x.Outcome), string(y.Outcome)) })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: totals %+v, want %+v", when, got, want)
		}
	}
	check("before retention")
	p, ok := s.(rotator.Pruner)
	if !ok {
		t.Fatalf("%T does not implement rotator.Pruner", s)
	}
	future := base.Add(100 * 365 * 24 * time.Hour)
	if _, err := p.Prune(ctx, future, future); err != nil {
		t.Fatal(err)
	}
	check("after retention")
}
