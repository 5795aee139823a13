package storetest

import (
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testLeaseTakeover is the takeover a partitioned daemon must not undo: a
// holds the rotation, its lease runs out, b takes over and commits (the
// version moves on, and b writes generation 2 of the key). a's late commit
// must fail with ErrLeaseLost — not a plain version conflict, which the
// engine answers by keeping its credentials — and a's credential-only commit
// under its lost lease must write nothing: b's generation 2 stays b's.
func testLeaseTakeover(t *testing.T, s rotator.Store) {
	create(t, s, newRotation("rot-1", "k"))
	ctx := ctxFor(t)
	a, ok, err := s.Claim(ctx, "rot-1", "a", -time.Second) // ran out at once
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if a.RotationID != "rot-1" {
		t.Fatalf("lease %+v does not name its rotation", a)
	}
	ra := get(t, s, "rot-1")
	b, ok, err := s.Claim(ctx, "rot-1", "b", time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	minted := func(owner string) *rotator.Credential {
		c := cred("k", 2, rotator.CredPending)
		c.RotationID, c.IssuerID, c.Name = "rot-1", owner+"-issued", owner+"-v2"
		return c
	}
	rb := get(t, s, "rot-1")
	rb.Phase, rb.NewGeneration = rotator.PhaseStaging, 2
	if err := s.Save(ctx, rotator.Commit{Rotation: rb, Lease: &b, Credentials: []*rotator.Credential{minted("b")},
		Audit: []rotator.AuditEvent{{At: base, RotationID: "rot-1", Key: "k", Actor: "b", Action: "step"}}}); err != nil {
		t.Fatalf("commit by the new holder: %v", err)
	}
	ra.Phase, ra.NewGeneration = rotator.PhaseStaging, 2
	err = s.Save(ctx, rotator.Commit{Rotation: ra, Lease: &a, Credentials: []*rotator.Credential{minted("a")}})
	wantErr(t, "the stale holder's commit after a takeover and a new commit", err, rotator.ErrLeaseLost)
	// What the engine does after a conflict: keep its credentials, fenced.
	err = s.Save(ctx, rotator.Commit{Lease: &a, Credentials: []*rotator.Credential{minted("a")},
		Audit:  []rotator.AuditEvent{{At: base, RotationID: "rot-1", Key: "k", Actor: "a", Action: "step"}},
		Outbox: []rotator.Notification{{Notifier: "n", Event: rotator.Event{ID: "a-late", Kind: rotator.EventStarted, RotationID: "rot-1", Key: "k"}}}})
	wantErr(t, "the stale holder's credential-only commit", err, rotator.ErrLeaseLost)
	holderOf := func() string {
		t.Helper()
		list, err := s.Credentials(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if c.Generation == 2 {
				return c.IssuerID
			}
		}
		return ""
	}
	if got := holderOf(); got != "b-issued" {
		t.Fatalf("generation 2 is %q after the stale holder's commits, want b's (b-issued)", got)
	}
	evs, err := s.Audit(ctx, rotator.AuditFilter{RotationID: "rot-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countActions(evs, "step"); n != 1 {
		t.Fatalf("audit has %d step events, want only the new holder's", n)
	}
	if o, ok := s.(rotator.Outbox); ok {
		due, err := o.DueOutbox(ctx, "n", time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 0 {
			t.Fatalf("the fenced commit queued %d notifications", len(due))
		}
	}
	// The holder's own credential-only commit applies; a lease that names
	// no rotation fences nothing and is refused.
	c := minted("b")
	c.State = rotator.CredCurrent
	if err := s.Save(ctx, rotator.Commit{Lease: &b, Credentials: []*rotator.Credential{c}}); err != nil {
		t.Fatalf("the holder's credential-only commit: %v", err)
	}
	if err := s.Save(ctx, rotator.Commit{Lease: &rotator.Lease{Owner: "b", Epoch: b.Epoch}, Credentials: []*rotator.Credential{minted("x")}}); err == nil {
		t.Fatal("a credential-only commit under a lease of no rotation succeeded")
	}
	if got := holderOf(); got != "b-issued" {
		t.Fatalf("generation 2 is %q, want b-issued", got)
	}
	// A lease that ran out, even with nobody claiming it since, fences too.
	if _, ok, err := s.Claim(ctx, "rot-1", "b", -time.Second); err != nil || !ok {
		t.Fatal(ok, err)
	}
	b2 := b
	b2.Epoch++
	err = s.Save(ctx, rotator.Commit{Lease: &b2, Credentials: []*rotator.Credential{minted("late")}})
	wantErr(t, "a credential-only commit under an expired lease", err, rotator.ErrLeaseLost)
	if got := holderOf(); got != "b-issued" {
		t.Fatalf("generation 2 is %q, want b-issued", got)
	}
	verifyClean(t, s)
}
