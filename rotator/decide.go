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
	// TokenID is the API token the decision was made with, if any, and
	// TokenCreator the person who created that token. Whoever creates a
	// token saw it once: a decision made with it is also theirs, for the
	// self-approval and two-person rules, and both are audited.
	TokenID      string
	TokenCreator string
	// Responder: the caller checked that the approver may take emergencies
	// on the key (the admin API's responder role). At the containment gate
	// of a contained emergency that is what decides, and the key's
	// approval.approvers does not apply; without it (a Slack click, which
	// carries no role) the approvers list applies as at any gate.
	Responder bool
}

// people is who stands behind the decision: the approver and, for a
// token, the person who created it.
func (req ApproveRequest) people() []string {
	out := []string{CanonicalIdentity(req.Approver)}
	if c := CanonicalIdentity(req.TokenCreator); c != "" && c != out[0] {
		out = append(out, c)
	}
	return out
}

// Errors of approvals.
var (
	ErrNotApprover  = errors.New("not an allowed approver")
	ErrSelfApproval = errors.New("the requester cannot approve their own rotation")
	ErrNoGate       = errors.New("rotation is not waiting for a decision")
	ErrDecided      = errors.New("already decided")
	// ErrCountedTwice: the decision would let one person count twice on a
	// gate (their own decision and one made with a token they created).
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
// Checks, in order: the rotation waits on a gate; the approver is allowed
// (the key's approval.approvers, except for a responder at a containment
// gate) and neither they nor the creator of the token they used is
// the requester; nobody behind the decision has decided this gate already.
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
	if !(req.Responder && Containment(r, g)) && len(k.Approval.Approvers) > 0 &&
		!slices.ContainsFunc(k.Approval.Approvers, func(a string) bool { return CanonicalIdentity(a) == CanonicalIdentity(req.Approver) }) {
		return r, fmt.Errorf("%s: %w for key %s", req.Approver, ErrNotApprover, r.Key)
	}
	if req.Verdict == VerdictApprove && slices.Contains(req.people(), CanonicalIdentity(r.Actor)) {
		if CanonicalIdentity(req.Approver) == CanonicalIdentity(r.Actor) {
			return r, fmt.Errorf("%s: %w", req.Approver, ErrSelfApproval)
		}
		return r, fmt.Errorf("%s with token %s created by %s: %w (through a token they created for someone else)",
			req.Approver, req.TokenID, req.TokenCreator, ErrSelfApproval)
	}
	now := e.clock.Now()
	a := Approval{RotationID: r.ID, Gate: g, Approver: req.Approver, Verdict: req.Verdict, Via: req.Via, Comment: req.Comment, At: now}
	detail := map[string]string{"gate": string(g), "via": req.Via, "comment": req.Comment}
	if req.TokenID != "" {
		detail["token"] = req.TokenID
		detail["token_created_by"] = req.TokenCreator
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

// gateDeciders checks req against the approvals already given on gate g
// of a rotation, from the audit trail (which records, with each decision,
// the creator of the token it was made with): an approval is refused when
// its approver already approved g, when the creator of its token approved
// g themselves, or when its approver created the token of an earlier
// approval on g — a token's decision never counts twice with its
// creator's. Two tokens one person created for two others count as those
// two people (one admin usually creates everyone's tokens); the audit
// names the creator of each. It returns how many approvals g holds.
func (e *Engine) gateDeciders(ctx context.Context, rotationID string, g Gate, req ApproveRequest) (int, error) {
	evs, err := e.store.Audit(ctx, AuditFilter{RotationID: rotationID})
	if err != nil {
		return 0, fmt.Errorf("load decisions: %w", err)
	}
	me, myCreator := CanonicalIdentity(req.Approver), CanonicalIdentity(req.TokenCreator)
	yes := 0
	for _, ev := range evs {
		if ev.Action != "decision."+string(VerdictApprove) || ev.Detail["gate"] != string(g) {
			continue
		}
		yes++
		if req.Verdict != VerdictApprove {
			continue
		}
		they, theirCreator := CanonicalIdentity(ev.Actor), CanonicalIdentity(ev.Detail["token_created_by"])
		switch {
		case me == they:
			return yes, fmt.Errorf("%s on %s: %w", req.Approver, g, ErrDecided)
		case myCreator != "" && myCreator == they, theirCreator != "" && theirCreator == me:
			return yes, fmt.Errorf("%s (token created by %s) already approved the %s gate; %s (token created by %s) would count one person twice: %w",
				ev.Actor, orNone(theirCreator), g, req.Approver, orNone(myCreator), ErrCountedTwice)
		}
	}
	return yes, nil
}

func orNone(s string) string {
	if s == "" {
		return "nobody: no token used"
	}
	return s
}

func pastTense(v Verdict) string {
	if v == VerdictDeny {
		return "denied"
	}
	return "approved"
}
