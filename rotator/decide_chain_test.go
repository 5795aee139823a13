package rotator_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// TestApprovalTokenChains: the people behind a token (its creator, the
// creator of the token they used, …) stand behind what it does. A request
// and an approval, or two approvals of a gate, are one person when the one
// who acts on one side is behind the other; a creator who is behind both
// only as a creator does not make them one.
func TestApprovalTokenChains(t *testing.T) {
	type decision struct {
		who   string
		chain []string // the token's chain; none: no token
		err   error
	}
	for name, tc := range map[string]struct {
		requestBehind []string // the chain of the requester's (tester's) token
		decisions     []decision
		want          rotator.Phase
	}{
		"the requester deep in the approver's chain": {
			decisions: []decision{{who: "carol", chain: []string{"bob", "tester"}, err: rotator.ErrSelfApproval}},
			want:      rotator.PhaseAwaitingApproval,
		},
		"the approver behind the requester's token": {
			requestBehind: []string{"bob"},
			decisions:     []decision{{who: "bob", err: rotator.ErrSelfApproval}, {who: "carol", chain: []string{"dave", "bob"}}},
			want:          rotator.PhaseAwaitingApproval,
		},
		"an earlier approver deep in the chain": {
			decisions: []decision{{who: "bob"}, {who: "carol", chain: []string{"dave", "bob"}, err: rotator.ErrCountedTwice}},
			want:      rotator.PhaseAwaitingApproval,
		},
		"a later approver deep in an earlier chain": {
			decisions: []decision{{who: "carol", chain: []string{"dave", "bob"}}, {who: "bob", err: rotator.ErrCountedTwice}},
			want:      rotator.PhaseAwaitingApproval,
		},
		"one creator behind every token": {
			requestBehind: []string{"admin"},
			decisions:     []decision{{who: "bob", chain: []string{"admin"}}, {who: "carol", chain: []string{"admin"}}},
			want:          rotator.PhaseDone,
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, Approvers: []string{"bob", "carol", "tester"}, Required: 2, ExpireAfter: 24 * time.Hour}
			e.key.Drain.QuietPeriod = 0
			e.bootstrap()
			r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "tester", Reason: "test", Behind: tc.requestBehind})
			if err != nil {
				t.Fatal(err)
			}
			if r = e.run(r.ID, 5); r.Hold != rotator.HoldApproval {
				t.Fatalf("not held for approval: %s", r.Phase)
			}
			for _, d := range tc.decisions {
				req := rotator.ApproveRequest{RotationID: r.ID, Approver: d.who, Verdict: rotator.VerdictApprove, Via: "api"}
				if len(d.chain) > 0 {
					req.TokenID, req.TokenCreator, req.TokenChain = "tok_"+d.who, d.chain[0], d.chain
				}
				if _, err := e.engine.Decide(e.ctx, req); !errors.Is(err, d.err) || (d.err == nil) != (err == nil) {
					t.Fatalf("%s with chain %v: err = %v, want %v", d.who, d.chain, err, d.err)
				}
			}
			if r = e.run(r.ID, 100); r.Phase != tc.want {
				t.Fatalf("phase %s, want %s", r.Phase, tc.want)
			}
			evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: r.ID})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Action != "decision.approve" || ev.Detail["token"] == "" {
					continue
				}
				i := slices.IndexFunc(tc.decisions, func(d decision) bool { return d.who == ev.Actor })
				if want, _ := json.Marshal(tc.decisions[i].chain); ev.Detail["token_chain"] != string(want) {
					t.Errorf("%s's decision audits the chain %q, want %q", ev.Actor, ev.Detail["token_chain"], want)
				}
			}
		})
	}
}
