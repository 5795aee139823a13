package rotator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// storedFailures makes the next mints fail the way a server that stores
// every answer to an idempotency key does: the failure is stored for the
// key and replayed for the key's window.
type storedFailures struct {
	n       int
	created bool // the failed create made the credential anyway
	marked  bool // replays say so (rotator.ReplayedFailure), as Idempotent-Replayed: true does
}

// storeFailures arms the next n mints (see storedFailures).
func (v *verifyingIssuer) storeFailures(n int, created, marked bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stored = storedFailures{n: n, created: created, marked: marked}
}

// storedFailure answers a mint armed by storeFailures.
func (v *verifyingIssuer) storedFailure(ctx context.Context, req rotator.MintRequest) (error, bool) {
	v.mu.Lock()
	st := v.stored
	if st.n == 0 || v.keys.window == 0 || req.IdempotencyKey == "" {
		v.mu.Unlock()
		return nil, false
	}
	v.stored.n--
	v.mu.Unlock()
	if st.created {
		if _, err := v.issuer.Mint(ctx, req); err != nil {
			return err, true
		}
	}
	err := errors.New("HTTP 500 internal error")
	replayed := err
	if st.marked {
		replayed = rotator.ReplayedFailure(err)
	}
	v.mu.Lock()
	v.keys.answers[req.IdempotencyKey] = keyAnswer{name: req.Name, err: replayed, at: v.keys.clock.Now()}
	v.mu.Unlock()
	return err, true
}

// abandonRun rotates once (mode staged or emergency) at an issuer that
// keeps keys for a day and stores the first mint's failure, and returns
// the world and the ended rotation.
func abandonRun(t *testing.T, emergency bool, st storedFailures) (*crashWorld, *rotator.Rotation) {
	t.Helper()
	w := newCrashWorld(t, true)
	w.iss.honourKeys(24*time.Hour, w.clock)
	w.bootstrap()
	w.iss.storeFailures(st.n, st.created, st.marked)
	req := rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "stored failure"}
	if emergency {
		req = rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "stored failure"}
	}
	r := w.trigger(req)()
	end, _ := w.drive(r.ID, nil)
	if end.Phase != rotator.PhaseDone {
		t.Fatalf("rotation ended %s: %s", end.Phase, end.Outcome)
	}
	return w, end
}

// abandoned returns the mint.abandoned audit events of rotation id and
// fails unless the audit says, in order: the abandon, then the next
// generation's intent.
func abandoned(t *testing.T, w *crashWorld, id string) []rotator.AuditEvent {
	t.Helper()
	var out []rotator.AuditEvent
	var acts []string
	for _, ev := range auditOf(t, w, id) {
		acts = append(acts, ev.Action)
		if ev.Action == "mint.abandoned" {
			out = append(out, ev)
		}
	}
	if !strings.Contains(strings.Join(acts, " "), "mint.abandoned mint.intent") {
		t.Fatalf("audit %v: want mint.abandoned then the new mint.intent", acts)
	}
	return out
}

// A failure the issuer stored for the intent's key and replays does not
// hold the mint for the key's window (a day): the intent is abandoned at
// the first replay and generation 3 is minted under a new key — in an
// emergency too, where no key works meanwhile.
func TestReplayedFailureAbandonsTheIntent(t *testing.T) {
	t.Parallel()
	for _, emergency := range []bool{false, true} {
		w, r := abandonRun(t, emergency, storedFailures{n: 1, marked: true})
		w.check(r)
		cur := currentCred(t, w)
		if cur.Generation != 3 || cur.Name != "api-v3" {
			t.Fatalf("emergency %v: current is %s (generation %d), want api-v3", emergency, cur.Name, cur.Generation)
		}
		evs := abandoned(t, w, r.ID)
		if len(evs) != 1 || evs[0].Detail["idempotency_key"] != rotator.IdempotencyKey(r.ID, 2) || evs[0].Detail["next"] != "api-v3" ||
			!strings.Contains(evs[0].Detail["why"], "replays a failed answer") {
			t.Fatalf("emergency %v: mint.abandoned %+v", emergency, evs)
		}
		if n := w.iss.replayed(); n != 1 {
			t.Fatalf("emergency %v: %d replays, want 1 (abandoned at the first)", emergency, n)
		}
		if !strings.Contains(w.notes[0].text(), "abandoned the mint of api-v2") {
			t.Fatalf("emergency %v: nobody was told: %s", emergency, w.notes[0].text())
		}
	}
}

