package rotator

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ActorScheduler is the identity rekey's scheduler records as the actor of
// the rotations it starts on its own (age, bootstrap, unexplained 401s).
// It is an internal identity: no person or token may act under it.
const ActorScheduler = "scheduler"

// StartGateApplies reports whether rotation r of key k waits for the key's
// start gate (when the key has one). Every staged rotation does, a
// bootstrap too, except the automatic bootstrap: the scheduler minting
// generation 1 of a key configured with bootstrap: true, which that
// configuration already approved. A bootstrap a person asks for (rekey
// rotate KEY --bootstrap, with or without --recommission) mints a live
// credential on their word alone and so needs the same approvals as any
// rotation of the key.
func StartGateApplies(k *Key, r *Rotation) bool {
	if r.Mode != ModeStaged {
		return false
	}
	return r.Trigger != TriggerBootstrap || r.Actor != ActorScheduler || !k.Bootstrap
}

// awaitStart is the start gate of a staged rotation.
func (s *step) awaitStart(ctx context.Context) outcome {
	if !StartGateApplies(s.k, s.r) || !s.k.Approval.Needs(GateStart) {
		detail := map[string]string(nil)
		if s.r.Trigger == TriggerBootstrap && s.k.Approval.Needs(GateStart) {
			detail = map[string]string{"start_gate": "skipped: automatic bootstrap (bootstrap: true)"}
		}
		return advance("started", detail)
	}
	o, _ := s.gate(ctx, GateStart, advance("approved", map[string]string{"gate": string(GateStart)}), s.k.Approval.RequiredApprovals(GateStart), s.k.Approval.ExpireAfter)
	return o
}

// gate evaluates approvals for g: need distinct people → pass (and passed
// is true); a deny → denied (start gate, contained emergency) or rolled
// back (later gates); expired (expire > 0) → expired; otherwise hold.
// People are compared by their canonical identity. Approvals by people
// who left since they approved are not counted (and the hold says so):
// the gate is evaluated when it passes, and by then they hold no say.
func (s *step) gate(ctx context.Context, g Gate, pass outcome, need int, expire time.Duration) (o outcome, passed bool) {
	approvals, err := s.e.store.Approvals(ctx, s.r.ID)
	if err != nil {
		return failed(fmt.Errorf("load approvals: %w", err)), false
	}
	yes := map[string]bool{}
	var gone []string
	for _, a := range approvals {
		if a.Gate != g {
			continue
		}
		if a.Verdict == VerdictDeny {
			s.r.Outcome = "denied by " + a.Approver
			detail := map[string]string{"gate": string(g), "by": a.Approver}
			if g == GateStart || s.r.Mode == ModeEmergency {
				return advance("denied", detail).via(EdgeDenied), false
			}
			s.r.RollbackTo = PhaseDenied
			return advance("denied", detail).via(EdgeUndo), false
		}
		// An approval counts when the gate passes, not when it was given:
		// one by a person who has left since no longer counts.
		if d, left, err := s.e.Departed(ctx, a.Approver); err != nil {
			return failed(fmt.Errorf("load approvals: %w", err)), false
		} else if left {
			gone = append(gone, d.String())
			continue
		}
		yes[CanonicalIdentity(a.Approver)] = true
	}
	if len(yes) >= need {
		return pass, true
	}
	var until time.Time
	if exp := expire; exp > 0 {
		until = s.r.PhaseStartedAt.Add(exp)
		if !s.now().Before(until) {
			s.r.Outcome = fmt.Sprintf("approval for %s expired after %s", g, exp)
			if g == GateRevoke {
				s.r.Outcome += "; the old credential was NOT revoked and stays live as previous"
			}
			return advance("expired", map[string]string{"gate": string(g)}).via(EdgeExpired), false
		}
	}
	detail := fmt.Sprintf("%s approval %d/%d", g, len(yes), need)
	if len(gone) > 0 {
		detail += fmt.Sprintf(" (not counted: %s; an approval counts only from someone still here when the gate passes)", strings.Join(gone, "; "))
	}
	return holdFor(HoldApproval, detail, until, SeverityWarning).
		hinting(waitHint{deadline: until, progress: &Progress{Done: int64(len(yes)), Of: int64(need), Unit: "approvals"}}), false
}

// CanonicalIdentity is the form in which people are compared: trimmed and
// lower-cased, so that "Alice@example.com " and "alice@example.com" are one
// person for the self-approval and two-person rules.
func CanonicalIdentity(id string) string { return strings.ToLower(strings.TrimSpace(id)) }
