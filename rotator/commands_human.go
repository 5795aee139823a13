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
		return due && (r.Phase == PhaseMinting || r.Phase == PhaseStaging)
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

// Confirm records that a human revoked a credential by hand (HumanIssuer):
// the old one in revoking, the new one while rolling back.
func (e *Engine) Confirm(ctx context.Context, rotationID, actor string) (*Rotation, error) {
	return e.request(ctx, rotationID, Request{Kind: RequestConfirm, By: actor}, func(r *Rotation, _ *change) error {
		if r.Hold != HoldConfirm {
			return fmt.Errorf("rotation %s is not waiting for a confirmation (%s): %w", r.ID, r.Phase, ErrBadState)
		}
		if _, ok := e.keys[r.Key]; !ok {
			return fmt.Errorf("key %q is no longer configured: %w", r.Key, ErrNotFound)
		}
		return nil
	})
}
