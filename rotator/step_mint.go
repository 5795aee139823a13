package rotator

import (
	"context"
	"fmt"
	"time"
)

// mint records the intent (generation, deterministic name) before calling
// the issuer, and the issuer's id right after. An intent found unminted on
// a later turn (a crash, a failed call) may have minted anyway. At an
// issuer that honours idempotency keys the mint is asked again with the
// intent's key, which returns what the first attempt created (replayMint);
// elsewhere orphans of that name are revoked first, each recorded before
// its revoke call, and the mint is asked again.
func (s *step) mint(ctx context.Context) outcome {
	if s.r.NewGeneration == 0 {
		// Nothing is minted that cannot be delivered: every sink target
		// must answer and be ours (or not exist yet) before the issuer —
		// or a person — is asked for a credential.
		if err := s.preflight(ctx); err != nil {
			return failed(err)
		}
		c, intent := s.newIntent()
		if h, ok := s.k.Issuer.(HumanIssuer); ok {
			return s.holdForSecret(h, c, zeroTime).with(c).recording("mint.intent", intent)
		}
		return s.mintCall(c).with(c).recording("mint.intent", intent)
	}
	c := s.newCred()
	if c == nil {
		return failed(Permanent(fmt.Errorf("rotation %s: intent for generation %d missing from the store", s.r.ID, s.r.NewGeneration)))
	}
	if c.Minted() {
		return s.afterReplay(ctx, c)
	}
	if h, ok := s.k.Issuer.(HumanIssuer); ok {
		if sub, ok := s.e.takeSubmission(s.r.ID); ok {
			return s.minted(c, sub.minted).auditing(AuditEvent{At: s.now(), RotationID: s.r.ID, Key: s.r.Key, Actor: sub.actor,
				Action: "secret.submitted", Phase: s.r.Phase, Detail: map[string]string{"fingerprint": ShortFingerprint(sub.minted.Secret.Fingerprint())}})
		}
		exp := s.k.Reminders.orDefault().SecretExpireAfter
		until := zeroTime
		// An emergency never gives up on its replacement: a leak does not
		// go away by waiting, so the wait escalates instead.
		if s.r.Hold == HoldSecret && !s.r.HeldSince.IsZero() && !s.byHand() {
			if until = s.r.HeldSince.Add(exp); !s.now().Before(until) {
				return failed(Permanent(fmt.Errorf("nobody submitted the secret for %s within %s (reminders.secret_expire_after); nothing was delivered", c.Name, exp)))
			}
		}
		return s.holdForSecret(h, c, until)
	}
	// A resumed intent never delivers a credential this rotation revoked.
	dead, err := s.deadIDs(ctx)
	if err != nil {
		return failed(err)
	}
	s.dead = dead
	if s.idempotencyWindow() > 0 {
		return s.replayMint(ctx, c)
	}
	f, ok := s.k.Issuer.(Finder)
	if !ok {
		o := s.mintCall(c)
		if s.r.Attempts <= 1 {
			o = o.notifying(s.event(EventOrphan, SeverityWarning, fmt.Sprintf(
				"%s: an earlier attempt to mint %s may have created it before it was recorded, and issuer %s cannot list credentials: look for %s at the issuer and revoke every copy but the one rekey delivers",
				s.r.Key, c.Name, s.k.IssuerName, c.Name), map[string]string{"name": c.Name}))
		}
		return o
	}
	ids, err := f.FindByName(ctx, s.r.Key, c.Name)
	if err != nil {
		return failed(fmt.Errorf("issuer %s: look for orphans named %s: %w", s.k.IssuerName, c.Name, err))
	}
	if len(ids) > 0 {
		return s.reap(c, ids[0])
	}
	return s.mintCall(c)
}

// holdForSecret waits for a person to mint c and submit it: the mint
// instructions, or in an emergency by hand the one message that also asks
// for the leaked key's revocation (critical: it pages).
func (s *step) holdForSecret(h HumanIssuer, c *Credential, until time.Time) outcome {
	if s.byHand() {
		return holdFor(HoldSecret, s.emergencyMintWhy(h, c), zeroTime, SeverityCritical)
	}
	return holdFor(HoldSecret, h.MintInstructions(s.mintRequest(c)), until, SeverityWarning)
}

// mintCall is the issuer call itself.
func (s *step) mintCall(c *Credential) outcome {
	req := s.mintRequest(c)
	return sideEffect("", func(ctx context.Context) outcome {
		m, err := s.mintAt(ctx, req)
		return s.mintAnswered(ctx, c, m, err, "mint "+c.Name)
	})
}

// reap revokes one orphan: a live credential that carries the intent's
// name, minted by an earlier attempt whose record was lost. Its issuer id
// is recorded before the revoke call.
func (s *step) reap(c *Credential, id string) outcome {
	detail := map[string]string{"name": c.Name, "issuer_id": id}
	ref := CredentialRef{Key: s.r.Key, RotationID: s.r.ID, Name: c.Name, Generation: c.Generation, ID: id, Params: s.k.Params}
	return sideEffect("reap", func(ctx context.Context) outcome {
		if err := s.revokeAt(ctx, ref); err != nil {
			return failed(fmt.Errorf("issuer %s: revoke orphan %s (%s): %w", s.k.IssuerName, c.Name, id, err))
		}
		return again("orphan.revoked", detail).notifying(s.event(EventOrphan, SeverityWarning,
			fmt.Sprintf("%s: revoked orphan credential %s (%s) left by an interrupted mint", s.r.Key, c.Name, id), detail))
	}).recording("orphan.found", detail)
}

func (s *step) mintRequest(c *Credential) MintRequest {
	req := MintRequest{Key: s.r.Key, Name: c.Name, Generation: c.Generation, RotationID: s.r.ID, Params: s.k.Params,
		IdempotencyKey: IdempotencyKey(s.r.ID, c.Generation)}
	if old := s.oldCred(); old != nil {
		req.Previous = s.ref(old)
	}
	return req
}

// minted records the issuer's id and the fingerprint, keeps the secret in
// memory only, and moves on to staging.
func (s *step) minted(c *Credential, m Minted) outcome {
	if m.ID == "" || m.Secret.IsZero() {
		return failed(Permanent(fmt.Errorf("issuer %s: mint %s returned no id or no secret", s.k.IssuerName, c.Name)))
	}
	s.e.putSecret(s.r.ID, m.Secret)
	cc := *c
	cc.IssuerID = m.ID
	cc.Fingerprint = m.Secret.Fingerprint()
	cc.CreatedAt = s.now()
	return advance("minted", map[string]string{
		"generation": fmt.Sprint(cc.Generation), "issuer_id": cc.IssuerID, "fingerprint": ShortFingerprint(cc.Fingerprint),
	}).with(&cc)
}

// preflight reads every sink target (read-only) before a mint: an
// unreachable target is a retryable error, one that holds a value rekey
// does not own a permanent one — nothing has been minted either way.
func (s *step) preflight(ctx context.Context) error {
	return s.eachSink(func(b SinkBinding) error {
		st, err := b.Sink.Inspect(ctx, b.Target)
		if err != nil {
			return fmt.Errorf("sink %s: preflight %s before minting: %w", b.SinkName, b.Target.Path, err)
		}
		if st.Exists && !st.Managed {
			return PermanentReason(ReasonNotManaged, fmt.Errorf("sink %s: %s holds a value rekey does not manage (no managed-by marker); nothing was minted — point the key at its own target or mark this one as rekey's: %w",
				b.SinkName, b.Target.Path, ErrNotManaged))
		}
		return nil
	})
}
