package rotator

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ApproveRequest is a human decision.
type ApproveRequest struct {
	RotationID string
	// Gate, if set, must be the gate the rotation waits on (a stale Slack
	// button must not decide a newer gate).
	Gate     Gate
	Approver string
	Verdict  Verdict
	Via      string
	Comment  string
	// TokenID is the API token the decision was made with, if any,
	// TokenCreator the person who created that token and TokenChain the
	// people behind it (its creator first, then the creator of the token
	// they used, and so on: auth.Principal.TokenChain). Whoever is in the
	// chain could have kept the token: for the self-approval and
	// two-person rules the decision is theirs too, and all are audited.
	TokenID      string
	TokenCreator string
	TokenChain   []string
	// Responder: the caller checked that the approver may take emergencies
	// on the key (the admin API's responder role). At the containment gate
	// of a contained emergency that is what decides, and the key's
	// approval.approvers does not apply; without it (a Slack click, which
	// carries no role) the approvers list applies as at any gate.
	Responder bool
}

// side is who stands behind the decision: the approver and the people
// behind their token.
func (req ApproveRequest) side() side {
	return sideOf(req.Approver, append([]string{req.TokenCreator}, req.TokenChain...)...)
}

// Errors of approvals.
var (
	ErrNotApprover  = errors.New("not an allowed approver")
	ErrSelfApproval = errors.New("the requester cannot approve their own rotation")
	ErrNoGate       = errors.New("rotation is not waiting for a decision")
	ErrDecided      = errors.New("already decided")
	// ErrCountedTwice: the decision would let one person count twice on a
	// gate (their own decision and one made with a token they created, or
	// one created from a token they created, and so on).
	ErrCountedTwice = errors.New("one person counts once on a gate")
)

// PendingGate returns the gate a rotation waits on, if any.
func PendingGate(r *Rotation) (Gate, bool) {
	switch {
	case r.Phase == PhaseAwaitingApproval:
		return GateStart, true
	case r.Phase == PhaseRevoking && r.Hold == HoldApproval:
		return GateRevoke, true
	case r.Phase == PhaseDraining && r.Hold == HoldDrainTimeout:
		return GateDrain, true
	}
	return "", false
}

// Containment reports whether g of r is the containment gate of a contained
// emergency: its revoke is a responder's decision (the caller checks the
// role and says so with ApproveRequest.Responder), whatever the key's
// approval.approvers.
func Containment(r *Rotation, g Gate) bool {
	return r.Mode == ModeEmergency && r.Contain != "" && g == GateRevoke
}

