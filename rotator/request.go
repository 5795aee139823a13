package rotator

import (
	"context"
	"fmt"
	"time"
)

// RequestKind is what a command asks of a rotation.
type RequestKind string

const (
	RequestNone RequestKind = ""
	// RequestRollBack: cancel, a deny after the start gate, or an exposure
	// that supersedes a staged rotation. Reason becomes the outcome; To is
	// the terminal phase the rollback ends in.
	RequestRollBack RequestKind = "roll_back"
	// RequestRevokeNow: revoke the old credential without waiting for the
	// drain gate (Reason "revoke": a person approved at a drain timeout;
	// "exposure": the old key leaked, which also skips the revoke gate).
	RequestRevokeNow RequestKind = "revoke_now"
	// RequestRetry: clear a permanent-failure or drain-timeout hold and run
	// the phase again (a drain timeout waits a fresh max_wait).
	RequestRetry RequestKind = "retry"
	// RequestConfirm: a person revoked a credential by hand (manual issuer).
	RequestConfirm RequestKind = "confirm"
)

// Request is a command recorded on a rotation. Commands never move a
// rotation themselves: they validate, record the request (with the
// decision's audit event) and wake the engine; the interpreter acts on it
// before the next step, in the same way whichever daemon holds the lease.
type Request struct {
	Kind RequestKind `json:"kind,omitempty"`
	// Command names the audit action of acting on it ("cancel"); empty:
	// the kind's own.
	Command string `json:"command,omitempty"`
	By      string `json:"by,omitempty"`
	Reason  string `json:"reason,omitempty"`
	To      Phase  `json:"to,omitempty"`
	// Verified (confirm): "true" the probe found the credential revoked,
	// "false" nothing could probe it, "forced" a person insisted.
	Verified string `json:"verified,omitempty"`
	// Urgent (roll back): revoke the new generation without waiting for
	// consumers to move back (Rotation.Drain.Urgent).
	Urgent bool      `json:"urgent,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// serve acts on the rotation's pending request.
func (d *driver) serve(ctx context.Context) (bool, bool) {
	r, req := d.r, d.r.Request
	r.Request = Request{}
	detail := map[string]string{"request": string(req.Kind)}
	if req.Reason != "" {
		detail["reason"] = req.Reason
	}
	refuse := func(why string) (bool, bool) {
		detail["why"] = why
		d.audit(req.By, "request.refused", detail)
		d.event(EventHeld, SeverityWarning, fmt.Sprintf("%s: %s by %s not applied: %s", r.Key, req.Kind, req.By, why), detail)
		return d.commit(ctx, true)
	}
	switch req.Kind {
	case RequestRollBack:
		if r.Phase == PhaseRollingBack {
			return d.commit(ctx, true) // already rolling back
		}
		spec, _ := LifecycleOf(r).Spec(r.Phase)
		undo, ok := spec.Next[EdgeUndo]
		if !ok || !canUndo(r) {
			return refuse(fmt.Sprintf("past the point of no return (%s)", r.Phase))
		}
		r.RollbackTo = req.To
		if !r.RollbackTo.Terminal() {
			r.RollbackTo = PhaseCancelled
		}
		r.Outcome = req.Reason
		if req.Urgent {
			r.Drain.Urgent = true
			detail["urgent"] = "true"
		}
		d.enter(undo, req.By, cmpOr(req.Command, "rollback"), detail)
	case RequestRevokeNow:
		if r.Mode != ModeStaged || r.Phase != PhaseDraining && r.Phase != PhaseRevoking {
			return refuse(fmt.Sprintf("not draining or revoking (%s)", r.Phase))
		}
		r.Drain.Override, r.Drain.OverrideBy = req.Reason, req.By
		if r.Hold == HoldApproval || r.Hold == HoldDrainTimeout {
			r.Hold, r.HoldDetail = HoldNone, ""
		}
		r.NextAttemptAt = d.now()
		d.audit(req.By, "drain.override", detail)
	case RequestRetry:
		switch {
		case r.Hold == HoldFailed:
		case r.Hold == HoldDrainTimeout:
			r.Drain = DrainState{}
		case r.Hold == HoldNone && r.Attempts > 0:
		default:
			return refuse("nothing to retry")
		}
		r.Hold, r.HoldDetail, r.Attempts, r.NextAttemptAt = HoldNone, "", 0, d.now()
		d.audit(req.By, "retry", detail)
	case RequestConfirm:
		if !awaitsConfirm(r, d.creds) {
			return refuse("not waiting for a confirmation")
		}
		var names []string
		for _, c := range confirmTargets(r, d.creds) {
			cc := *c
			cc.State, cc.RevokedAt = CredRevoked, d.now()
			d.buf.creds = append(d.buf.creds, &cc)
			if d.buf.stated == nil {
				d.buf.stated = map[int]bool{}
			}
			d.buf.stated[c.Generation] = true
			d.creds[c.Generation] = &cc
			names = append(names, c.Name)
		}
		detail["credentials"] = fmt.Sprint(names)
		detail["verified"] = cmpOr(req.Verified, "false")
		switch {
		case r.Hold == HoldConfirm:
			r.Hold, r.HoldDetail = HoldNone, ""
		case r.Lifecycle == lifecycleByHand && r.Hold == HoldSecret:
			// The answer to confirm, and what the rotation waits for, say
			// what just happened, not the LEAKED text from before.
			r.HoldDetail = confirmedWaitingDetail(r, d.creds, names)
		}
		// An emergency by hand may still wait for the replacement: its
		// step runs again and says that the leak is now contained.
		r.NextAttemptAt = d.now()
		d.audit(req.By, "revoke.confirmed", detail)
	default:
		return refuse("unknown request")
	}
	return d.commit(ctx, true)
}

// confirmedWaitingDetail is what an emergency by hand waits for once the
// leaked key is confirmed revoked and its replacement not yet submitted.
func confirmedWaitingDetail(r *Rotation, creds map[int]*Credential, names []string) string {
	leaked := fmt.Sprint(names)
	if len(names) == 1 {
		leaked = names[0]
	}
	replacement := fmt.Sprintf("generation %d", r.NewGeneration)
	if c := creds[r.NewGeneration]; c != nil {
		replacement = c.Name
	}
	return fmt.Sprintf("the leaked key %s is confirmed revoked; consumers of %s have no working key until its replacement %s is submitted (rekey submit %s)",
		leaked, r.Key, replacement, r.ID)
}

// confirmTargets are the credentials a confirmation says were revoked by
// hand: the new one while rolling back, the old one in a staged revoke,
// the exposed (or, decommissioning, every live) one in an emergency.
func confirmTargets(r *Rotation, creds map[int]*Credential) []*Credential {
	var out []*Credential
	add := func(c *Credential) {
		if c != nil && c.State != CredRevoked {
			out = append(out, c)
		}
	}
	switch {
	case r.Phase == PhaseRollingBack:
		add(creds[r.NewGeneration])
	case r.Phase == PhaseRevoking && r.Mode == ModeStaged:
		add(creds[r.OldGeneration])
	case r.Lifecycle == lifecycleByHand:
		add(creds[r.TargetGeneration])
	case r.Phase == PhaseRevoking:
		for _, c := range creds {
			if r.Trigger == TriggerDecommission || c.Generation == r.TargetGeneration {
				add(c)
			}
		}
	}
	return out
}

// request records req on rotation id after check accepts the rotation as
// it is (check may add to the commit, such as an audit event), then lets this process act on it at once when no other driver
// holds the rotation (the daemon otherwise acts at its next turn).
func (e *Engine) request(ctx context.Context, id string, req Request, check func(*Rotation, *change) error) (*Rotation, error) {
	req.At = e.clock.Now()
	r, err := e.update(ctx, id, func(r *Rotation, ch *change) error {
		if err := check(r, ch); err != nil {
			return err
		}
		if r.Request.Kind != "" && r.Request.Kind != req.Kind {
			return fmt.Errorf("rotation %s already has a pending %s request by %s: %w", r.ID, r.Request.Kind, r.Request.By, ErrBadState)
		}
		r.Request = req
		return nil
	})
	if err != nil {
		return r, err
	}
	if served := e.serveNow(ctx, id); served != nil {
		return served, nil
	}
	return r, nil
}

// serveNow applies a pending request right away when this process can take
// the rotation without waiting; it returns the rotation after, or nil.
func (e *Engine) serveNow(ctx context.Context, id string) *Rotation {
	if !e.claimLocal(id) {
		return nil
	}
	defer e.releaseLocal(id)
	h, ok, err := e.hold(ctx, id)
	if err != nil || !ok {
		return nil
	}
	defer h.release(true)
	d, err := e.load(h.ctx, id)
	if err != nil || d.r.Request.Kind == "" {
		return nil
	}
	d.holdBy(h)
	d.serve(h.ctx)
	return d.r
}
