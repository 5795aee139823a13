package rotator

import (
	"context"
	"fmt"
	"time"
)

// awaitStart is the start gate of a staged rotation.
func (s *step) awaitStart(ctx context.Context) outcome {
	if s.r.Trigger == TriggerBootstrap || !s.k.Approval.Needs(GateStart) {
		return advance("started", nil)
	}
	o, _ := s.gate(ctx, GateStart, advance("approved", map[string]string{"gate": string(GateStart)}))
	return o
}

// gate evaluates approvals for g: enough → pass (and passed is true); a
// deny → denied (start gate) or rolled back (later gates); expired →
// expired; otherwise hold.
func (s *step) gate(ctx context.Context, g Gate, pass outcome) (o outcome, passed bool) {
	approvals, err := s.e.store.Approvals(ctx, s.r.ID)
	if err != nil {
		return failed(fmt.Errorf("load approvals: %w", err)), false
	}
	yes := map[string]bool{}
	for _, a := range approvals {
		if a.Gate != g {
			continue
		}
		if a.Verdict == VerdictDeny {
			s.r.Outcome = "denied by " + a.Approver
			detail := map[string]string{"gate": string(g), "by": a.Approver}
			if g == GateStart {
				return advance("denied", detail).via(EdgeDenied), false
			}
			s.r.RollbackTo = PhaseDenied
			return advance("denied", detail).via(EdgeUndo), false
		}
		yes[a.Approver] = true
	}
	need := s.k.Approval.RequiredApprovals(g)
	if len(yes) >= need {
		return pass, true
	}
	var until time.Time
	if exp := s.k.Approval.ExpireAfter; exp > 0 {
		until = s.r.PhaseStartedAt.Add(exp)
		if !s.now().Before(until) {
			s.r.Outcome = fmt.Sprintf("approval for %s expired after %s", g, exp)
			if g == GateRevoke {
				s.r.Outcome += "; the old credential was NOT revoked and stays live as previous"
			}
			return advance("expired", map[string]string{"gate": string(g)}).via(EdgeExpired), false
		}
	}
	return holdFor(HoldApproval, fmt.Sprintf("%s approval %d/%d", g, len(yes), need), until, SeverityWarning), false
}
