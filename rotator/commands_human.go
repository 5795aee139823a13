package rotator

import (
	"context"
	"errors"
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
//
// A refused submission (wrong state, a stale key, the issuer's refusal) is
// audited: who, when and why — never the value.
func (e *Engine) Submit(ctx context.Context, rotationID, actor string, secret Secret) (*Rotation, error) {
	if err := e.refuseDeparted(ctx, actor, "requests"); err != nil {
		return nil, err
	}
	r, err := e.submit(ctx, rotationID, actor, secret)
	if err != nil && r != nil && (errors.Is(err, ErrBadState) || errors.Is(err, ErrRejected)) {
		e.auditRefusal(ctx, r, actor, "submit.refused", secret.Scrub(err.Error()))
	}
	return r, err
}

func (e *Engine) submit(ctx context.Context, rotationID, actor string, secret Secret) (*Rotation, error) {
	r, err := e.store.GetRotation(ctx, rotationID)
	if err != nil {
		return nil, err
	}
	if r.Phase != PhaseMinting || r.Hold != HoldSecret {
		return r, fmt.Errorf("rotation %s is not waiting for a secret (%s): %w", r.ID, r.Phase, ErrBadState)
	}
	lh, err := e.take(ctx, r.ID)
	if err != nil {
		return r, err
	}
	defer lh.release(true)
	ctx = lh.ctx
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
	list, err := e.store.Credentials(ctx, r.Key)
	if err != nil {
		return r, err
	}
	var c *Credential
	for _, other := range list {
		if other.Fingerprint == secret.Fingerprint() {
			return r, fmt.Errorf("this secret is generation %d of %s already; mint a new key: %w", other.Generation, other.Key, ErrBadState)
		}
		if other.Generation == r.NewGeneration {
			c = other
		}
	}
	if c == nil {
		return r, fmt.Errorf("rotation %s has no mint intent: %w", r.ID, ErrBadState)
	}
	// A value rekey knows as another key's credential is that key's: taken
	// here, a rotation of the other key would revoke this one, and a leak
	// report would name one key only.
	known, err := e.store.CredentialByFingerprint(ctx, secret.Fingerprint())
	if err != nil {
		return r, err
	}
	for _, other := range known {
		if other.Key != r.Key {
			return r, fmt.Errorf("this secret is %s (key %s); mint a new key for %s: %w", other.Name, other.Key, r.Key, ErrBadState)
		}
	}
	s := &step{e: e, k: k, r: r}
	m, err := h.Accept(ctx, s.mintRequest(c), secret)
	if err != nil {
		return r, fmt.Errorf("secret refused: %s: %w", secret.Scrub(err.Error()), ErrRejected)
	}
	// The interpreter records the submission with the mint and stages it
	// now, while this process holds the rotation.
	e.mu.Lock()
	e.submissions[r.ID] = submission{minted: m, actor: actor}
	e.mu.Unlock()
	defer e.takeSubmission(r.ID)
	staging := func(r *Rotation) bool {
		due := !r.NextAttemptAt.After(e.clock.Now()) || r.Hold == HoldSecret
		// An emergency by hand also cuts over: consumers get the
		// replacement as soon as the person submitted it.
		cut := r.Lifecycle == lifecycleByHand && r.Phase == PhaseCuttingOver
		return due && (r.Phase == PhaseMinting || r.Phase == PhaseStaging || cut)
	}
	out := e.interpret(ctx, r.ID, staging, lh)
	e.Wake()
	if out == nil {
		return e.store.GetRotation(ctx, r.ID)
	}
	return out, nil
}

// submission is a secret a person minted, accepted by the issuer, waiting
// for the interpreter's mint step to record it.
type submission struct {
	minted Minted
	actor  string
}

func (e *Engine) takeSubmission(id string) (submission, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sub, ok := e.submissions[id]
	delete(e.submissions, id)
	return sub, ok
}

// take holds rotation id for this process: the local claim (no driver of
// this engine runs it) and the store lease (no other process does). A
// driver that has just parked the rotation lets go of both within moments,
// so take waits a little for them before giving up.
func (e *Engine) take(ctx context.Context, id string) (*holder, error) {
	deadline := time.Now().Add(takeWait)
	for {
		if e.claimLocal(id) {
			h, ok, err := e.hold(ctx, id)
			if err != nil {
				e.releaseLocal(id)
				return nil, err
			}
			if ok {
				h.then = func() { e.releaseLocal(id) }
				return h, nil
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

// ConfirmRequest is a person's word that they revoked a credential by
// hand. Force takes it although the probe says the credential still
// authenticates (or cannot tell); it is audited as such.
type ConfirmRequest struct {
	RotationID string
	Actor      string
	Force      bool
}

// Confirm records a confirmation without --force.
func (e *Engine) Confirm(ctx context.Context, rotationID, actor string) (*Rotation, error) {
	return e.ConfirmRevoked(ctx, ConfirmRequest{RotationID: rotationID, Actor: actor})
}

// ConfirmRevoked records that a human revoked a credential by hand
// (HumanIssuer): the old one in revoking, the new one while rolling back,
// the leaked one in an emergency by hand (at any point before its end).
// Trust but verify: when the issuer can probe (RevokeChecker) and a sink
// still holds the value (ValueReader), the credential is probed first and
// the confirmation refused while it still authenticates, unless forced.
// The audit records who confirmed and whether it was verified.
func (e *Engine) ConfirmRevoked(ctx context.Context, cr ConfirmRequest) (*Rotation, error) {
	if err := e.refuseDeparted(ctx, cr.Actor, "requests"); err != nil {
		return nil, err
	}
	r, err := e.store.GetRotation(ctx, cr.RotationID)
	if err != nil {
		return nil, err
	}
	k, ok := e.keys[r.Key]
	if !ok {
		return r, fmt.Errorf("key %q is no longer configured: %w", r.Key, ErrNotFound)
	}
	creds, err := e.credMap(ctx, r.Key)
	if err != nil {
		return r, err
	}
	if !awaitsConfirm(r, creds) {
		return r, fmt.Errorf("rotation %s is not waiting for a confirmation (%s): %w", r.ID, r.Phase, ErrBadState)
	}
	verified, why := e.checkRevoked(ctx, k, r, confirmTargets(r, creds))
	if verified != "true" && verified != "false" {
		if !cr.Force {
			e.auditRefusal(ctx, r, cr.Actor, "confirm.refused", why)
			return r, fmt.Errorf("not confirmed: %s; revoke it in the dashboard first (or, if you are sure, confirm with --force, which is audited): %w", why, ErrRejected)
		}
		verified = "forced"
	}
	return e.request(ctx, r.ID, Request{Kind: RequestConfirm, By: cr.Actor, Verified: verified, Reason: why}, func(r *Rotation, _ *change) error {
		if !awaitsConfirm(r, creds) {
			return fmt.Errorf("rotation %s is not waiting for a confirmation (%s): %w", r.ID, r.Phase, ErrBadState)
		}
		return nil
	})
}

// awaitsConfirm reports whether r takes a confirmation now: held for one,
// or an emergency by hand whose leaked credential is still live, once the
// person has been asked (past a contained emergency's approval).
func awaitsConfirm(r *Rotation, creds map[int]*Credential) bool {
	if r.Phase.Terminal() {
		return false
	}
	if r.Hold == HoldConfirm {
		return true
	}
	if r.Lifecycle != lifecycleByHand || r.Phase == PhaseRevoking || r.Phase == PhaseCleaning {
		return false
	}
	c := creds[r.TargetGeneration]
	return c != nil && c.State != CredRevoked
}

// checkRevoked probes each credential a person says they revoked. verified
// is "true" (every one refused by the issuer), "false" (the issuer has no
// probe, or no sink of the key can give a value back) or "" with why (one
// still authenticates, the probe could not tell, or a probe exists but the
// value to probe it with is gone from sinks that would hold it). Only a
// rollback's new credential, which no consumer ever read, may be taken
// unprobed when its value is gone: an unverifiable confirmation of a key
// consumers held (or a leaked one) needs --force.
func (e *Engine) checkRevoked(ctx context.Context, k *Key, r *Rotation, targets []*Credential) (verified, why string) {
	rc, ok := k.Issuer.(RevokeChecker)
	if vc, has := k.Issuer.(VerifyConfigurer); has && !vc.VerifyConfigured() {
		ok = false
	}
	if !ok || len(targets) == 0 {
		return "false", "the issuer of " + k.Name + " cannot probe a credential"
	}
	probed := 0
	for _, c := range targets {
		sec, found := e.readValue(ctx, k, c.Fingerprint)
		if !found {
			if r.Phase == PhaseRollingBack || !canReadValues(k) {
				continue
			}
			return "", fmt.Sprintf("cannot verify that %s is revoked: no sink holds its value any more to probe it with", c.Name)
		}
		revoked, err := rc.CheckRevoked(ctx, k.Name, sec, k.Params)
		switch {
		case err != nil:
			return "", fmt.Sprintf("could not verify that %s is revoked: %s", c.Name, sec.Scrub(err.Error()))
		case !revoked:
			return "", fmt.Sprintf("%s still authenticates at the issuer", c.Name)
		}
		probed++
	}
	if probed == 0 {
		if !canReadValues(k) {
			return "false", "no sink of " + k.Name + " can give a value back to probe it with"
		}
		return "false", "no sink holds the value any more"
	}
	return "true", ""
}

// canReadValues reports whether a sink of k can give a value back
// (ValueReader): only then can a confirmation be probed at all.
func canReadValues(k *Key) bool {
	for _, b := range k.Sinks {
		if _, ok := b.Sink.(ValueReader); ok {
			return true
		}
	}
	return false
}

// readValue reads the value with fingerprint fp from the first sink that
// can give it back (ValueReader); never logged.
func (e *Engine) readValue(ctx context.Context, k *Key, fp string) (Secret, bool) {
	if fp == "" {
		return Secret{}, false
	}
	for _, b := range k.Sinks {
		vr, ok := b.Sink.(ValueReader)
		if !ok {
			continue
		}
		sec, err := vr.ReadValue(ctx, b.Target, fp)
		if err == nil && !sec.IsZero() && sec.Fingerprint() == fp {
			return sec, true
		}
	}
	return Secret{}, false
}

// auditRefusal records a refused command (who, when, why — never a value)
// without changing the rotation.
func (e *Engine) auditRefusal(ctx context.Context, r *Rotation, actor, action, why string) {
	ev := AuditEvent{At: e.clock.Now(), RotationID: r.ID, Key: r.Key, Actor: actor, Action: action, Phase: r.Phase, Detail: map[string]string{"why": why}}
	if err := e.store.Save(context.WithoutCancel(ctx), Commit{Audit: []AuditEvent{ev}}); err != nil {
		e.log.Warn("audit a refused command", "rotation", r.ID, "action", action, "err", err)
	}
}

func (e *Engine) credMap(ctx context.Context, key string) (map[int]*Credential, error) {
	list, err := e.store.Credentials(ctx, key)
	if err != nil {
		return nil, err
	}
	m := make(map[int]*Credential, len(list))
	for _, c := range list {
		m[c.Generation] = c
	}
	return m, nil
}