// The failed create made the credential anyway: before the intent is
// abandoned, what carries its name is revoked, recorded first.
func TestAbandonedIntentReapsItsName(t *testing.T) {
	t.Parallel()
	w, r := abandonRun(t, true, storedFailures{n: 1, created: true, marked: true})
	w.check(r) // no orphan at the issuer
	var acts []string
	for _, ev := range auditOf(t, w, r.ID) {
		acts = append(acts, ev.Action)
	}
	if got := strings.Join(acts, " "); !strings.Contains(got, "orphan.found orphan.revoked") || !strings.Contains(got, "mint.abandoned mint.intent") ||
		strings.Index(got, "orphan.revoked") > strings.Index(got, "mint.abandoned") {
		t.Fatalf("audit %v: want the orphan recorded and revoked, then the abandon", acts)
	}
	if cur := currentCred(t, w); cur.Name != "api-v3" {
		t.Fatalf("current %s, want api-v3", cur.Name)
	}
}

// A server that replays a stored failure without saying so: the fifth
// failure in a row of one intent, identical to the one before, abandons
// it.
func TestRepeatedIdenticalFailuresAbandonTheIntent(t *testing.T) {
	t.Parallel()
	w, r := abandonRun(t, true, storedFailures{n: 1})
	w.check(r)
	evs := abandoned(t, w, r.ID)
	if len(evs) != 1 || !strings.Contains(evs[0].Detail["why"], "5 failures in a row") {
		t.Fatalf("mint.abandoned %+v", evs)
	}
	if n := w.iss.replayed(); n != 4 {
		t.Fatalf("%d replays, want 4 (the first answer and four replays)", n)
	}
	if cur := currentCred(t, w); cur.Name != "api-v3" {
		t.Fatalf("current %s, want api-v3", cur.Name)
	}
}

// undeclaredIssuer replays idempotency keys but does not say so (no
// IdempotentMinter), as an http issuer with the key in a template did:
// the engine reaps what a lost mint created and mints again with the same
// key, and the issuer hands back the credential just revoked.
type undeclaredIssuer struct{ v *verifyingIssuer }

func (u undeclaredIssuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	return u.v.Mint(ctx, req)
}
func (u undeclaredIssuer) Revoke(ctx context.Context, ref rotator.CredentialRef) error {
	return u.v.Revoke(ctx, ref)
}
func (u undeclaredIssuer) FindByName(ctx context.Context, key, name string) ([]string, error) {
	return u.v.FindByName(ctx, key, name)
}
func (u undeclaredIssuer) Verify(ctx context.Context, key string, s rotator.Secret, p map[string]any) error {
	return u.v.Verify(ctx, key, s, p)
}

// Defence in depth: a resumed mint never records, stages or delivers a
// credential this rotation revoked as an orphan. The intent is abandoned
// and the next generation minted under a new key; what the sinks serve is
// live at the issuer.
func TestRevokedOrphanIsNeverDelivered(t *testing.T) {
	t.Parallel()
	w, r := idemRun(t, time.Hour, 0, func(w *crashWorld) rotator.Issuer { return undeclaredIssuer{w.iss} })
	w.check(r) // the sinks serve the current credential, live at the issuer
	cur := currentCred(t, w)
	if cur.Name != "api-v3" || w.iss.isRevoked(cur.IssuerID) {
		t.Fatalf("current %s (%s), revoked at the issuer: %v", cur.Name, cur.IssuerID, w.iss.isRevoked(cur.IssuerID))
	}
	var reaped string
	for _, ev := range auditOf(t, w, r.ID) {
		switch ev.Action {
		case "orphan.revoked":
			reaped = ev.Detail["issuer_id"]
		case "minted":
			if ev.Detail["issuer_id"] == reaped {
				t.Fatalf("recorded the revoked orphan %s as minted", reaped)
			}
		}
	}
	evs := abandoned(t, w, r.ID)
	if reaped == "" || len(evs) != 1 || !strings.Contains(evs[0].Detail["why"], reaped+", a credential this rotation revoked") {
		t.Fatalf("reaped %q, mint.abandoned %+v", reaped, evs)
	}
}

// currentCred is the key's current credential on record.
func currentCred(t *testing.T, w *crashWorld) *rotator.Credential {
	t.Helper()
	creds, err := w.store.Credentials(w.ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.State == rotator.CredCurrent {
			return c
		}
	}
	t.Fatal("no current credential")
	return nil
}
