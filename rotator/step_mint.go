package rotator

import (
	"context"
	"fmt"
	"time"
)

// awaitStart is the start gate of a staged rotation.
func (s *step) awaitStart(ctx context.Context) error {
	if s.r.Trigger == TriggerBootstrap || !s.k.Approval.Needs(GateStart) {
		return s.advance(ctx, PhaseMinting, nil, "started", nil)
	}
	return s.gate(ctx, GateStart, func() error {
		return s.advance(ctx, PhaseMinting, nil, "approved", map[string]string{"gate": string(GateStart)})
	})
}

// gate evaluates approvals for g: enough → pass(); a deny → denied (start)
// or rolled back (later gates); expired → expired; otherwise hold.
func (s *step) gate(ctx context.Context, g Gate, pass func() error) error {
	approvals, err := s.e.store.Approvals(ctx, s.r.ID)
	if err != nil {
		return fmt.Errorf("load approvals: %w", err)
	}
	yes := map[string]bool{}
	for _, a := range approvals {
		if a.Gate != g {
			continue
		}
		if a.Verdict == VerdictDeny {
			s.r.Outcome = "denied by " + a.Approver
			if g == GateStart {
				return s.advance(ctx, PhaseDenied, nil, "denied", map[string]string{"gate": string(g), "by": a.Approver})
			}
			s.r.RollbackTo = PhaseDenied
			return s.advance(ctx, PhaseRollingBack, nil, "denied", map[string]string{"gate": string(g), "by": a.Approver})
		}
		yes[a.Approver] = true
	}
	need := s.k.Approval.RequiredApprovals(g)
	if len(yes) >= need {
		return pass()
	}
	var until time.Time
	if exp := s.k.Approval.ExpireAfter; exp > 0 {
		until = s.r.PhaseStartedAt.Add(exp)
		if !s.now().Before(until) {
			s.r.Outcome = fmt.Sprintf("approval for %s expired after %s", g, exp)
			if g == GateRevoke {
				s.r.Outcome += "; the old credential was NOT revoked and stays live as previous"
			}
			return s.advance(ctx, PhaseExpired, nil, "expired", map[string]string{"gate": string(g)})
		}
	}
	detail := fmt.Sprintf("%s approval %d/%d", g, len(yes), need)
	return s.hold(ctx, HoldApproval, detail, until, SeverityWarning)
}

// mint records the intent (generation, deterministic name) before calling
// the issuer, and the issuer's id right after.
func (s *step) mint(ctx context.Context) error {
	if s.r.NewGeneration == 0 {
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
		if err := s.commit(ctx, []*Credential{c}, s.audit("mint.intent", map[string]string{"generation": fmt.Sprint(gen), "name": c.Name})); err != nil {
			return err
		}
		s.creds[gen] = c
	}
	c := s.newCred()
	if c == nil {
		return Permanent(fmt.Errorf("rotation %s: intent for generation %d missing from the store", s.r.ID, s.r.NewGeneration))
	}
	if c.Minted() {
		return s.advance(ctx, PhaseStaging, nil, "minted", nil)
	}
	req := s.mintRequest(c)
	if h, ok := s.k.Issuer.(HumanIssuer); ok {
		return s.hold(ctx, HoldSecret, h.MintInstructions(req), time.Time{}, SeverityWarning)
	}
	if err := s.reapOrphans(ctx, c); err != nil {
		return err
	}
	s.failpoint("before")
	m, err := s.k.Issuer.Mint(ctx, req)
	if err != nil {
		return fmt.Errorf("issuer %s: mint %s: %w", s.k.IssuerName, c.Name, err)
	}
	s.failpoint("after")
	return s.recordMinted(ctx, c, m)
}

func (s *step) mintRequest(c *Credential) MintRequest {
	req := MintRequest{Key: s.r.Key, Name: c.Name, Generation: c.Generation, RotationID: s.r.ID, Params: s.k.Params}
	if old := s.oldCred(); old != nil {
		req.Previous = s.ref(old)
	}
	return req
}

// recordMinted stores the issuer's id and the fingerprint, keeps the secret
// in memory only, and moves on to staging.
func (s *step) recordMinted(ctx context.Context, c *Credential, m Minted) error {
	if m.ID == "" || m.Secret.IsZero() {
		return Permanent(fmt.Errorf("issuer %s: mint %s returned no id or no secret", s.k.IssuerName, c.Name))
	}
	s.e.putSecret(s.r.ID, m.Secret)
	cc := *c
	cc.IssuerID = m.ID
	cc.Fingerprint = m.Secret.Fingerprint()
	cc.CreatedAt = s.now()
	s.creds[c.Generation] = &cc
	s.e.metrics.minted(s.r.Key)
	return s.advance(ctx, PhaseStaging, []*Credential{&cc}, "minted", map[string]string{
		"generation": fmt.Sprint(cc.Generation), "issuer_id": cc.IssuerID, "fingerprint": ShortFingerprint(cc.Fingerprint),
	})
}

// reapOrphans revokes live credentials that carry the intent's name: they
// were minted by an earlier attempt whose record was lost in a crash, and
// their secret is gone. Issuers that cannot list get a notification instead.
func (s *step) reapOrphans(ctx context.Context, c *Credential) error {
	f, ok := s.k.Issuer.(Finder)
	if !ok {
		return nil
	}
	ids, err := f.FindByName(ctx, s.r.Key, c.Name)
	if err != nil {
		return fmt.Errorf("issuer %s: look for orphans named %s: %w", s.k.IssuerName, c.Name, err)
	}
	for _, id := range ids {
		ref := CredentialRef{Key: s.r.Key, Name: c.Name, Generation: c.Generation, ID: id, Params: s.k.Params}
		if err := s.k.Issuer.Revoke(ctx, ref); err != nil {
			return fmt.Errorf("issuer %s: revoke orphan %s (%s): %w", s.k.IssuerName, c.Name, id, err)
		}
		if err := s.e.store.AppendAudit(ctx, s.audit("orphan.revoked", map[string]string{"name": c.Name, "issuer_id": id})); err != nil {
			return err
		}
		s.notify(EventOrphan, SeverityWarning, fmt.Sprintf("%s: revoked orphan credential %s (%s) left by an interrupted mint", s.r.Key, c.Name, id), nil)
	}
	return nil
}
