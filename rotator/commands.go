package rotator

import (
	"context"
	"errors"
	"fmt"
)

// TriggerRequest starts a rotation.
type TriggerRequest struct {
	Key     string
	Trigger Trigger
	Mode    Mode // default: staged, except for emergency triggers
	Actor   string
	Reason  string
	// TargetGeneration is the exposed generation an emergency revokes first
	// (default: the current one).
	TargetGeneration int
	// Source names the inbound source of an automatic emergency (for the
	// breaker's exemptions); Contain makes its revoke wait for a responder.
	Source  string
	Contain string
	// Recommission allows a bootstrap or manual rotation of a key that was
	// decommissioned (undoing the decommission); without it they are refused.
	Recommission bool
	// Behind is the people behind the actor's credential (the chain of the
	// API token the request was made with: auth.Principal.TokenChain),
	// recorded in the rotation.created audit event: none of them may
	// approve the rotation (Decide).
	Behind []string
}

// EmergencyTrigger reports whether t calls for emergency mode by default.
func EmergencyTrigger(t Trigger) bool {
	return t == TriggerExposure || t == TriggerUnauthorized || t == TriggerDecommission
}

// Trigger creates a rotation. When the key already has an active rotation it
// returns that rotation and an error wrapping ErrActiveRotation.
func (e *Engine) Trigger(ctx context.Context, req TriggerRequest) (*Rotation, error) {
	// Another daemon's rotation of the key may finish between the read of
	// the current credential and the insert: the store refuses the insert
	// (ErrConflict) and the rotation is built again on the new current one.
	for attempt := 1; ; attempt++ {
		r, err := e.trigger(ctx, req)
		if attempt < 3 && errors.Is(err, ErrConflict) && !errors.Is(err, ErrActiveRotation) {
			continue
		}
		return r, err
	}
}

func (e *Engine) trigger(ctx context.Context, req TriggerRequest) (*Rotation, error) {
	k, ok := e.keys[req.Key]
	if !ok {
		return nil, fmt.Errorf("unknown key %q: %w", req.Key, ErrNotFound)
	}
	if req.Mode == "" {
		req.Mode = ModeStaged
		if EmergencyTrigger(req.Trigger) {
			req.Mode = ModeEmergency
		}
	}
	if req.Trigger == TriggerDecommission && req.Mode != ModeEmergency {
		return nil, fmt.Errorf("decommission runs in emergency mode: %w", ErrBadState)
	}
	if req.Actor == "" {
		req.Actor = "rekey"
	}
	if err := e.refuseDeparted(ctx, req.Actor, "requests"); err != nil {
		return nil, err
	}
	recommission := false
	if req.Trigger != TriggerDecommission && e.Decommissioned(ctx, req.Key) {
		if !req.Recommission {
			return nil, fmt.Errorf("key %s was decommissioned; minting it again undoes that — say so explicitly (rekey rotate %s --bootstrap --recommission): %w", req.Key, req.Key, ErrBadState)
		}
		recommission = true
	}
	creds, err := e.workingCredentials(ctx, req.Key)
	if err != nil {
		return nil, err
	}
	var cur *Credential
	for _, c := range creds {
		if c.State == CredCurrent {
			cur = c
		}
	}
	now := e.clock.Now()
	r := &Rotation{
		ID: NewRotationID(), Key: req.Key, Trigger: req.Trigger, Actor: req.Actor, Reason: req.Reason, Mode: req.Mode,
		NextAttemptAt: now, CreatedAt: now, UpdatedAt: now, PhaseStartedAt: now,
	}
	if cur != nil && req.Trigger == TriggerBootstrap {
		return nil, fmt.Errorf("key %s already has generation %d; rotate it instead of bootstrapping: %w", req.Key, cur.Generation, ErrBadState)
	}
	if cur != nil {
		r.OldGeneration = cur.Generation
	} else if req.Trigger != TriggerBootstrap && req.Mode == ModeStaged {
		return nil, fmt.Errorf("key %s has no current credential; bootstrap it first (rekey rotate %s --bootstrap): %w", req.Key, req.Key, ErrBadState)
	}
	if _, human := k.Issuer.(HumanIssuer); human && req.Mode == ModeEmergency && req.Trigger != TriggerDecommission {
		r.Lifecycle = lifecycleByHand
	}
	start(r)
	if req.Mode == ModeEmergency {
		r.TargetGeneration = req.TargetGeneration
		if r.TargetGeneration == 0 {
			r.TargetGeneration = r.OldGeneration
		}
		r.Contain = req.Contain
		if r.Contain == "" && automaticEmergency(req) && e.breakerContains(ctx, k, req.Source) {
			r.Contain = ContainBreaker
		}
	}
	ev := AuditEvent{At: now, RotationID: r.ID, Key: r.Key, Actor: req.Actor, Action: "rotation.created", Phase: r.Phase,
		Detail: map[string]string{"trigger": string(req.Trigger), "mode": string(req.Mode), "reason": req.Reason, "contain": r.Contain, "recommission": fmt.Sprint(recommission),
			detailRequestBehind: peopleText(sideOf(req.Actor, req.Behind...).behind)}}
	started := []Event{{ID: r.ID + "-start", Kind: EventStarted, Severity: severityOf(r), Key: r.Key, RotationID: r.ID,
		Phase: r.Phase, Trigger: r.Trigger, Mode: r.Mode, Actor: r.Actor, Owners: k.Owners, At: now,
		Message: startMessage(r),
		Fields:  startFields(k, r)}}
	basedOn := 0
	if cur != nil {
		basedOn = cur.Generation
	}
	if err := e.store.CreateRotation(ctx, Commit{Rotation: r, Audit: []AuditEvent{ev}, Outbox: e.dispatch.rows(k, started), BasedOn: &basedOn}); err != nil {
		if errors.Is(err, ErrActiveRotation) {
			active, aerr := e.store.ActiveRotation(ctx, req.Key)
			if aerr == nil {
				return active, fmt.Errorf("key %s: %w (%s)", req.Key, ErrActiveRotation, active.ID)
			}
		}
		return nil, err
	}
	e.metrics.phaseEntered(r, r.Phase)
	e.dispatch.committed(k, started)
	if recommission {
		if err := e.recommission(ctx, r.Key); err != nil {
			e.log.Error("forget the decommission", "key", r.Key, "err", err)
		}
	}
	e.log.Info("rotation created", "rotation", r.ID, "key", r.Key, "trigger", r.Trigger, "mode", r.Mode, "actor", r.Actor)
	if r.Phase == PhaseRevoking && r.Contain == "" && e.driving.Load() {
		e.urgent(r.ID)
	}
	e.Wake()
	return r, nil
}

