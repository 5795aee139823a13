package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// revoke revokes the old credential: after the drain gate in staged mode,
// first thing in emergency mode.
func (s *step) revoke(ctx context.Context) error {
	if s.r.Mode == ModeEmergency {
		return s.revokeEmergency(ctx)
	}
	if s.k.Approval.Needs(GateRevoke) && s.r.Hold != HoldConfirm && s.r.Drain.Override != "exposure" {
		passed := false
		if err := s.gate(ctx, GateRevoke, func() error { passed = true; return nil }); err != nil || !passed {
			return err
		}
	}
	old := s.oldCred()
	if old == nil || old.State == CredRevoked {
		return s.advance(ctx, PhaseWatching, nil, "revoked", map[string]string{"already": "true"})
	}
	if err := s.checkAllCurrent(ctx); err != nil {
		return err
	}
	return s.revokeCred(ctx, old, PhaseWatching)
}

// checkAllCurrent re-reads every sink right before a staged revoke: the new
// credential must be current everywhere (invariant 1).
func (s *step) checkAllCurrent(ctx context.Context) error {
	c := s.newCred()
	if c == nil {
		return Permanent(fmt.Errorf("rotation %s: revoke without a new credential", s.r.ID))
	}
	return s.eachSink(func(b SinkBinding) error {
		st, err := b.Sink.Inspect(ctx, b.Target)
		if err != nil {
			return fmt.Errorf("sink %s: inspect %s before revoking: %w", b.SinkName, b.Target.Path, err)
		}
		if st.Current != c.Fingerprint {
			return WithReason(ReasonInvariant, fmt.Errorf("sink %s: %s does not hold generation %d as current; not revoking the old credential", b.SinkName, b.Target.Path, c.Generation))
		}
		return nil
	})
}

// revokeCred revokes c at the issuer (or holds for a human to do it) and
// moves to phase `to`.
func (s *step) revokeCred(ctx context.Context, c *Credential, to Phase) error {
	if h, ok := s.k.Issuer.(HumanIssuer); ok {
		if s.r.Hold == HoldConfirm {
			return nil // waiting for Confirm
		}
		return s.hold(ctx, HoldConfirm, h.RevokeInstructions(s.ref(c)), time.Time{}, SeverityWarning)
	}
	if c.Minted() {
		s.failpoint("before")
		if err := s.k.Issuer.Revoke(ctx, s.ref(c)); err != nil {
			return fmt.Errorf("issuer %s: revoke %s: %w", s.k.IssuerName, c.Name, err)
		}
		s.failpoint("after")
	}
	return s.markRevoked(ctx, c, to, "rekey")
}

func (s *step) markRevoked(ctx context.Context, c *Credential, to Phase, by string) error {
	cc := *c
	cc.State, cc.RevokedAt = CredRevoked, s.now()
	s.e.metrics.revoked(s.r.Key)
	return s.advance(ctx, to, []*Credential{&cc}, "revoked", map[string]string{
		"generation": fmt.Sprint(c.Generation), "issuer_id": c.IssuerID, "by": by,
	})
}

