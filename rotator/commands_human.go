package rotator

import (
	"context"
	"fmt"
	"time"
)

// Submit hands the engine a secret a human minted (HumanIssuer). The issuer
// checks it (format, probe); if it refuses, nothing changes and the error says
// why without echoing the value.
//
// The secret lives only in this process's memory, and `rekey submit` exits
// right after Submit returns: Submit therefore also stages the new
// generation in every sink, holding the rotation (local claim and store
// lease) so that no daemon runs the staging step first — without the secret
// it would abandon the generation. The daemon reads it back from a sink.
func (e *Engine) Submit(ctx context.Context, rotationID, actor string, secret Secret) (*Rotation, error) {
	r, err := e.store.GetRotation(ctx, rotationID)
	if err != nil {
		return nil, err
	}
	if r.Phase != PhaseMinting || r.Hold != HoldSecret {
		return r, fmt.Errorf("rotation %s is not waiting for a secret (%s): %w", r.ID, r.Phase, ErrBadState)
	}
	release, err := e.take(ctx, r.ID)
	if err != nil {
		return r, err
	}
	defer release()
	if r, err = e.store.GetRotation(ctx, rotationID); err != nil {
		return nil, err
	}
	k, ok := e.keys[r.Key]
	if !ok {
		return r, fmt.Errorf("key %q is no longer configured: %w", r.Key, ErrNotFound)
	}
	h, ok := k.Issuer.(HumanIssuer)
	if !ok {
		return r, fmt.Errorf("issuer %s of key %s mints by itself; nothing to submit: %w", k.IssuerName, r.Key, ErrBadState)
	}
	if r.Phase != PhaseMinting || r.Hold != HoldSecret {
		return r, fmt.Errorf("rotation %s is not waiting for a secret (%s): %w", r.ID, r.Phase, ErrBadState)
	}
	if secret.IsZero() {
		return r, fmt.Errorf("empty secret: %w", ErrBadState)
	}
	s := &step{e: e, k: k, r: r, started: e.clock.Now()}
	if err := s.loadCreds(ctx); err != nil {
		return r, err
	}
	c := s.newCred()
	if c == nil {
		return r, fmt.Errorf("rotation %s has no mint intent: %w", r.ID, ErrBadState)
	}
	for _, other := range s.creds {
		if other.Fingerprint == secret.Fingerprint() {
			return r, fmt.Errorf("this secret is generation %d of %s already; mint a new key: %w", other.Generation, other.Key, ErrBadState)
		}
	}
	m, err := h.Accept(ctx, s.mintRequest(c), secret)
	if err != nil {
		return r, fmt.Errorf("secret refused: %s: %w", secret.Scrub(err.Error()), ErrRejected)
	}
	if err := e.store.AppendAudit(ctx, AuditEvent{At: e.clock.Now(), RotationID: r.ID, Key: r.Key, Actor: actor, Action: "secret.submitted", Phase: r.Phase,
		Detail: map[string]string{"fingerprint": ShortFingerprint(secret.Fingerprint())}}); err != nil {
		return r, err
	}
	if err := s.recordMinted(ctx, c, m); err != nil {
		return r, err
	}
	sctx, cancel := context.WithTimeout(ctx, e.stepTO)
	defer cancel()
	if err := s.stage(sctx); err != nil {
		e.fail(ctx, k, s.r, PhaseStaging, err)
	}
	e.Wake()
	return s.r, nil
}

// take holds rotation id for this process: the local claim (no driver of
// this engine runs it) and the store lease (no other process does). A
// driver that has just parked the rotation lets go of both within moments,
// so take waits a little for them before giving up.
func (e *Engine) take(ctx context.Context, id string) (release func(), err error) {
	deadline := time.Now().Add(takeWait)
	for {
		if e.claimLocal(id) {
			now := e.clock.Now()
			ok, err := e.store.Lease(ctx, id, e.owner, now, now.Add(e.lease))
			if err != nil {
				e.releaseLocal(id)
				return nil, err
			}
			if ok {
				return func() {
					_ = e.store.Release(context.WithoutCancel(ctx), id, e.owner)
					e.releaseLocal(id)
				}, nil
			}
			e.releaseLocal(id)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rotation %s is being driven by another process; try again: %w", id, ErrConflict)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// takeWait bounds how long take waits for another driver's lease.
const takeWait = 5 * time.Second

// Confirm records that a human revoked a credential by hand (HumanIssuer):
// the old one in revoking, the new one while rolling back.
func (e *Engine) Confirm(ctx context.Context, rotationID, actor string) (*Rotation, error) {
	r, err := e.store.GetRotation(ctx, rotationID)
	if err != nil {
		return nil, err
	}
	if r.Hold != HoldConfirm {
		return r, fmt.Errorf("rotation %s is not waiting for a confirmation (%s): %w", r.ID, r.Phase, ErrBadState)
	}
	k, ok := e.keys[r.Key]
	if !ok {
		return r, fmt.Errorf("key %q is no longer configured: %w", r.Key, ErrNotFound)
	}
	s := &step{e: e, k: k, r: r}
	if err := s.loadCreds(ctx); err != nil {
		return r, err
	}
	var targets []*Credential
	switch {
	case r.Phase == PhaseRollingBack:
		targets = append(targets, s.newCred())
	case r.Phase == PhaseRevoking && r.Mode == ModeStaged:
		targets = append(targets, s.oldCred())
	case r.Phase == PhaseRevoking:
		for _, c := range s.creds {
			if c.State != CredRevoked && (r.Trigger == TriggerDecommission || c.Generation == r.TargetGeneration) {
				targets = append(targets, c)
			}
		}
	}
	now := e.clock.Now()
	var changed []*Credential
	var names []string
	for _, c := range targets {
		if c == nil || c.State == CredRevoked {
			continue
		}
		cc := *c
		cc.State, cc.RevokedAt = CredRevoked, now
		changed = append(changed, &cc)
		names = append(names, c.Name)
	}
	r.Hold, r.HoldDetail = HoldNone, ""
	r.NextAttemptAt, r.UpdatedAt = now, now
	ev := AuditEvent{At: now, RotationID: r.ID, Key: r.Key, Actor: actor, Action: "revoke.confirmed", Phase: r.Phase,
		Detail: map[string]string{"credentials": fmt.Sprint(names)}}
	if err := e.store.Save(ctx, Commit{Rotation: r, Credentials: changed, Audit: []AuditEvent{ev}}); err != nil {
		return r, err
	}
	e.Wake()
	return r, nil
}