// automaticEmergency: an emergency no person asked for (a report, a
// departure, traffic) — what the breaker bounds.
func automaticEmergency(req TriggerRequest) bool {
	switch req.Trigger {
	case TriggerExposure, TriggerUnauthorized, TriggerDeparture:
		return true
	}
	return false
}

func severityOf(r *Rotation) Severity {
	if r.Trigger == TriggerDecommission {
		return SeverityWarning // planned by a person: tell, do not page
	}
	if r.Mode == ModeEmergency {
		return SeverityCritical
	}
	return SeverityInfo
}

// Cancel stops a rotation. Before the old credential is revoked it rolls
// back (the new credential is revoked, the old stays current); after, it is
// refused.
func (e *Engine) Cancel(ctx context.Context, id, actor, reason string) (*Rotation, error) {
	if err := e.refuseDeparted(ctx, actor, "requests"); err != nil {
		return nil, err
	}
	outcome := "cancelled by " + actor
	if reason != "" {
		outcome += ": " + reason
	}
	return e.request(ctx, id, Request{Kind: RequestRollBack, Command: "cancel", By: actor, Reason: outcome, To: PhaseCancelled}, func(r *Rotation, _ *change) error {
		switch {
		case r.Phase.Terminal():
			return fmt.Errorf("rotation %s already ended (%s): %w", r.ID, r.Phase, ErrBadState)
		case r.Phase == PhaseRollingBack:
			return fmt.Errorf("rotation %s is already rolling back: %w", r.ID, ErrBadState)
		case !canUndo(r):
			return fmt.Errorf("rotation %s is past the point of no return (%s): %w", r.ID, r.Phase, ErrBadState)
		}
		return nil
	})
}

// Retry clears a permanent-failure or drain-timeout hold and runs the phase
// again now (for a drain timeout: keep waiting, with a fresh max_wait).
func (e *Engine) Retry(ctx context.Context, id, actor string) (*Rotation, error) {
	if err := e.refuseDeparted(ctx, actor, "requests"); err != nil {
		return nil, err
	}
	return e.request(ctx, id, Request{Kind: RequestRetry, By: actor}, func(r *Rotation, _ *change) error {
		switch r.Hold {
		case HoldFailed, HoldDrainTimeout:
		case HoldNone:
			if r.Attempts == 0 {
				return fmt.Errorf("rotation %s is not waiting to be retried: %w", r.ID, ErrBadState)
			}
		default:
			return fmt.Errorf("rotation %s waits for %s, not a retry: %w", r.ID, r.Hold, ErrBadState)
		}
		return nil
	})
}

// change is what a command commits with a rotation: the Commit's extra
// rows, and notifications (written to the outbox in the same transaction).
type change struct {
	Commit
	events []Event
}

// update applies f to a fresh copy of the rotation, sets it due now, and
// saves it with what f added to the change, retrying on version conflicts.
func (e *Engine) update(ctx context.Context, id string, f func(*Rotation, *change) error) (*Rotation, error) {
	for range 10 {
		r, err := e.store.GetRotation(ctx, id)
		if err != nil {
			return nil, err
		}
		ch := &change{}
		if err := f(r, ch); err != nil {
			return r, err
		}
		now := e.clock.Now()
		r.NextAttemptAt, r.UpdatedAt = now, now
		ch.Rotation = r
		k := e.keys[r.Key]
		ch.Outbox = e.dispatch.rows(k, ch.events)
		err = e.store.Save(ctx, ch.Commit)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return r, err
		}
		e.dispatch.committed(k, ch.events)
		e.Wake()
		return r, nil
	}
	return nil, fmt.Errorf("rotation %s: %w (gave up after 10 tries)", id, ErrConflict)
}

// startFields are the started event's fields: the reason and, for a
// rotation that will drain, what its drain gate proves (and cannot see).
func startFields(k *Key, r *Rotation) map[string]string {
	f := map[string]string{"reason": r.Reason, "lifecycle": LifecycleOf(r).Name,
		// Whether a person must approve the start: a message must not
		// show an approval step the key does not have.
		"start_gate": fmt.Sprint(StartGateApplies(k, r) && k.Approval.Needs(GateStart))}
	if r.Mode == ModeStaged && r.Trigger != TriggerBootstrap {
		p := ProveGate(k.Drain.Gate(k.Name))
		f["gate"] = p.Proves
		if p.Warning != "" {
			f["gate_warning"] = p.Warning
		}
	}
	return f
}

func startMessage(r *Rotation) string {
	if r.Trigger == TriggerDecommission {
		return fmt.Sprintf("decommission of %s started by %s: every live credential is revoked and the key removed from its sinks (%s)", r.Key, r.Actor, r.Reason)
	}
	return fmt.Sprintf("%s rotation of %s started (%s): %s", r.Mode, r.Key, r.Trigger, r.Reason)
}
