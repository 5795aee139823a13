package rotator_test

import (
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// twoPersonStart gives the key a start and revoke gate that two of three
// approvers must pass.
func twoPersonStart(bootstrap bool) envOpt {
	return func(e *env) {
		e.key.Bootstrap = bootstrap
		e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart, rotator.GateRevoke},
			Approvers: []string{"a@example.com", "b@example.com", "operator@example.com"}, Required: 2}
	}
}

// A bootstrap a person asks for mints a live credential on their word:
// it waits for the key's start gate like any rotation, and the person
// cannot approve it themselves.
func TestBootstrapByPersonHonoursStartGate(t *testing.T) {
	e := newEnv(t, twoPersonStart(false))
	r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: "operator@example.com", Reason: "first key"})
	if err != nil {
		t.Fatal(err)
	}
	r = e.run(r.ID, 20)
	if r.Phase != rotator.PhaseAwaitingApproval || r.Hold != rotator.HoldApproval {
		t.Fatalf("a person's bootstrap of a gated key went to %s/%s without approval", r.Phase, r.Hold)
	}
	if e.iss.liveCount() != 0 || len(e.creds()) != 0 {
		t.Fatalf("minted before the start gate: %d live", e.iss.liveCount())
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "operator@example.com", Verdict: rotator.VerdictApprove, Via: "test"}); err == nil {
		t.Fatal("the requester approved their own bootstrap")
	}
	for _, who := range []string{"a@example.com", "b@example.com"} {
		if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: who, Verdict: rotator.VerdictApprove, Via: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if r = e.run(r.ID, 50); r.Phase != rotator.PhaseDone {
		t.Fatalf("approved bootstrap ended %s/%s: %s", r.Phase, r.Hold, r.LastError)
	}
	if c := e.creds()[1]; c == nil || c.State != rotator.CredCurrent {
		t.Fatalf("no current generation 1 after the approved bootstrap: %+v", c)
	}
}

// The automatic bootstrap — the scheduler minting generation 1 of a key
// configured with bootstrap: true — skips the start gate: that
// configuration is the approval. The scheduler's name alone is not: for a
// key with bootstrap: false it waits like a person's.
func TestAutomaticBootstrapSkipsStartGateOnlyWhenConfigured(t *testing.T) {
	tests := map[string]struct {
		bootstrap bool
		actor     string
		gated     bool
	}{
		"scheduler, bootstrap: true":  {bootstrap: true, actor: rotator.ActorScheduler, gated: false},
		"scheduler, bootstrap: false": {bootstrap: false, actor: rotator.ActorScheduler, gated: true},
		"person, bootstrap: true":     {bootstrap: true, actor: "operator@example.com", gated: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, twoPersonStart(tc.bootstrap))
			r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: tc.actor, Reason: "no credential yet"})
			if err != nil {
				t.Fatal(err)
			}
			if got := rotator.StartGateApplies(e.key, r); got != tc.gated {
				t.Fatalf("StartGateApplies = %v, want %v", got, tc.gated)
			}
			r = e.run(r.ID, 50)
			switch {
			case tc.gated && (r.Phase != rotator.PhaseAwaitingApproval || len(e.creds()) != 0):
				t.Fatalf("ended %s/%s with %d credential(s); want held at the start gate", r.Phase, r.Hold, len(e.creds()))
			case !tc.gated && r.Phase != rotator.PhaseDone:
				t.Fatalf("automatic bootstrap ended %s/%s: %s", r.Phase, r.Hold, r.LastError)
			}
		})
	}
}