// revokeEmergency revokes the exposed generation (and, for decommission,
// every live one) before anything else.
func (s *step) revokeEmergency(ctx context.Context) error {
	decom := s.r.Trigger == TriggerDecommission
	to := next(PhaseRevoking, ModeEmergency, true, decom)
	if !decom && s.r.OldGeneration != 0 && s.r.TargetGeneration != s.r.OldGeneration {
		// The exposed or misused credential is not the current one (a
		// previous or pending generation): revoking it is the whole
		// remedy; the current key stays. Clean it out of the sinks.
		to = PhaseCleaning
	}
	var targets []*Credential
	for _, c := range s.creds {
		if c.State == CredRevoked {
			continue
		}
		if decom || c.Generation == s.r.TargetGeneration {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		return s.advance(ctx, to, nil, "revoked", map[string]string{"already": "true"})
	}
	if len(targets) == 1 {
		return s.revokeCred(ctx, targets[0], to)
	}
	// Decommission with several live generations: revoke all but the last
	// here, the last through revokeCred so the phase advances once.
	for _, c := range targets[:len(targets)-1] {
		if _, human := s.k.Issuer.(HumanIssuer); human {
			break
		}
		if err := s.k.Issuer.Revoke(ctx, s.ref(c)); err != nil {
			return fmt.Errorf("issuer %s: revoke %s: %w", s.k.IssuerName, c.Name, err)
		}
		cc := *c
		cc.State, cc.RevokedAt = CredRevoked, s.now()
		if err := s.commit(ctx, []*Credential{&cc}, s.audit("revoked", map[string]string{"generation": fmt.Sprint(c.Generation)})); err != nil {
			return err
		}
	}
	return s.revokeCred(ctx, targets[len(targets)-1], to)
}

// rollbackSink undoes d in one sink. A sink refuses to touch a target rekey
// does not own — which is also why a stage there failed; when that target
// holds no value of d, there is nothing to undo and the refusal is success
// (otherwise the rollback would hold forever with d live at the issuer).
func (s *step) rollbackSink(ctx context.Context, b SinkBinding, d Delivery) error {
	if rm, ok := b.Sink.(Remover); ok && s.r.OldGeneration == 0 {
		// Rolling back a bootstrap: when the first generation went straight
		// to current there is no old value to restore, and sinks refuse to
		// leave a target without a current one. Nobody can depend on a
		// first generation that is being undone: remove it. Only then: a
		// target whose current value rekey did not deliver (adopted, or
		// someone else's) keeps it, and an ordinary rollback drops d.
		st, err := b.Sink.Inspect(ctx, b.Target)
		if err != nil {
			return err
		}
		if d.Fingerprint != "" && st.Current == d.Fingerprint {
			return rm.Remove(ctx, b.Target)
		}
	}
	err := b.Sink.Rollback(ctx, b.Target, d)
	if !errors.Is(err, ErrNotManaged) {
		return err
	}
	st, ierr := b.Sink.Inspect(ctx, b.Target)
	if ierr != nil || st.Managed {
		return err
	}
	if d.Fingerprint != "" && (st.Current == d.Fingerprint || st.Pending == d.Fingerprint || st.Previous == d.Fingerprint) {
		return err
	}
	return nil
}

// rollBack undoes a staged rotation whose old credential is still live: the
// old value becomes current again in every sink and the new credential is
// revoked. It ends in r.RollbackTo (failed, cancelled, denied).
func (s *step) rollBack(ctx context.Context) error {
	to := s.r.RollbackTo
	if to == "" || !to.Terminal() {
		to = PhaseCancelled
	}
	c := s.newCred()
	if c == nil {
		return s.advance(ctx, to, nil, "rolled_back", nil)
	}
	wasCurrent := c.State == CredCurrent || !s.r.Drain.RestoredAt.IsZero()
	d := s.delivery(Secret{})
	if err := s.eachSink(func(b SinkBinding) error {
		if err := s.rollbackSink(ctx, b, d); err != nil {
			return fmt.Errorf("sink %s: roll back %s: %w", b.SinkName, b.Target.Path, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if wasCurrent && c.State != CredRevoked {
		// Consumers already read the new key: give them the drain gate's
		// quiet period to move back before the new key is revoked, or the
		// rollback itself would be an outage.
		if waiting, err := s.rollbackDrain(ctx, c); err != nil || waiting {
			return err
		}
	}
	changed := []*Credential{}
	if c.State != CredRevoked {
		if !c.Minted() {
			if err := s.reapOrphans(ctx, c); err != nil {
				return err
			}
		} else if h, ok := s.k.Issuer.(HumanIssuer); ok {
			if s.r.Hold != HoldConfirm {
				return s.hold(ctx, HoldConfirm, "rolling back: "+h.RevokeInstructions(s.ref(c)), time.Time{}, SeverityWarning)
			}
			return nil
		} else if err := s.k.Issuer.Revoke(ctx, s.ref(c)); err != nil {
			return fmt.Errorf("issuer %s: revoke %s during rollback: %w", s.k.IssuerName, c.Name, err)
		}
		cc := *c
		cc.State, cc.RevokedAt = CredRevoked, s.now()
		changed = append(changed, &cc)
	}
	if old := s.oldCred(); old != nil && old.State != CredRevoked && old.State != CredCurrent {
		oc := *old
		oc.State = CredCurrent
		changed = append(changed, &oc)
	}
	return s.advance(ctx, to, changed, "rolled_back", map[string]string{"generation": fmt.Sprint(c.Generation)})
}

// rollbackDrain waits, after the old key is current again everywhere, until
// the traffic source reports no use of the new key for the quiet period
// (or max_wait passed, after which the rollback proceeds: a human asked for
// it). It reports whether the rotation is still waiting.
func (s *step) rollbackDrain(ctx context.Context, c *Credential) (bool, error) {
	p := s.k.Drain
	ds := &s.r.Drain
	now := s.now()
	if ds.RestoredAt.IsZero() {
		ds.RestoredAt, ds.QuietSince, ds.LastError = now, time.Time{}, ""
		var changed []*Credential
		if old := s.oldCred(); old != nil && old.State != CredRevoked {
			oc, nc := *old, *c
			oc.State, nc.State = CredCurrent, CredPrevious
			changed = append(changed, &oc, &nc)
		}
		if err := s.commit(ctx, changed, s.audit("rollback.restored", map[string]string{"generation": fmt.Sprint(s.r.OldGeneration)})); err != nil {
			return true, err
		}
		s.notify(EventPhase, SeverityWarning, fmt.Sprintf("%s: generation %d is current again in every sink; waiting %s for consumers to move back before revoking generation %d",
			s.r.Key, s.r.OldGeneration, p.QuietPeriod, c.Generation), nil)
	}
	q := TrafficQuery{Key: s.r.Key, Query: p.Query, OldID: c.IssuerID, OldName: c.Name, Since: ds.RestoredAt}
	if old := s.oldCred(); old != nil {
		q.NewID, q.NewName = old.IssuerID, old.Name
	}
	var reading Reading
	var err error
	if p.Source != nil {
		reading, err = p.Source.Unauthorized(ctx, q)
	}
	switch {
	case err != nil:
		ds.LastError, ds.QuietSince = err.Error(), time.Time{}
	case reading.Value > 0:
		ds.LastError, ds.LastValue, ds.QuietSince = "", reading.Value, time.Time{}
	default:
		ds.LastError, ds.LastValue = "", 0
		if ds.QuietSince.IsZero() {
			ds.QuietSince = now
		}
	}
	if !ds.QuietSince.IsZero() && now.Sub(ds.QuietSince) >= p.QuietPeriod {
		return false, nil
	}
	if p.MaxWait > 0 && now.Sub(ds.RestoredAt) >= p.MaxWait {
		s.notify(EventWatchAlert, SeverityCritical, fmt.Sprintf("%s: consumers still use generation %d %s after the rollback (rate %g, last error %q); revoking it as the rollback requires",
			s.r.Key, c.Generation, p.MaxWait, ds.LastValue, ds.LastError), nil)
		return false, nil
	}
	wait := p.PollInterval
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !ds.QuietSince.IsZero() {
		if left := p.QuietPeriod - now.Sub(ds.QuietSince); left < wait {
			wait = left
		}
	}
	return true, s.waitFor(ctx, wait)
}
