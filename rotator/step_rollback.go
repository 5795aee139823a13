package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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

// rollBack undoes a staged rotation whose old credential is still live, in
// three moves: the old value becomes current again in every sink; if
// consumers already read the new key, they get the drain gate's quiet
// period to move back; then the new credential is revoked. It ends in
// r.RollbackTo (failed, cancelled, denied).
func (s *step) rollBack(ctx context.Context) outcome {
	edge := Edge(s.r.RollbackTo)
	if !s.r.RollbackTo.Terminal() || edge == Edge(PhaseDone) || edge == Edge(PhaseExpired) {
		edge = EdgeCancelled
	}
	c := s.newCred()
	if c == nil {
		return advance("rolled_back", nil).via(edge)
	}
	ds := &s.r.Drain
	if !ds.SinksRestored {
		wasCurrent := c.State == CredCurrent
		d := s.delivery(Secret{})
		return sideEffect("", func(ctx context.Context) outcome {
			if err := s.eachSink(func(b SinkBinding) error {
				if err := s.rollbackSink(ctx, b, d); err != nil {
					return fmt.Errorf("sink %s: roll back %s: %w", b.SinkName, b.Target.Path, err)
				}
				return nil
			}); err != nil {
				return failed(err)
			}
			ds.SinksRestored = true
			if !wasCurrent || c.State == CredRevoked {
				return again("rollback.restored", map[string]string{"generation": fmt.Sprint(s.r.OldGeneration)})
			}
			// Consumers already read the new key: they get the drain gate's
			// quiet period to move back before it is revoked, or the
			// rollback itself would be an outage.
			ds.RestoredAt, ds.QuietSince, ds.LastError, ds.LastPollAt, ds.QuietGap = s.now(), time.Time{}, "", time.Time{}, 0
			o := again("rollback.restored", map[string]string{"generation": fmt.Sprint(s.r.OldGeneration)})
			if old := s.oldCred(); old != nil && old.State != CredRevoked {
				oc, nc := *old, *c
				oc.State, nc.State = CredCurrent, CredPrevious
				o = o.with(&oc, &nc)
			}
			return o.notifying(s.event(EventPhase, SeverityWarning, fmt.Sprintf("%s: generation %d is current again in every sink; waiting %s for consumers to move back before revoking generation %d",
				s.r.Key, s.r.OldGeneration, s.k.Drain.QuietPeriod, c.Generation), nil))
		})
	}
	var extra []Event
	if !ds.RestoredAt.IsZero() && c.State != CredRevoked && !ds.Urgent {
		o, waiting := s.rollbackDrain(ctx, c)
		if waiting {
			return o
		}
		extra = o.events
	}
	if c.State == CredRevoked {
		return s.rolledBack(c, edge)
	}
	var o outcome
	switch h, human := s.k.Issuer.(HumanIssuer); {
	case !c.Minted() && human:
		// A person was asked to mint c: if they did, it is live and
		// nobody will use it. (No command follows: the rotation ended.)
		_ = h
		o = s.rolledBack(c, edge).notifying(s.event(EventOrphan, SeverityWarning, fmt.Sprintf(
			"%s: the rotation that asked for %s ended (%s); if you minted %s, revoke it at the issuer (delete %s in the dashboard) — it was never delivered and nothing uses it; there is nothing to submit or confirm",
			s.r.Key, c.Name, s.r.Outcome, c.Name, c.Name), map[string]string{"name": c.Name}))
	case !c.Minted():
		o = s.rollbackOrphans(ctx, c, edge)
	case human:
		why := "rolling back: " + h.RevokeInstructions(s.ref(c))
		if s.r.Hold == HoldConfirm {
			why = s.r.HoldDetail
		}
		o = holdFor(HoldConfirm, why, zeroTime, SeverityWarning)
	default:
		ref := s.ref(c)
		o = sideEffect("revoke", func(ctx context.Context) outcome {
			if err := s.revokeAt(ctx, ref); err != nil {
				return failed(fmt.Errorf("issuer %s: revoke %s during rollback: %w", s.k.IssuerName, c.Name, err))
			}
			return s.rolledBack(c, edge)
		})
	}
	o.events = append(extra, o.events...)
	return o
}

