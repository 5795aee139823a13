package rotator_test

import (
	"testing"
	"time"

	"github.com/rekeyhq/rekey/policies"
	"github.com/rekeyhq/rekey/rotator"
)

// A previous generation left live (its revoke approval expired) that shows
// traffic is revoked at once by the scheduler's evaluation, with the
// evidence in the reason; without traffic nothing happens.
func TestUnexplainedTrafficOnLingeringCredentialRevokesIt(t *testing.T) {
	e := newEnv(t)
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, ExpireAfter: time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.key.Policies = []rotator.Policy{policies.Unauthorized{}}
	e.key.Unauthorized = &rotator.TrafficWatch{Source: e.src, SourceName: "scripted", Query: "q"}
	e.bootstrap()
	old := e.creds()[1]
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 20)
	if r.Hold != rotator.HoldApproval {
		t.Fatalf("want held at the revoke gate, got %s/%s", r.Phase, r.Hold)
	}
	e.clock.Advance(2 * time.Hour)
	if r = e.run(r.ID, 5); r.Phase != rotator.PhaseExpired {
		t.Fatalf("phase %s, want expired", r.Phase)
	}
	if c := e.creds()[1]; c.State != rotator.CredPrevious || e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("generation 1 should linger live: %s", c.State)
	}
	if err := e.engine.Evaluate(e.ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.store.ActiveRotation(e.ctx, "api"); a != nil {
		t.Fatalf("quiet lingering credential started %s", a.ID)
	}
	e.src.set(0.5, nil)
	if err := e.engine.Evaluate(e.ctx); err != nil {
		t.Fatal(err)
	}
	a, err := e.store.ActiveRotation(e.ctx, "api")
	if err != nil || a.Trigger != rotator.TriggerUnauthorized || a.Mode != rotator.ModeEmergency || a.TargetGeneration != 1 {
		t.Fatalf("rotation %+v err %v", a, err)
	}
	if r = e.run(a.ID, 30); r.Phase != rotator.PhaseDone || !e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("phase %s, lingering revoked %v", r.Phase, e.iss.isRevoked(old.IssuerID))
	}
	if cur := e.creds()[2]; cur.State != rotator.CredCurrent || e.iss.isRevoked(cur.IssuerID) {
		t.Fatal("the current credential must stay current and live")
	}
}
