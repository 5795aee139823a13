package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// farFuture is the next-attempt time of a hold that only a human clears.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one execution of a rotation's current phase.
type step struct {
	e       *Engine
	k       *Key
	r       *Rotation
	started time.Time
	creds   map[int]*Credential
	// proceed: the rotation moved on and the next phase may run at once.
	proceed bool
	err     error
}

func (s *step) run(ctx context.Context) error {
	if s.creds == nil {
		if err := s.loadCreds(ctx); err != nil {
			return err
		}
	}
	switch s.r.Phase {
	case PhaseAwaitingApproval:
		return s.awaitStart(ctx)
	case PhaseMinting:
		return s.mint(ctx)
	case PhaseStaging:
		return s.stage(ctx)
	case PhaseVerifying:
		return s.verify(ctx)
	case PhaseCuttingOver:
		return s.cutOver(ctx)
	case PhaseDraining:
		return s.drain(ctx)
	case PhaseRevoking:
		return s.revoke(ctx)
	case PhaseWatching:
		return s.watch(ctx)
	case PhaseCleaning:
		return s.clean(ctx)
	case PhaseRemoving:
		return s.remove(ctx)
	case PhaseRollingBack:
		return s.rollBack(ctx)
	}
	return Permanent(fmt.Errorf("rotation %s: unknown phase %q", s.r.ID, s.r.Phase))
}

func (s *step) now() time.Time { return s.e.clock.Now() }

func (s *step) loadCreds(ctx context.Context) error {
	list, err := s.e.store.Credentials(ctx, s.r.Key)
	if err != nil {
		return fmt.Errorf("load credentials of %s: %w", s.r.Key, err)
	}
	s.creds = make(map[int]*Credential, len(list))
	for _, c := range list {
		s.creds[c.Generation] = c
	}
	return nil
}

func (s *step) oldCred() *Credential { return s.creds[s.r.OldGeneration] }
func (s *step) newCred() *Credential { return s.creds[s.r.NewGeneration] }

func (s *step) audit(action string, detail map[string]string) AuditEvent {
	return AuditEvent{
		At:         s.now(),
		RotationID: s.r.ID,
		Key:        s.r.Key,
		Actor:      "rekey",
		Action:     action,
		Phase:      s.r.Phase,
		Detail:     detail,
	}
}

// commit persists the rotation with the given credential changes and events.
func (s *step) commit(ctx context.Context, creds []*Credential, evs ...AuditEvent) error {
	s.r.UpdatedAt = s.now()
	if err := s.e.store.Save(context.WithoutCancel(ctx), Commit{Rotation: s.r, Credentials: creds, Audit: evs}); err != nil {
		return err
	}
	if s.creds != nil {
		for _, c := range creds {
			s.creds[c.Generation] = c
		}
	}
	return nil
}

// advance moves the rotation to phase `to`, persisting it with creds and an
// audit event, then notifies.
func (s *step) advance(ctx context.Context, to Phase, creds []*Credential, action string, detail map[string]string) error {
	now := s.now()
	from := s.r.Phase
	if !s.r.PhaseStartedAt.IsZero() {
		s.e.metrics.phaseDone(from, now.Sub(s.r.PhaseStartedAt))
	}
	s.r.Phase = to
	s.r.Hold, s.r.HoldDetail = HoldNone, ""
	s.r.Attempts, s.r.LastError, s.r.ErrorReason = 0, "", ReasonNone
	s.r.NextAttemptAt = now
	s.r.PhaseStartedAt = now
	if detail == nil {
		detail = map[string]string{}
	}
	detail["from"] = string(from)
	if to.Terminal() {
		s.r.FinishedAt = now
		if s.r.Outcome == "" {
			s.r.Outcome = string(to)
		}
		detail["outcome"] = s.r.Outcome
	}
	if err := s.commit(ctx, creds, s.audit(action, detail)); err != nil {
		return err
	}
	s.e.metrics.phaseEntered(s.r, to)
	s.proceed = !to.Terminal()
	if to.Terminal() {
		s.e.dropSecret(s.r.ID)
		sev := SeverityInfo
		if to != PhaseDone {
			sev = SeverityWarning
		}
		s.notify(EventFinished, sev, fmt.Sprintf("rotation of %s ended: %s", s.r.Key, s.r.Outcome), nil)
	} else {
		s.notify(EventPhase, SeverityInfo, fmt.Sprintf("%s: %s → %s", s.r.Key, from, to), detail)
	}
	return nil
}

// hold parks the rotation until a human acts (or until `until`, for holds
// that expire). Re-holding with the same reason writes nothing.
func (s *step) hold(ctx context.Context, h Hold, detail string, until time.Time, sev Severity) error {
	if until.IsZero() {
		until = farFuture
	}
	if s.r.Hold == h && s.r.HoldDetail == detail && s.r.NextAttemptAt.Equal(until) {
		return nil
	}
	s.r.Hold, s.r.HoldDetail = h, detail
	s.r.NextAttemptAt = until
	if err := s.commit(ctx, nil, s.audit("held", map[string]string{"hold": string(h), "detail": detail})); err != nil {
		return err
	}
	s.notify(EventHeld, sev, fmt.Sprintf("%s waits: %s", s.r.Key, detail), map[string]string{"hold": string(h), "detail": detail})
	return nil
}