// rollbackOrphans: the new generation was never recorded as minted, but an
// attempt may have minted it; revoke any credential of its name first.
func (s *step) rollbackOrphans(ctx context.Context, c *Credential, edge Edge) outcome {
	if f, ok := s.k.Issuer.(Finder); ok {
		ids, err := f.FindByName(ctx, s.r.Key, c.Name)
		if err != nil {
			return failed(fmt.Errorf("issuer %s: look for orphans named %s: %w", s.k.IssuerName, c.Name, err))
		}
		if len(ids) > 0 {
			o := s.reap(c, ids[0])
			o.actName = "reap"
			return o
		}
	}
	return s.rolledBack(c, edge)
}

// rolledBack ends the rollback: the new credential revoked, the old one
// current.
func (s *step) rolledBack(c *Credential, edge Edge) outcome {
	o := advance("rolled_back", map[string]string{"generation": fmt.Sprint(c.Generation)}).via(edge)
	if c.State != CredRevoked {
		o = o.with(revokedCopy(c, s.now()))
	}
	if old := s.oldCred(); old != nil && old.State != CredRevoked && old.State != CredCurrent {
		oc := *old
		oc.State = CredCurrent
		o = o.with(&oc)
	}
	return o
}

// rollbackDrain, once the old key is current again everywhere, waits until
// the traffic source reports no use of the new key for the quiet period
// (or max_wait passed, after which the rollback proceeds: a human asked
// for it). It reports whether the rotation is still waiting.
func (s *step) rollbackDrain(ctx context.Context, c *Credential) (outcome, bool) {
	p := s.k.Drain
	ds := &s.r.Drain
	now := s.now()
	interval := pollInterval(p.PollInterval)
	gap := s.restartQuietAfterGap(ds, now, interval)
	reading, err := s.rollbackReading(ctx, c)
	ds.LastPollAt = s.now()
	switch {
	case err != nil:
		ds.LastError, ds.QuietSince, ds.QuietGap = err.Error(), time.Time{}, 0
	case reading.Value > 0:
		ds.LastError, ds.LastValue, ds.QuietSince, ds.QuietGap = "", reading.Value, time.Time{}, 0
	default:
		ds.LastError, ds.LastValue = "", 0
		if ds.QuietSince.IsZero() {
			ds.QuietSince = now
		}
	}
	if !ds.QuietSince.IsZero() && now.Sub(ds.QuietSince) >= p.QuietPeriod {
		return outcome{}, false
	}
	if p.MaxWait > 0 && now.Sub(ds.RestoredAt) >= p.MaxWait {
		return outcome{events: []Event{s.event(EventWatchAlert, SeverityCritical, fmt.Sprintf("%s: consumers still use generation %d %s after the rollback (rate %g, last error %q); revoking it as the rollback requires",
			s.r.Key, c.Generation, p.MaxWait, ds.LastValue, ds.LastError), nil)}}, false
	}
	wait := interval
	if !ds.QuietSince.IsZero() {
		if left := p.QuietPeriod - now.Sub(ds.QuietSince); left < wait {
			wait = left
		}
	}
	o := waitUntil(now.Add(wait))
	if gap != nil {
		o = o.recording("drain.quiet_restarted", gap)
	}
	return o, true
}

// rollbackReading asks the gate whether the generation rolled back from
// (c) is still used: the gate's old-key-use checks, with the roles of the
// generations swapped — c is the one to drain away from, the restored one
// is the one consumers move to — so that a source that compares
// generations (consumer attestations) sees consumers still on c as
// behind. A gate that cannot see old-key use asks its first source as
// before (the rollback then waits its quiet period).
func (s *step) rollbackReading(ctx context.Context, c *Credential) (Reading, error) {
	p := s.k.Drain
	q := TrafficQuery{Key: s.r.Key, Query: p.Query, OldID: c.IssuerID, OldName: c.Name, OldGeneration: c.Generation, Since: s.r.Drain.RestoredAt}
	if old := s.oldCred(); old != nil {
		q.NewID, q.NewName, q.NewGeneration = old.IssuerID, old.Name, old.Generation
	}
	var uses []DrainCheck
	for _, ch := range p.checks() {
		if ch.Question == OldKeyUse {
			uses = append(uses, ch)
		}
	}
	if len(uses) == 0 {
		if p.Source == nil {
			return Reading{}, nil
		}
		return p.Source.Unauthorized(ctx, q)
	}
	var total Reading
	for _, ch := range uses {
		cq := q
		cq.Question, cq.Query = OldKeyUse, ch.Query
		r, err := ch.Source.Unauthorized(ctx, cq)
		if err != nil {
			return Reading{}, fmt.Errorf("%s: %w", ch.SourceName, err)
		}
		total.Value += r.Value
	}
	return total, nil
}
