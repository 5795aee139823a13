package rotator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The idempotency key of a mint intent is built from what the intent
// records: stable for the intent, different for another rotation or
// another generation, and free of anything secret.
func TestIdempotencyKeyIsTheIntents(t *testing.T) {
	k := rotator.IdempotencyKey("rot_1", 2)
	if k != rotator.IdempotencyKey("rot_1", 2) {
		t.Fatal("the key of one intent changed between calls")
	}
	for _, other := range []string{rotator.IdempotencyKey("rot_2", 2), rotator.IdempotencyKey("rot_1", 3)} {
		if other == k {
			t.Fatalf("two intents share the key %s", k)
		}
	}
	if k != "rekey-rot_1-v2" {
		t.Fatalf("key %q", k)
	}
}

// idemRun rotates once at an issuer that keeps idempotency keys for
// window and loses the answer of the rotation's first mint (the
// credential is created, the connection resets), advancing the clock by
// gap before the retry. It returns the world and the ended rotation.
func idemRun(t *testing.T, window, gap time.Duration, iss func(w *crashWorld) rotator.Issuer) (*crashWorld, *rotator.Rotation) {
	t.Helper()
	w := newCrashWorld(t, true)
	w.iss.honourKeys(window, w.clock)
	if iss != nil {
		w.key.Issuer = iss(w)
		w.restart("")
	}
	w.bootstrap()
	w.iss.loseMints(1, false)
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "idempotency"})()
	w.engine.RunOnce(w.ctx) // the mint whose answer is lost
	w.clock.Advance(gap)
	end, _ := w.drive(r.ID, nil)
	if end.Phase != rotator.PhaseDone {
		t.Fatalf("rotation ended %s: %s", end.Phase, end.Outcome)
	}
	return w, end
}

func auditOf(t *testing.T, w *crashWorld, id string) []rotator.AuditEvent {
	t.Helper()
	evs, err := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: id})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A lost mint answer at an issuer that keeps keys: the retry sends the
// same key, the issuer replays the credential it created, and nothing is
// reaped — the name is created once, the replayed credential is the one
// delivered, and the audit says the mint was resumed with which key.
func TestLostMintIsReplayedNotReaped(t *testing.T) {
	t.Parallel()
	w, r := idemRun(t, time.Hour, 0, nil)
	w.check(r)
	if n := w.iss.replayed(); n != 1 {
		t.Fatalf("%d replays, want 1", n)
	}
	w.iss.issuer.mu.Lock()
	created, revoked := w.iss.issuer.created["api-v2"], len(w.iss.issuer.revoked)
	w.iss.issuer.mu.Unlock()
	if created != 1 || revoked != 1 { // generation 1, revoked by the rotation
		t.Fatalf("api-v2 created %d times, %d credentials revoked; want 1 and 1", created, revoked)
	}
	resumed := 0
	for _, ev := range auditOf(t, w, r.ID) {
		switch ev.Action {
		case "orphan.found", "orphan.revoked":
			t.Fatalf("a replayed mint reaped an orphan: %+v", ev)
		case "mint.resumed":
			resumed++
			if ev.Detail["idempotency_key"] != rotator.IdempotencyKey(r.ID, 2) || ev.Detail["name"] != "api-v2" {
				t.Fatalf("mint.resumed detail %v", ev.Detail)
			}
		}
	}
	if resumed != 1 {
		t.Fatalf("%d mint.resumed audit events, want 1", resumed)
	}
}

// A key that lapsed before the retry (the issuer forgot it): the issuer
// creates a second credential of the name; the first, found by name, is
// an orphan, recorded with the mint (one commit) before its revoke, and
// the second is delivered.
func TestLapsedKeyStillReapsTheOrphan(t *testing.T) {
	t.Parallel()
	w, r := idemRun(t, time.Minute, 2*time.Minute, nil)
	w.lapses = true
	w.check(r) // no orphan left
	if n := w.iss.replayed(); n != 0 {
		t.Fatalf("%d replays of a lapsed key", n)
	}
	w.iss.issuer.mu.Lock()
	created := w.iss.issuer.created["api-v2"]
	w.iss.issuer.mu.Unlock()
	if created != 2 {
		t.Fatalf("api-v2 created %d times, want 2 (the key lapsed)", created)
	}
	var acts []string
	for _, ev := range auditOf(t, w, r.ID) {
		acts = append(acts, ev.Action)
	}
	got := strings.Join(acts, " ")
	if !strings.Contains(got, "mint.resumed orphan.found minted orphan.revoked") {
		t.Fatalf("audit %v: want the mint and the orphan recorded, then the orphan revoked", acts)
	}
}

// unlistedIssuer honours idempotency keys but cannot list credentials
// (no Finder).
type unlistedIssuer struct{ v *verifyingIssuer }

func (u unlistedIssuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	return u.v.Mint(ctx, req)
}
func (u unlistedIssuer) Revoke(ctx context.Context, ref rotator.CredentialRef) error {
	return u.v.Revoke(ctx, ref)
}
func (u unlistedIssuer) IdempotencyWindow() time.Duration { return u.v.IdempotencyWindow() }

// Without a way to list credentials, a replay within the window needs no
// warning; a resumed mint older than the window may have left a second
// credential nobody can find, so a person is told where to look.
func TestUnlistedIssuerWarnsOnlyPastTheWindow(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		gap  time.Duration
		warn bool
	}{
		"within the window": {gap: 0, warn: false},
		"past the window":   {gap: 2 * time.Hour, warn: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, r := idemRun(t, time.Hour, tc.gap, func(w *crashWorld) rotator.Issuer { return unlistedIssuer{w.iss} })
			if !tc.warn {
				w.check(r) // no orphan, each name created once
			}
			warned := strings.Contains(w.notes[0].text(), "longer ago than issuer fake keeps idempotency keys")
			if warned != tc.warn {
				t.Fatalf("warned %v, want %v: %s", warned, tc.warn, w.notes[0].text())
			}
		})
	}
}
