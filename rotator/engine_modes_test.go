package rotator_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func TestApprovalGates(t *testing.T) {
	approve := func(e *env, id, who string) error {
		_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: who, Verdict: rotator.VerdictApprove, Via: "test"})
		return err
	}
	for name, tc := range map[string]struct {
		steps func(t *testing.T, e *env, id string)
		want  rotator.Phase
	}{
		"two distinct approvers start it": {
			steps: func(t *testing.T, e *env, id string) {
				if err := approve(e, id, "bob"); err != nil {
					t.Fatal(err)
				}
				if r := e.run(id, 5); r.Hold != rotator.HoldApproval {
					t.Fatalf("one approval of two passed the gate: %s", r.Phase)
				}
				if err := approve(e, id, "bob"); !errors.Is(err, rotator.ErrDecided) {
					t.Fatalf("second click by the same approver: %v", err)
				}
				if err := approve(e, id, "carol"); err != nil {
					t.Fatal(err)
				}
			},
			want: rotator.PhaseDone,
		},
		"requester cannot approve": {
			steps: func(t *testing.T, e *env, id string) {
				if err := approve(e, id, "tester"); !errors.Is(err, rotator.ErrSelfApproval) {
					t.Fatalf("self approval: %v", err)
				}
				if err := approve(e, id, "mallory"); !errors.Is(err, rotator.ErrNotApprover) {
					t.Fatalf("outsider: %v", err)
				}
			},
			want: rotator.PhaseAwaitingApproval,
		},
		"a token created by the requester cannot approve": {
			steps: func(t *testing.T, e *env, id string) {
				_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "bob", Verdict: rotator.VerdictApprove, Via: "api",
					TokenID: "tok_1", TokenCreator: " Tester"})
				if !errors.Is(err, rotator.ErrSelfApproval) {
					t.Fatalf("approval with a token the requester created: %v", err)
				}
			},
			want: rotator.PhaseAwaitingApproval,
		},
		"a token does not count twice with its creator": {
			steps: func(t *testing.T, e *env, id string) {
				withToken := func(who, creator string) error {
					_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: who, Verdict: rotator.VerdictApprove, Via: "api",
						TokenID: "tok_" + who, TokenCreator: creator})
					return err
				}
				if err := withToken("carol", "bob"); err != nil {
					t.Fatal(err)
				}
				if err := approve(e, id, "bob"); !errors.Is(err, rotator.ErrCountedTwice) {
					t.Fatalf("the creator of the token that approved approves too: %v", err)
				}
				evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: id})
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(evs, func(ev rotator.AuditEvent) bool { return ev.Action == "decision.approve" })
				if i < 0 || evs[i].Actor != "carol" || evs[i].Detail["token"] != "tok_carol" || evs[i].Detail["token_created_by"] != "bob" {
					t.Fatalf("the decision's audit does not name its token and creator: %+v", evs)
				}
			},
			want: rotator.PhaseAwaitingApproval,
		},
		"a creator's token does not count twice with the creator's own approval": {
			steps: func(t *testing.T, e *env, id string) {
				if err := approve(e, id, "bob"); err != nil {
					t.Fatal(err)
				}
				_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "carol", Verdict: rotator.VerdictApprove, Via: "api",
					TokenID: "tok_2", TokenCreator: "Bob"})
				if !errors.Is(err, rotator.ErrCountedTwice) {
					t.Fatalf("a token bob created approves after bob: %v", err)
				}
			},
			want: rotator.PhaseAwaitingApproval,
		},
		"deny ends it": {
			steps: func(t *testing.T, e *env, id string) {
				if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "bob", Verdict: rotator.VerdictDeny}); err != nil {
					t.Fatal(err)
				}
			},
			want: rotator.PhaseDenied,
		},
		"undecided expires": {
			steps: func(t *testing.T, e *env, id string) { e.clock.Advance(25 * time.Hour) },
			want:  rotator.PhaseExpired,
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, Approvers: []string{"bob", "carol", "tester"}, Required: 2, ExpireAfter: 24 * time.Hour}
			e.key.Drain.QuietPeriod = 0
			e.bootstrap()
			r := e.run(e.trigger(rotator.TriggerManual, "").ID, 5)
			if r.Hold != rotator.HoldApproval {
				t.Fatalf("not held for approval: %s", r.Phase)
			}
			tc.steps(t, e, r.ID)
			r = e.run(r.ID, 100)
			if r.Phase != tc.want {
				t.Fatalf("phase %s, want %s", r.Phase, tc.want)
			}
			if tc.want != rotator.PhaseDone && len(e.creds()) != 1 {
				t.Fatal("something was minted without approval")
			}
		})
	}
}

func TestEmergencyRevokesFirst(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.src.set(5, nil) // traffic does not matter in an emergency
	r := e.trigger(rotator.TriggerExposure, "")
	if r.Mode != rotator.ModeEmergency || r.Phase != rotator.PhaseRevoking {
		t.Fatalf("mode %s phase %s", r.Mode, r.Phase)
	}
	r = e.run(r.ID, 50)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}
	calls := e.iss.calls
	ri := slices.Index(calls, "revoke "+old.IssuerID)
	mi := slices.Index(calls, "mint api-v2")
	if ri < 0 || mi < 0 || ri > mi {
		t.Fatalf("revoke must precede mint: %v", calls)
	}
	if rotator.Fingerprint(e.sinks[0].current("api")) != e.creds()[2].Fingerprint {
		t.Fatal("replacement not current")
	}
}

func TestDecommissionRevokesAndRemoves(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	r := e.run(e.trigger(rotator.TriggerDecommission, "").ID, 20)
	if r.Phase != rotator.PhaseDone || e.iss.liveCount() != 0 || e.sinks[0].current("api") != "" {
		t.Fatalf("phase %s live %d sink %q", r.Phase, e.iss.liveCount(), e.sinks[0].current("api"))
	}
	// Minting it again undoes the decommission: only when asked for.
	boot := rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: "tester"}
	if _, err := e.engine.Trigger(e.ctx, boot); !errors.Is(err, rotator.ErrBadState) || !strings.Contains(err.Error(), "--recommission") {
		t.Fatalf("bootstrap of a decommissioned key: %v, want a refusal naming --recommission", err)
	}
	boot.Recommission = true
	again, err := e.engine.Trigger(e.ctx, boot)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.run(again.ID, 20); r.Phase != rotator.PhaseDone || e.engine.Decommissioned(e.ctx, "api") {
		t.Fatalf("recommissioned bootstrap ended %s (still decommissioned: %v)", r.Phase, e.engine.Decommissioned(e.ctx, "api"))
	}
}

// A bootstrap that fails after staging rolls back to nothing: the first
// generation is removed from every sink and revoked at the issuer.
func TestBootstrapRollbackRemovesFirstGeneration(t *testing.T) {
	e := newEnv(t)
	e.sinks[1].failOn("promote", rotator.Permanent(errors.New("sink refuses")))
	r := e.run(e.trigger(rotator.TriggerBootstrap, "").ID, 30)
	if r.Phase != rotator.PhaseFailed {
		t.Fatalf("phase %s hold %s: %s", r.Phase, r.Hold, r.LastError)
	}
	if e.sinks[0].current("api") != "" || e.iss.liveCount() != 0 {
		t.Fatalf("first generation left behind: sink %q, %d live", e.sinks[0].current("api"), e.iss.liveCount())
	}
}
