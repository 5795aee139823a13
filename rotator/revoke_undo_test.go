package rotator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// handRollBack makes sink i serve the previous value as current again, as
// a person restoring an older version by hand after the cut-over.
func (e *env) handRollBack(i int) {
	s := e.sinks[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vals["api"]
	v.cur, v.prev = v.prev, v.cur
}

// heldEvents returns the held notifications of severity sev.
func (n *notes) held(sev rotator.Severity) []rotator.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []rotator.Event
	for _, ev := range n.evs {
		if ev.Kind == rotator.EventHeld && ev.Severity == sev {
			out = append(out, ev)
		}
	}
	return out
}

// A sink that does not hold the new generation as current when the staged
// revoke re-checks it: nothing is revoked, the rotation holds (critical)
// after a few attempts instead of retrying at warning forever, and — the
// old key being live, no revoke issued — a person can still cancel it,
// which rolls it back with the old key current and untouched.
func TestSinkCheckBeforeRevokeHoldsAndCanBeCancelled(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}}
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 100)
	if r.Phase != rotator.PhaseRevoking || r.Hold != rotator.HoldApproval {
		t.Fatalf("want held at the revoke gate, got %s/%s", r.Phase, r.Hold)
	}
	e.handRollBack(1)
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "test"}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if r = e.step(r.ID); r.Hold == rotator.HoldFailed {
			break
		}
		if n := len(e.notes.held(rotator.SeverityCritical)); n > 0 {
			t.Fatalf("critical before the third attempt (%d)", r.Attempts)
		}
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Phase != rotator.PhaseRevoking || r.Hold != rotator.HoldFailed || r.ErrorReason != rotator.ReasonInvariant {
		t.Fatalf("want held (failed, invariant) in revoking, got %s/%s (%s): %s", r.Phase, r.Hold, r.ErrorReason, r.LastError)
	}
	if e.iss.isRevoked(old.IssuerID) || !r.Drain.RevokeIssuedAt.IsZero() {
		t.Fatalf("revoked (or recorded a revoke) though a sink refused the check")
	}
	// Notifications reach the notifier from the dispatcher's goroutine.
	crit := e.notes.held(rotator.SeverityCritical)
	for deadline := time.Now().Add(10 * time.Second); len(crit) == 0 && time.Now().Before(deadline); crit = e.notes.held(rotator.SeverityCritical) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(crit) != 1 || !strings.Contains(crit[0].Message, "nothing was revoked") || !strings.Contains(crit[0].Message, "rekey cancel "+r.ID) {
		t.Fatalf("critical hold notifications: %+v", crit)
	}
	if w := wantWaiting(t, r, rotator.WaitHeld); !strings.Contains(w.LastError, "does not hold generation 2 as current") {
		t.Fatalf("waiting: %+v", w)
	}

	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob@example.com", "sink restored by hand"); err != nil {
		t.Fatalf("cancel before any revoke was issued: %v", err)
	}
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseCancelled {
		t.Fatalf("cancel ended %s/%s: %s", r.Phase, r.Hold, r.LastError)
	}
	c := e.creds()
	if c[1].State != rotator.CredCurrent || e.iss.isRevoked(old.IssuerID) || c[2].State != rotator.CredRevoked || !e.iss.isRevoked(c[2].IssuerID) {
		t.Fatalf("rollback: old %+v new %+v", c[1], c[2])
	}
	for i, s := range e.sinks {
		if got := rotator.Fingerprint(s.current("api")); got != old.Fingerprint {
			t.Fatalf("sink %d serves %s, want the old generation", i, got)
		}
	}
}

// The point of no return is the revoke call, recorded before it is made:
// once the intent is committed — the call may have reached the issuer —
// cancel is refused, even while the call keeps failing.
func TestCancelRefusedOnceRevokeIssued(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.key.Drain.QuietPeriod = 0
	e.iss.revoke = func(rotator.CredentialRef) error { return errors.New("issuer: connection reset") }
	r := e.trigger(rotator.TriggerManual, "")
	for range 50 {
		r = e.step(r.ID)
		if r.Phase == rotator.PhaseRevoking && r.Attempts > 0 {
			break
		}
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Phase != rotator.PhaseRevoking || r.Drain.RevokeIssuedAt.IsZero() {
		t.Fatalf("want revoking with the revoke issued, got %s (issued %v)", r.Phase, r.Drain.RevokeIssuedAt)
	}
	acts := strings.Join(e.actions(r.ID), ",")
	if !strings.Contains(acts, "drained,revoke.intent") {
		t.Fatalf("no revoke intent recorded before the call: %s", acts)
	}
	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob@example.com", ""); !errors.Is(err, rotator.ErrBadState) || !strings.Contains(err.Error(), "point of no return") {
		t.Fatalf("cancel after the revoke was issued: %v", err)
	}
	e.iss.mu.Lock()
	e.iss.revoke = nil
	e.iss.mu.Unlock()
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone || !e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("ended %s/%s, old revoked %v", r.Phase, r.Hold, e.iss.isRevoked(old.IssuerID))
	}
}