// Decide records an approval or denial for the gate the rotation waits on.
// Checks, in order: the rotation waits on a gate; the approver has not
// left (Departed: a departed person's decisions no longer count, through
// any channel); the approver is allowed
// (the key's approval.approvers, except for a responder at a containment
// gate); the approval and the request are two people (people.go: the
// approver is nobody behind the request, the requester nobody behind the
// approver's token); the approval and each earlier one on the gate are two
// people likewise.
// A decision at a drain timeout also records the request it makes (revoke
// anyway, or roll back), in the same commit.
func (e *Engine) Decide(ctx context.Context, req ApproveRequest) (*Rotation, error) {
	r, err := e.store.GetRotation(ctx, req.RotationID)
	if err != nil {
		return nil, err
	}
	k, ok := e.keys[r.Key]
	if !ok {
		return nil, fmt.Errorf("key %q is no longer configured: %w", r.Key, ErrNotFound)
	}
	g, ok := PendingGate(r)
	if !ok || r.Phase.Terminal() || req.Gate != "" && req.Gate != g {
		return r, fmt.Errorf("rotation %s (%s): %w", r.ID, r.Phase, ErrNoGate)
	}
	if req.Approver == "" {
		return r, fmt.Errorf("approver is required: %w", ErrNotApprover)
	}
	if err := e.refuseDeparted(ctx, req.Approver, "decisions"); err != nil {
		return r, err
	}
	if !(req.Responder && Containment(r, g)) && len(k.Approval.Approvers) > 0 &&
		!slices.ContainsFunc(k.Approval.Approvers, func(a string) bool { return CanonicalIdentity(a) == CanonicalIdentity(req.Approver) }) {
		return r, fmt.Errorf("%s: %w for key %s", req.Approver, ErrNotApprover, r.Key)
	}
	me := req.side()
	if req.Verdict == VerdictApprove {
		asked, err := e.requestSide(ctx, r)
		if err != nil {
			return r, err
		}
		switch who := shared(me, asked); {
		case who == "":
		case me.actor == asked.actor:
			return r, fmt.Errorf("%s: %w", req.Approver, ErrSelfApproval)
		case who == me.actor:
			return r, fmt.Errorf("%s is behind the token this rotation was requested with (people behind the request: %s): %w",
				req.Approver, asked, ErrSelfApproval)
		default:
			return r, fmt.Errorf("%s with token %s created by %s (people behind it: %s): %w (through a token they are behind)",
				req.Approver, req.TokenID, req.TokenCreator, me, ErrSelfApproval)
		}
	}
	now := e.clock.Now()
	a := Approval{RotationID: r.ID, Gate: g, Approver: req.Approver, Verdict: req.Verdict, Via: req.Via, Comment: req.Comment, At: now}
	detail := map[string]string{"gate": string(g), "via": req.Via, "comment": req.Comment}
	if req.TokenID != "" {
		detail["token"] = req.TokenID
		detail["token_created_by"] = req.TokenCreator
		detail[detailTokenChain] = peopleText(me.behind[1:])
	}
	out, err := e.update(ctx, r.ID, func(r *Rotation, ch *change) error {
		if cur, ok := PendingGate(r); !ok || cur != g || r.Phase.Terminal() {
			return fmt.Errorf("rotation %s (%s): %w", r.ID, r.Phase, ErrNoGate)
		}
		// Read within the update: a decision committed meanwhile changes
		// the rotation's version, and this check runs again.
		yes, err := e.gateDeciders(ctx, r.ID, g, req)
		if err != nil {
			return err
		}
		ch.Approvals = append(ch.Approvals, a)
		ch.Audit = append(ch.Audit, AuditEvent{At: now, RotationID: r.ID, Key: r.Key, Actor: req.Approver, Action: "decision." + string(req.Verdict), Phase: r.Phase,
			Detail: detail})
		ch.events = append(ch.events, Event{ID: r.ID + "-" + randomHex(4), Kind: EventApproval, Severity: SeverityInfo, Key: r.Key, RotationID: r.ID,
			Phase: r.Phase, Trigger: r.Trigger, Mode: r.Mode, Actor: req.Approver, Owners: k.Owners, At: now,
			Message: fmt.Sprintf("%s %s the %s gate of %s (via %s)", req.Approver, pastTense(req.Verdict), g, r.Key, req.Via),
			Fields:  map[string]string{"gate": string(g), "verdict": string(req.Verdict), "approver": req.Approver}})
		if g != GateDrain {
			if req.Verdict == VerdictApprove {
				countApproval(r, g, yes+1)
			}
			return nil
		}
		if r.Request.Kind != "" {
			return fmt.Errorf("%s on %s: %w", req.Approver, g, ErrDecided)
		}
		// A drain-timeout decision acts at once once enough people agree:
		// approve = revoke anyway, deny = roll back.
		if req.Verdict == VerdictApprove && yes+1 < k.Approval.RequiredApprovals(GateDrain) {
			return nil
		}
		r.Request = Request{Kind: RequestRevokeNow, By: req.Approver, Reason: "revoke", At: now}
		if req.Verdict == VerdictDeny {
			r.Request = Request{Kind: RequestRollBack, By: req.Approver, To: PhaseDenied, At: now,
				Reason: "rolled back by " + req.Approver + " after the drain timed out"}
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if g == GateDrain {
		if served := e.serveNow(ctx, r.ID); served != nil {
			return served, nil
		}
	}
	return out, nil
}

// countApproval shows an approval in the rotation's waiting state at
// once, so that whoever approved reads "1/2" in the answer rather than
// the count from before their decision; the gate step, which runs next,
// decides on the approvals themselves and sets the state again.
func countApproval(r *Rotation, g Gate, yes int) {
	w := r.Waiting
	if r.Hold != HoldApproval || w == nil || w.Reason != WaitApproval || w.Progress == nil || w.Progress.Unit != "approvals" {
		return
	}
	p := *w.Progress
	p.Done = min(int64(yes), p.Of)
	w.Progress = &p
	r.HoldDetail = fmt.Sprintf("%s approval %d/%d", g, p.Done, p.Of)
	w.Detail = r.HoldDetail
}

// gateDeciders checks req against the approvals already given on gate g
// of a rotation, from the audit trail (which records, with each decision,
// the chain of the token it was made with): an approval is refused when
// its approver already approved g, or when it and an earlier approval are
// one person (people.go: the approver of one is behind the other's
// token) — a token's decision never counts twice with the decision of
// anyone behind it. Two tokens one person created for two others count as
// those two people (one admin usually creates everyone's tokens); the
// audit names the chain of each. It returns how many approvals g holds,
// not counting those of people who left since they approved.
func (e *Engine) gateDeciders(ctx context.Context, rotationID string, g Gate, req ApproveRequest) (int, error) {
	evs, err := e.store.Audit(ctx, AuditFilter{RotationID: rotationID})
	if err != nil {
		return 0, fmt.Errorf("load decisions: %w", err)
	}
	me := req.side()
	yes := 0
	for _, ev := range evs {
		if ev.Action != "decision."+string(VerdictApprove) || ev.Detail["gate"] != string(g) {
			continue
		}
		if _, gone, err := e.Departed(ctx, ev.Actor); err != nil {
			return 0, fmt.Errorf("load decisions: %w", err)
		} else if gone {
			continue // left since: their approval no longer counts (step_gate.go)
		}
		yes++
		if req.Verdict != VerdictApprove {
			continue
		}
		they := decisionSide(ev)
		switch who := shared(me, they); {
		case who == "":
		case me.actor == they.actor:
			return yes, fmt.Errorf("%s on %s: %w", req.Approver, g, ErrDecided)
		default:
			return yes, fmt.Errorf("%s (people behind: %s) already approved the %s gate; %s (people behind: %s) would count %s twice: %w",
				ev.Actor, they, g, req.Approver, me, who, ErrCountedTwice)
		}
	}
	return yes, nil
}

func pastTense(v Verdict) string {
	if v == VerdictDeny {
		return "denied"
	}
	return "approved"
}