// waitFor re-schedules the same phase after d (polling phases).
func (s *step) waitFor(ctx context.Context, d time.Duration) error {
	s.r.NextAttemptAt = s.now().Add(d)
	return s.commit(ctx, nil)
}

func (s *step) notify(kind string, sev Severity, msg string, fields map[string]string) {
	s.e.dispatch.send(s.k, Event{
		ID:         s.r.ID + "-" + randomHex(4),
		Kind:       kind,
		Severity:   sev,
		Key:        s.r.Key,
		RotationID: s.r.ID,
		Phase:      s.r.Phase,
		Trigger:    s.r.Trigger,
		Mode:       s.r.Mode,
		Actor:      s.r.Actor,
		Owners:     s.k.Owners,
		Message:    msg,
		Fields:     fields,
		At:         s.now(),
	})
}

func (s *step) failpoint(name string) {
	if s.e.failpoint != nil {
		s.e.failpoint(string(s.r.Phase) + ":" + name)
	}
}

func (s *step) ref(c *Credential) CredentialRef {
	return CredentialRef{Key: c.Key, RotationID: s.r.ID, Name: c.Name, Generation: c.Generation, ID: c.IssuerID, Fingerprint: c.Fingerprint, Params: s.k.Params}
}

func (s *step) delivery(secret Secret) Delivery {
	d := Delivery{RotationID: s.r.ID, Secret: secret}
	if c := s.newCred(); c != nil {
		d.Generation, d.Fingerprint = c.Generation, c.Fingerprint
	}
	if c := s.oldCred(); c != nil {
		d.OldGeneration, d.OldFingerprint = c.Generation, c.Fingerprint
	}
	return d
}

// eachSink runs f for every sink of the key, stopping at the first error.
func (s *step) eachSink(f func(b SinkBinding) error) error {
	for _, b := range s.k.Sinks {
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

// fail records a failed step: retry later, roll back, or hold for a human.
func (e *Engine) fail(ctx context.Context, k *Key, r *Rotation, phase Phase, err error) {
	msg := e.scrub(r.ID, err.Error())
	reason := ReasonOf(err)
	e.metrics.stepError(phase, reason)
	s := &step{e: e, k: k, r: r}
	var serr error
	switch {
	case IsPermanent(err) && phase != PhaseRollingBack && oldStillLive(r):
		e.log.Error("rotation step failed permanently; rolling back", "rotation", r.ID, "key", r.Key, "phase", phase, "reason", reason, "err", msg)
		r.RollbackTo = PhaseFailed
		r.Outcome = "failed in " + string(phase) + ": " + msg
		serr = s.advance(ctx, PhaseRollingBack, nil, "step.failed", map[string]string{"error": msg, "reason": string(reason)})
	case IsPermanent(err):
		e.log.Error("rotation step failed permanently; holding for a human", "rotation", r.ID, "key", r.Key, "phase", phase, "reason", reason, "err", msg)
		r.LastError, r.ErrorReason = msg, reason
		serr = s.hold(ctx, HoldFailed, "permanent failure in "+string(phase)+": "+msg, time.Time{}, SeverityCritical)
	default:
		r.Attempts++
		r.LastError, r.ErrorReason = msg, reason
		delay := e.backoff.Delay(r.Attempts)
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) && ra.RetryAfter() > delay {
			delay = ra.RetryAfter()
		}
		r.NextAttemptAt = e.clock.Now().Add(delay)
		e.log.Warn("rotation step failed; will retry", "rotation", r.ID, "key", r.Key, "phase", phase, "attempt", r.Attempts, "retry_in", delay.Round(time.Millisecond).String(), "reason", reason, "err", msg)
		serr = s.commit(ctx, nil, s.audit("step.retry", map[string]string{"error": msg, "reason": string(reason), "attempt": fmt.Sprint(r.Attempts)}))
		if r.Attempts == 1 || r.Attempts%5 == 0 {
			s.notify(EventRetrying, SeverityWarning, fmt.Sprintf("%s: %s failed (attempt %d), retrying in %s: %s", r.Key, phase, r.Attempts, delay.Round(time.Second), msg), map[string]string{"reason": string(reason)})
		}
	}
	if serr != nil {
		e.log.Error("persist failed step", "rotation", r.ID, "err", serr)
	}
}

// scrub removes a rotation's in-memory secret from a message, a last line of
// defence should an adapter echo it.
func (e *Engine) scrub(rotationID, msg string) string {
	if sec, ok := e.getSecret(rotationID); ok {
		return sec.Scrub(msg)
	}
	return msg
}

func (e *Engine) putSecret(id string, s Secret) {
	e.mu.Lock()
	e.secrets[id] = s
	e.mu.Unlock()
}

func (e *Engine) getSecret(id string) (Secret, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.secrets[id]
	return s, ok
}

func (e *Engine) dropSecret(id string) {
	e.mu.Lock()
	delete(e.secrets, id)
	e.mu.Unlock()
}
