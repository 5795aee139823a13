package storetest

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// NewSecret returns a fresh Kubeadapt-style key (ka_live_ + 32 base62
// characters) that appears nowhere else.
func NewSecret() rotator.Secret {
	return rotator.NewSecret("ka_live_" + rand.Text()[:26] + "x9Zq8Yw")
}

// RecordRun stores a whole staged rotation of key through s — mint intent,
// mint, staging, cut-over, drain, revocation, approvals, audit — the way the
// engine would: knowing the new secret, but recording only its fingerprint.
// Callers then look for the secret in the raw database.
func RecordRun(t *testing.T, s rotator.Store, key string, secret rotator.Secret) {
	t.Helper()
	ctx := ctxFor(t)
	fp := secret.Fingerprint()
	r := newRotation("rot-"+key, key)
	r.Phase, r.NewGeneration = rotator.PhaseAwaitingApproval, 2
	old := &rotator.Credential{Key: key, Generation: 1, Name: key + "-v1", IssuerID: "ka_key_1",
		Fingerprint: rotator.Fingerprint("an older secret"), State: rotator.CredCurrent, CreatedAt: base.Add(-90 * 24 * time.Hour)}
	create(t, s, r, old)
	if err := addApproval(ctx, s, rotator.Approval{RotationID: r.ID, Gate: rotator.GateStart, Approver: "alice",
		Verdict: rotator.VerdictApprove, Via: "slack", At: base}, event(r.ID, key, "approval.approve")); err != nil {
		t.Fatalf("approve: %v", err)
	}
	newCred := &rotator.Credential{Key: key, Generation: 2, Name: key + "-v2", State: rotator.CredPending, RotationID: r.ID, CreatedAt: base}
	step := func(phase rotator.Phase, action string, detail map[string]string, creds ...*rotator.Credential) {
		t.Helper()
		r.Phase, r.PhaseStartedAt, r.UpdatedAt = phase, r.UpdatedAt.Add(time.Minute), r.UpdatedAt.Add(time.Minute)
		ev := event(r.ID, key, action)
		ev.Phase, ev.Detail = phase, detail
		save(t, s, rotator.Commit{Rotation: r, Credentials: creds, Audit: []rotator.AuditEvent{ev}})
	}
	step(rotator.PhaseMinting, "credential.intent", map[string]string{"name": newCred.Name}, newCred)
	newCred.IssuerID, newCred.Fingerprint = "ka_key_2", fp
	short := rotator.ShortFingerprint(fp)
	step(rotator.PhaseStaging, "credential.minted", map[string]string{"fingerprint": short}, newCred)
	step(rotator.PhaseVerifying, "sink.staged", map[string]string{"sink": "vault-prod", "fingerprint": short})
	old.State, newCred.State = rotator.CredPrevious, rotator.CredCurrent
	step(rotator.PhaseDraining, "sink.promoted", map[string]string{"fingerprint": fp}, old, newCred)
	r.Drain = rotator.DrainState{StartedAt: base, QuietSince: base, Polls: 3}
	old.State, old.RevokedAt = rotator.CredRevoked, base.Add(time.Hour)
	step(rotator.PhaseRevoking, "credential.revoked", map[string]string{"generation": "1"}, old)
	r.FinishedAt, r.Outcome = base.Add(2*time.Hour), "done"
	step(rotator.PhaseDone, "rotation.finished", nil)
	if got, err := s.CredentialByFingerprint(ctx, fp); err != nil || len(got) != 1 {
		t.Fatalf("the new credential is not findable by fingerprint: %v, %v", got, err)
	}
}

// testFingerprintedRun checks everything the store returns after a run for
// the secret; store packages check the raw database bytes too.
func testFingerprintedRun(t *testing.T, s rotator.Store) {
	secret := NewSecret()
	RecordRun(t, s, "billing", secret)
	ctx := ctxFor(t)
	var dump strings.Builder
	rs, _ := s.ListRotations(ctx, rotator.RotationFilter{})
	creds, _ := s.Credentials(ctx, "billing")
	evs, _ := s.Audit(ctx, rotator.AuditFilter{})
	apps, _ := s.Approvals(ctx, "rot-billing")
	states, _ := s.KeyStates(ctx)
	for _, v := range []any{rs, creds, evs, apps, states} {
		fmt.Fprintf(&dump, "%+v\n", v)
	}
	for _, r := range rs {
		fmt.Fprintf(&dump, "%+v\n", *r)
	}
	for _, c := range creds {
		fmt.Fprintf(&dump, "%+v\n", *c)
	}
	if strings.Contains(dump.String(), secret.Reveal()) {
		t.Fatal("the store returned the plaintext secret")
	}
	if !strings.Contains(dump.String(), secret.Fingerprint()) {
		t.Fatal("the fingerprint is missing: the check above proves nothing")
	}
	verifyClean(t, s)
}
