package rotator

import (
	"context"
	"fmt"
)

// sameKeyFailures is how many failures in a row of one mint intent, the
// last two identical, an issuer that honours idempotency keys may answer
// before the intent is abandoned: a server that stores a failed answer
// for a key without saying so replays it for the key's whole window (24h
// by default), and an emergency cannot wait that long.
const sameKeyFailures = 5

// newIntent records the next generation's mint intent (deterministic
// name, new idempotency key) on the rotation; the caller commits it with
// the outcome that carries the credential before any issuer call.
func (s *step) newIntent() (*Credential, map[string]string) {
	gen := 1
	for g := range s.creds {
		if g >= gen {
			gen = g + 1
		}
	}
	c := &Credential{
		Key: s.r.Key, Generation: gen, Name: CredentialName(s.r.Key, gen),
		State: CredPending, RotationID: s.r.ID, CreatedAt: s.now(),
	}
	s.r.NewGeneration = gen
	return c, map[string]string{"generation": fmt.Sprint(gen), "name": c.Name}
}

// deadIDs are the issuer ids this rotation must never deliver: orphans it
// found under an intent's name (revoked, or about to be) and credentials
// of the key on record as revoked. An issuer that replays an idempotency
// key rekey did not know it honours hands such a credential back.
func (s *step) deadIDs(ctx context.Context) (map[string]bool, error) {
	dead := map[string]bool{}
	for _, c := range s.creds {
		if c.State == CredRevoked && c.IssuerID != "" {
			dead[c.IssuerID] = true
		}
	}
	evs, err := s.e.store.Audit(ctx, AuditFilter{RotationID: s.r.ID})
	if err != nil {
		return nil, fmt.Errorf("rotation %s: read the orphans it revoked: %w", s.r.ID, err)
	}
	for _, ev := range evs {
		if (ev.Action == "orphan.found" || ev.Action == "orphan.revoked") && ev.Detail["issuer_id"] != "" {
			dead[ev.Detail["issuer_id"]] = true
		}
	}
	return dead, nil
}

// mintAnswered turns the issuer's answer to a mint of c into an outcome:
// the credential recorded, or — when asking again with the intent's key
// cannot help — the intent abandoned; otherwise the failure, retried.
// what names the call in the error ("mint api-v2").
func (s *step) mintAnswered(ctx context.Context, c *Credential, m Minted, err error, what string) outcome {
	if err == nil {
		if s.dead[m.ID] {
			return s.abandonIntent(ctx, c, fmt.Sprintf(
				"issuer %s answered with %s, a credential this rotation revoked: it replays the idempotency key though it does not declare that it honours keys (an http issuer: set mint.idempotency_window)", s.k.IssuerName, m.ID))
		}
		return s.minted(c, m)
	}
	err = fmt.Errorf("issuer %s: %s: %w", s.k.IssuerName, what, err)
	switch {
	case IsReplayedFailure(err):
		return s.abandonIntent(ctx, c, "the issuer replays a failed answer stored for its idempotency key: "+s.e.scrub(s.r.ID, err.Error()))
	case s.idempotencyWindow() > 0 && !IsPermanent(err) && s.r.Attempts >= sameKeyFailures-1 && s.e.scrub(s.r.ID, err.Error()) == s.r.LastError:
		return s.abandonIntent(ctx, c, fmt.Sprintf("%d failures in a row under one idempotency key, the last two identical (the issuer may replay a stored failure): %s",
			s.r.Attempts+1, s.e.scrub(s.r.ID, err.Error())))
	}
	return failed(err)
}

// abandonIntent gives up intent c, whose idempotency key cannot yield a
// live credential, and mints the next generation under a new key. Whatever
// carries c's name at the issuer is revoked first, one orphan a turn, each
// recorded before its revoke (reap); the new intent is recorded with the
// abandon, before the issuer is asked. Nothing is recorded for c before
// the clean-up ends: a crash in between makes the next turn ask again
// with c's key, get the same answer and come back here.
func (s *step) abandonIntent(ctx context.Context, c *Credential, why string) outcome {
	f, finder := s.k.Issuer.(Finder)
	if finder {
		ids, err := f.FindByName(ctx, s.r.Key, c.Name)
		if err != nil {
			return failed(fmt.Errorf("issuer %s: look for credentials named %s before abandoning its mint: %w", s.k.IssuerName, c.Name, err))
		}
		if len(ids) > 0 {
			return s.reap(c, ids[0])
		}
	}
	old := *c
	old.State, old.RevokedAt = CredRevoked, s.now()
	s.r.Attempts, s.r.LastError, s.r.ErrorReason = 0, "", ReasonNone
	next, intent := s.newIntent()
	detail := map[string]string{"generation": fmt.Sprint(c.Generation), "name": c.Name,
		"idempotency_key": IdempotencyKey(s.r.ID, c.Generation), "next": next.Name, "why": why}
	msg := fmt.Sprintf("%s: abandoned the mint of %s (%s); minting %s under a new idempotency key", s.r.Key, c.Name, why, next.Name)
	if !finder {
		msg += fmt.Sprintf("; issuer %s cannot list credentials: look for %s at the issuer and revoke it if it exists", s.k.IssuerName, c.Name)
	}
	return s.mintCall(next).with(next, &old).recording("mint.abandoned", detail).
		auditing(s.auditEvent("mint.intent", intent)).
		notifying(s.event(EventOrphan, SeverityWarning, msg, map[string]string{"name": c.Name}))
}
