package rotator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// person is a manual issuer: a person mints and revokes in a dashboard.
type person struct{ *issuer }

func (person) MintInstructions(req rotator.MintRequest) string {
	return "mint " + req.Name + " in the dashboard, then run rekey submit"
}
func (person) RevokeInstructions(ref rotator.CredentialRef) string {
	return "revoke " + ref.Name + " in the dashboard, then run rekey confirm"
}
func (person) Accept(_ context.Context, req rotator.MintRequest, s rotator.Secret) (rotator.Minted, error) {
	return rotator.Minted{ID: req.Name, Secret: s}, nil
}
func (person) Mint(context.Context, rotator.MintRequest) (rotator.Minted, error) {
	return rotator.Minted{}, errors.New("a person mints")
}

// A rotation that waits for a person is not forgotten: it reminds at the
// key's cadence, escalates to on-call past escalate_after, and a wait for a
// secret nobody submits ends in a rollback that tells the person to revoke
// what they may have minted. Before, one notification went out and the
// rotation waited forever, across restarts.
func TestHumanWaitsRemindEscalateAndExpire(t *testing.T) {
	w := newCrashWorld(t, true)
	w.key.Issuer = person{newIssuer()}
	w.key.Reminders = rotator.Reminders{Every: time.Hour, EscalateAfter: 3 * time.Hour, SecretExpireAfter: 5*time.Hour + time.Minute}
	w.restart("")
	// Bootstrap: a person must mint generation 1.
	r, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 * 60 { // ten hours, a pass a minute, restarting every hour
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
		if now := w.clock.Now(); now.Minute() == 30 {
			w.engine.Close(time.Second)
			w.restart("")
		}
	}
	w.engine.Close(5 * time.Second)
	got, _ := w.store.GetRotation(w.ctx, r.ID)
	if got.Phase != rotator.PhaseFailed || !strings.Contains(got.Outcome, "nobody submitted the secret") {
		t.Fatalf("rotation %s (%s), want failed: nobody submitted the secret", got.Phase, got.Outcome)
	}
	if late := got.FinishedAt.Sub(got.CreatedAt); late < 5*time.Hour || late > 5*time.Hour+3*time.Minute {
		t.Fatalf("the wait for the secret ended after %s, want at secret_expire_after (5h01m)", late)
	}
	var reminders, critical, revokeHint int
	w.notes[0].mu.Lock()
	for _, ev := range w.notes[0].evs {
		switch {
		case ev.Kind == rotator.EventReminder:
			reminders++
			if ev.Severity == rotator.SeverityCritical && ev.Fields["escalate"] == "oncall" {
				critical++
			}
		case ev.Kind == rotator.EventOrphan && strings.Contains(ev.Message, "if you minted api-v1, revoke it"):
			revokeHint++
		}
	}
	w.notes[0].mu.Unlock()
	// Held at 0h; reminders at 1h…5h; from 3h on escalated; expired at 5h01.
	if reminders != 5 || critical != 3 {
		t.Fatalf("%d reminders (%d escalated), want 5 (3 escalated)", reminders, critical)
	}
	if revokeHint != 1 {
		t.Fatalf("%d notifications to revoke what may have been minted, want 1", revokeHint)
	}
}
