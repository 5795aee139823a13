package rotator

import (
	"context"
	"errors"
	"fmt"
)

// errSecretLost: the new secret is neither in memory nor readable from any
// sink (a crash between mint and staging). The generation is abandoned.
var errSecretLost = errors.New("the new secret is no longer available")

// secret returns the new credential's secret from memory, or reads it back
// from a sink that already holds it as pending.
func (s *step) secret(ctx context.Context) (Secret, error) {
	if sec, ok := s.e.getSecret(s.r.ID); ok {
		return sec, nil
	}
	c := s.newCred()
	if c == nil || !c.Minted() {
		return Secret{}, errSecretLost
	}
	for _, b := range s.k.Sinks {
		pr, ok := b.Sink.(PendingReader)
		if !ok {
			continue
		}
		sec, err := pr.ReadPending(ctx, b.Target, c.Fingerprint)
		if err != nil || sec.IsZero() || sec.Fingerprint() != c.Fingerprint {
			continue
		}
		s.e.putSecret(s.r.ID, sec)
		return sec, nil
	}
	return Secret{}, errSecretLost
}

// stage writes the new secret as pending beside the current one in every
// sink — or, in an emergency, straight as the current value (deliver). An
// emergency by hand stages too: cutting over right after keeps the leaked
// value as previous, never current, so that the person's confirmation can
// be probed with it whichever comes first; cleaning drops it once the
// revoke is confirmed.
func (s *step) stage(ctx context.Context) outcome {
	sec, err := s.secret(ctx)
	if errors.Is(err, errSecretLost) {
		return s.abandon()
	}
	d := s.delivery(sec)
	if s.r.Mode == ModeEmergency && !s.byHand() {
		return s.deliver(d)
	}
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.eachSink(func(b SinkBinding) error {
			if err := b.Sink.Stage(ctx, b.Target, d); err != nil {
				return fmt.Errorf("sink %s: stage %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		return advance("staged", map[string]string{"sinks": fmt.Sprint(len(s.k.Sinks))})
	})
}

// deliver writes the replacement of an emergency straight as the current
// value of every sink, with nothing kept beside it: the old credential is
// revoked already, so there is nothing to stage beside, no consumer to
// move over gently, and nothing to clean up afterwards. A sink that cannot
// replace in one call gets Stage, Promote and Cleanup in a row.
func (s *step) deliver(d Delivery) outcome {
	c := s.newCred()
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.eachSink(func(b SinkBinding) error {
			if err := replace(ctx, b, d); err != nil {
				return fmt.Errorf("sink %s: deliver %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		o := advance("delivered", map[string]string{"sinks": fmt.Sprint(len(s.k.Sinks)), "generation": fmt.Sprint(d.Generation)})
		if c != nil {
			nc := *c
			nc.State = CredCurrent
			o = o.with(&nc)
		}
		if old := s.oldCred(); old != nil && old.State != CredRevoked {
			oc := *old
			oc.State = CredPrevious
			o = o.with(&oc)
		}
		return o
	})
}

// replace makes d the only value of one sink target.
func replace(ctx context.Context, b SinkBinding, d Delivery) error {
	if r, ok := b.Sink.(Replacer); ok {
		return r.Replace(ctx, b.Target, d)
	}
	if err := b.Sink.Stage(ctx, b.Target, d); err != nil {
		return err
	}
	if err := b.Sink.Promote(ctx, b.Target, d); err != nil {
		return err
	}
	return b.Sink.Cleanup(ctx, b.Target, d)
}

// abandon gives up a generation whose secret was lost before every sink had
// it: it is removed from the sinks and revoked at the issuer (a credential
// nobody can deliver must not stay live), and minting starts over.
func (s *step) abandon() outcome {
	c := s.newCred()
	if c == nil {
		s.r.NewGeneration = 0
		return advance("abandoned", nil).via(EdgeAbandon)
	}
	d := s.delivery(Secret{})
	return sideEffect("abandon", func(ctx context.Context) outcome {
		// An emergency's old value is revoked: there is nothing to go back
		// to, and the next delivery replaces whatever a sink holds. An
		// emergency by hand staged beside the leaked value: drop the
		// pending one.
		if err := s.eachSink(func(b SinkBinding) error {
			if s.r.Mode == ModeEmergency && !s.byHand() {
				return nil
			}
			if err := s.rollbackSink(ctx, b, d); err != nil {
				return fmt.Errorf("sink %s: remove abandoned generation from %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		var note []Event
		if c.Minted() {
			if _, ok := s.k.Issuer.(HumanIssuer); ok {
				// No command follows: the rotation asks for a new key
				// next, and a confirm would be refused.
				note = append(note, s.event(EventOrphan, SeverityCritical, fmt.Sprintf(
					"%s: the submitted secret for %s (fingerprint %s) was lost before delivery; revoke it by hand (delete %s in the dashboard) — nothing uses it and there is nothing to confirm; rekey asks for a new key next",
					s.r.Key, c.Name, ShortFingerprint(c.Fingerprint), c.Name), map[string]string{"name": c.Name}))
			} else if err := s.revokeAt(ctx, s.ref(c)); err != nil {
				return failed(fmt.Errorf("issuer %s: revoke abandoned %s: %w", s.k.IssuerName, c.Name, err))
			}
		}
		cc := *c
		cc.State, cc.RevokedAt = CredRevoked, s.now()
		s.r.NewGeneration = 0
		o := advance("abandoned", map[string]string{
			"generation": fmt.Sprint(c.Generation), "why": "secret lost before every sink held it (crash); revoked and minting again",
		}).via(EdgeAbandon).with(&cc)
		o.events = note
		return o
	})
}

// verify probes the new credential before consumers are cut over to it
// (staged) or right after (emergency).
func (s *step) verify(ctx context.Context) outcome {
	v, ok := s.k.Issuer.(Verifier)
	if vc, has := s.k.Issuer.(VerifyConfigurer); has && !vc.VerifyConfigured() {
		ok = false
	}
	if !s.k.Verify || !ok {
		return advance("verify.skipped", nil)
	}
	sec, err := s.secret(ctx)
	if errors.Is(err, errSecretLost) {
		if s.r.Mode == ModeStaged {
			return s.abandon()
		}
		return advance("verify.skipped", map[string]string{"why": "secret not readable after restart"})
	}
	return sideEffect("", func(ctx context.Context) outcome {
		if err := v.Verify(ctx, s.r.Key, sec, s.k.Params); err != nil {
			return failed(fmt.Errorf("issuer %s: verify generation %d: %w", s.k.IssuerName, s.r.NewGeneration, err))
		}
		return advance("verified", nil)
	}).lazily()
}

// cutOver makes the new credential current in every sink.
func (s *step) cutOver(ctx context.Context) outcome {
	c := s.newCred()
	if c == nil || !c.Minted() {
		return failed(Permanent(fmt.Errorf("rotation %s: cut-over without a minted credential", s.r.ID)))
	}
	d := s.delivery(Secret{})
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.eachSink(func(b SinkBinding) error {
			if err := b.Sink.Promote(ctx, b.Target, d); err != nil {
				return fmt.Errorf("sink %s: promote %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		nc := *c
		nc.State = CredCurrent
		o := advance("cut_over", map[string]string{"generation": fmt.Sprint(c.Generation)}).with(&nc)
		if old := s.oldCred(); old != nil && old.State != CredRevoked {
			oc := *old
			oc.State = CredPrevious
			o = o.with(&oc)
		}
		if s.r.Mode == ModeStaged && s.r.OldGeneration == 0 {
			o = o.via(EdgeBootstrap)
		}
		return o
	})
}

// clean drops the previous (revoked) value from every sink and ends the
// rotation.
func (s *step) clean(ctx context.Context) outcome {
	d := s.delivery(Secret{})
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.eachSink(func(b SinkBinding) error {
			if err := b.Sink.Cleanup(ctx, b.Target, d); err != nil {
				return fmt.Errorf("sink %s: clean up %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		s.r.Outcome = "done"
		return advance("finished", nil)
	}).lazily()
}

// remove deletes the key from every sink (decommission).
func (s *step) remove(ctx context.Context) outcome {
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.eachSink(func(b SinkBinding) error {
			rm, ok := b.Sink.(Remover)
			if !ok {
				return Permanent(fmt.Errorf("sink %s cannot remove keys", b.SinkName))
			}
			if err := rm.Remove(ctx, b.Target); err != nil {
				return fmt.Errorf("sink %s: remove %s: %w", b.SinkName, b.Target.Path, err)
			}
			return nil
		}); err != nil {
			return failed(err)
		}
		if err := s.e.markDecommissioned(ctx, s.r.Key, s.now()); err != nil {
			return failed(err)
		}
		s.r.Outcome = "decommissioned"
		return advance("decommissioned", nil)
	})
}
