package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The wait of a leak by hand says what it is: no expiry it would not honour
// (an emergency never gives up its replacement) but when it escalates; every
// reminder carries the emergency's severity (critical), not warning until
// escalate_after; and once the leaked key is confirmed revoked, the answer
// to confirm and the rotation's waiting state say so — not the LEAKED text
// from before.
func TestLeakByHandWaitSaysWhatItIs(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.key.Reminders = rotator.Reminders{Every: time.Minute, EscalateAfter: time.Hour, SecretExpireAfter: 5 * time.Minute}
	w.byHand()
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "pasted in a ticket"})()
	w.engine.RunOnce(w.ctx)
	r, _ = w.store.GetRotation(w.ctx, r.ID)
	if r.Hold != rotator.HoldSecret || r.Waiting == nil {
		t.Fatalf("not waiting for the replacement: hold %s, waiting %+v", r.Hold, r.Waiting)
	}
	if !r.Waiting.Deadline.IsZero() {
		t.Errorf("the emergency's wait for the replacement shows a deadline (%s) it never honours", r.Waiting.Deadline)
	}
	if want := r.HeldSince.Add(time.Hour); !r.Waiting.Escalates.Equal(want) {
		t.Errorf("escalates %s, want %s (held + escalate_after)", r.Waiting.Escalates, want)
	}
	// Two reminders, long before escalate_after.
	for range 2 {
		w.clock.Advance(time.Minute)
		w.engine.RunOnce(w.ctx)
	}
	w.waitDelivered()
	var reminders int
	w.notes[0].mu.Lock()
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventReminder && ev.RotationID == r.ID {
			reminders++
			if ev.Severity != rotator.SeverityCritical {
				t.Errorf("a reminder of the LEAKED wait is %s, want critical: %s", ev.Severity, ev.Message)
			}
		}
	}
	w.notes[0].mu.Unlock()
	if reminders == 0 {
		t.Fatal("no reminder of the LEAKED wait")
	}
	// Confirm first: the answer says the leaked key is confirmed revoked.
	_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: "id-1"})
	got, err := w.engine.Confirm(w.ctx, r.ID, "oncall@example.com")
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if got.Waiting == nil || !strings.Contains(got.Waiting.Detail, "api-v1 is confirmed revoked") || strings.Contains(got.Waiting.Detail, "LEAKED") {
		t.Errorf("the answer to confirm waits for %+v, want the leaked key confirmed revoked", got.Waiting)
	}
	if !strings.Contains(got.HoldDetail, "confirmed revoked") {
		t.Errorf("hold detail after confirm: %q", got.HoldDetail)
	}
	if got.Waiting != nil && !got.Waiting.Deadline.IsZero() {
		t.Errorf("after the confirm the wait shows a deadline %s", got.Waiting.Deadline)
	}
}
