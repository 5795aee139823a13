package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// driver interprets one rotation's lifecycle table. It is the only writer
// of a rotation's phase: it runs the current phase's step, fires the
// failpoints around the step's side effects, and turns the step's outcome
// into one commit — the rotation, its credentials, the audit events and the
// outbox rows of every notifier, atomically — plus the phase metrics.
//
// Outcomes are buffered and committed together until the next side effect,
// wait or hold: a phase that passes through without touching anything (a
// start gate nobody configured, a verify that is off) costs no transaction
// of its own. Everything is committed before each side effect, so a crash
// never loses an intent — except before a lazy one (a read-only probe, the
// clean-up after a revoke), where a crash only repeats idempotent work.
type driver struct {
	e     *Engine
	k     *Key
	r     *Rotation
	creds map[int]*Credential
	buf   pending
	// lease fences every commit: nil only for a driver that holds no lease.
	lease *Lease
	// holder is the lease's keeper, told at once when a commit is fenced
	// off, so that the step loop stops before its next side effect.
	holder *holder
}

// holdBy fences the driver's commits with h's lease.
func (d *driver) holdBy(h *holder) { d.lease, d.holder = &h.lease, h }

// pending is what the driver will commit next.
type pending struct {
	creds   []*Credential
	audit   []AuditEvent
	events  []Event
	entered []Phase
	spent   []phaseSpent
	hint    *waitHint
	dirty   bool
	// stated: generations whose buffered change is what a person stated
	// (confirm), not what a side effect did; see flush.
	stated map[int]bool
}

type phaseSpent struct {
	phase Phase
	d     time.Duration
}

func (d *driver) now() time.Time { return d.e.clock.Now() }

// turn runs the current phase once and applies its outcome. It reports
// whether the rotation may go on at once; reload asks the caller to read
// the rotation again (a command changed it meanwhile).
func (d *driver) turn(ctx context.Context) (proceed, reload bool) {
	lc := LifecycleOf(d.r)
	spec, ok := lc.Spec(d.r.Phase)
	if !ok {
		return d.fail(ctx, spec, Permanent(fmt.Errorf("rotation %s: phase %q is not in the %s lifecycle", d.r.ID, d.r.Phase, lc.Name)))
	}
	if d.r.Request.Kind != "" {
		return d.serve(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, d.e.stepTO)
	defer cancel()
	s := &step{e: d.e, k: d.k, r: d.r, creds: d.creds, done: ctx.Done()}
	o := spec.step(s, sctx)
	for o.kind == outAct {
		d.record(o, "rekey")
		if !o.lazy {
			if reload, err := d.flush(ctx); err != nil {
				return false, reload
			}
		}
		d.failpoint(spec.Phase, o.actName, "before")
		next := o.act(sctx)
		if next.kind != outFail {
			d.failpoint(spec.Phase, o.actName, "after")
		}
		o = next
	}
	if o.kind == outFail && errors.Is(o.err, ErrConflict) {
		d.discard()
		return true, true
	}
	if o.kind == outFail && ctx.Err() != nil {
		d.discard()
		return false, true // shutting down: the next start resumes the phase
	}
	return d.apply(ctx, spec, o)
}

// apply turns a step's outcome into state.
func (d *driver) apply(ctx context.Context, spec PhaseSpec, o outcome) (bool, bool) {
	switch o.kind {
	case outNext:
		to, ok := spec.Next[o.edge]
		if !ok {
			return d.fail(ctx, spec, Permanent(fmt.Errorf("rotation %s: %s has no %q edge", d.r.ID, spec.Phase, o.edge)))
		}
		d.record(outcome{creds: o.creds, audits: o.audits, events: o.events}, "rekey")
		d.enter(to, "rekey", o.action, o.detail)
		if to.Terminal() {
			return d.commit(ctx, false)
		}
		return true, false
	case outAgain:
		d.record(o, "rekey")
		d.buf.dirty = true // the step's progress on the rotation itself
		return d.commit(ctx, true)
	case outWait:
		d.record(o, "rekey")
		d.buf.hint = o.hint
		d.r.NextAttemptAt = o.until
		d.buf.dirty = true
		return d.commit(ctx, false)
	case outHold:
		d.record(o, "rekey")
		d.buf.hint = o.hint
		d.holdOn(o)
		return d.commit(ctx, false)
	}
	return d.fail(ctx, spec, o.err)
}

// enter moves the rotation to phase `to`: the one place a phase is written.
func (d *driver) enter(to Phase, actor, action string, detail map[string]string) {
	now := d.now()
	from := d.r.Phase
	if !d.r.PhaseStartedAt.IsZero() {
		d.buf.spent = append(d.buf.spent, phaseSpent{from, now.Sub(d.r.PhaseStartedAt)})
	}
	d.r.Phase = to
	d.r.Hold, d.r.HoldDetail, d.r.HeldSince = HoldNone, "", time.Time{}
	d.r.Attempts, d.r.LastError, d.r.ErrorReason = 0, "", ReasonNone
	d.r.NextAttemptAt, d.r.PhaseStartedAt = now, now
	if detail == nil {
		detail = map[string]string{}
	}
	detail["from"] = string(from)
	if to.Terminal() {
		d.r.FinishedAt = now
		if d.r.Outcome == "" {
			d.r.Outcome = string(to)
		}
		detail["outcome"] = d.r.Outcome
	}
	d.audit(actor, action, detail)
	d.buf.entered = append(d.buf.entered, to)
	if to.Terminal() {
		sev := SeverityInfo
		if to != PhaseDone {
			sev = SeverityWarning
		}
		d.event(EventFinished, sev, fmt.Sprintf("rotation of %s ended: %s", d.r.Key, d.r.Outcome), nil)
		return
	}
	d.event(EventPhase, SeverityInfo, fmt.Sprintf("%s: %s → %s", d.r.Key, from, to), detail)
}

// record buffers what an outcome carries besides its verdict.
func (d *driver) record(o outcome, actor string) {
	if len(o.creds) > 0 {
		d.buf.creds = append(d.buf.creds, o.creds...)
		d.buf.dirty = true
		for _, c := range o.creds {
			d.creds[c.Generation] = c
		}
	}
	if o.action != "" && o.kind != outNext {
		d.audit(actor, o.action, o.detail)
	}
	for _, ev := range o.audits {
		d.buf.audit = append(d.buf.audit, ev)
		d.buf.dirty = true
	}
	for _, ev := range o.events {
		d.buf.events = append(d.buf.events, d.stamp(ev))
		d.buf.dirty = true
	}
}

func (d *driver) audit(actor, action string, detail map[string]string) {
	d.buf.audit = append(d.buf.audit, AuditEvent{At: d.now(), RotationID: d.r.ID, Key: d.r.Key, Actor: actor, Action: action, Phase: d.r.Phase, Detail: detail})
	d.buf.dirty = true
}

func (d *driver) event(kind string, sev Severity, msg string, fields map[string]string) {
	d.buf.events = append(d.buf.events, d.stamp(Event{Kind: kind, Severity: sev, Message: msg, Fields: fields}))
	d.buf.dirty = true
}

// stamp fills an event's rotation fields from the rotation as it is now.
func (d *driver) stamp(ev Event) Event {
	if ev.ID == "" {
		ev.ID = d.r.ID + "-" + randomHex(4)
	}
	ev.Key, ev.RotationID, ev.Phase, ev.Trigger, ev.Mode = d.r.Key, d.r.ID, d.r.Phase, d.r.Trigger, d.r.Mode
	if ev.Actor == "" {
		ev.Actor = d.r.Actor
	}
	ev.Owners = d.k.Owners
	if ev.At.IsZero() {
		ev.At = d.now()
	}
	return ev
}

// commit flushes the buffer; proceed says whether the rotation goes on.
func (d *driver) commit(ctx context.Context, proceed bool) (bool, bool) {
	if reload, err := d.flush(ctx); err != nil {
		return false, reload
	}
	return proceed && !d.r.Phase.Terminal(), false
}

// flush commits the buffered state in one transaction. On a version
// conflict (a command changed the rotation) the buffer is dropped and the
// caller reloads: every step is idempotent, so redoing it is safe.
func (d *driver) flush(ctx context.Context) (reload bool, err error) {
	if !d.buf.dirty && len(d.buf.entered) == 0 {
		return false, nil
	}
	d.r.UpdatedAt = d.now()
	d.r.Waiting = waitingOf(d.k, d.r, d.now(), d.r.Waiting, d.buf.hint)
	for i := range d.buf.events {
		d.buf.events[i].Waiting = d.r.Waiting
	}
	c := Commit{Rotation: d.r, Credentials: d.buf.creds, Audit: d.buf.audit, Lease: d.lease}
	c.Outbox = d.e.dispatch.rows(d.k, d.buf.events)
	err = d.e.store.Save(context.WithoutCancel(ctx), c)
	// A commit fenced off (ErrLeaseLost) writes nothing at all: another
	// daemon holds the rotation and may have moved its key's credentials
	// on; it redoes the step, as after a crash of this one.
	if facts := d.buf.effects(); errors.Is(err, ErrConflict) && !errors.Is(err, ErrLeaseLost) && len(facts) > 0 {
		// A command changed the rotation meanwhile. The phase will be
		// redone, but what a side effect did to credentials (minted,
		// current, revoked) is true whatever the command asked: keep it,
		// or a rollback would act on a stale picture (revoke a new key
		// consumers already read; lose a minted id). Fenced too: a lease
		// lost since must not overwrite what the new holder wrote. A
		// person's confirmation is not such a fact: its request is still
		// stored and is served again, credentials and audit together.
		cerr := d.e.store.Save(context.WithoutCancel(ctx), Commit{Credentials: facts, Lease: d.lease})
		if cerr != nil {
			d.e.log.Error("persist credentials after a conflict", "rotation", d.r.ID, "key", d.r.Key, "err", cerr)
		}
		if errors.Is(cerr, ErrLeaseLost) {
			err = cerr
		}
	}
	if errors.Is(err, ErrLeaseLost) && d.holder != nil {
		// Stop now, not when the heartbeat notices: the loop would read
		// the new holder's state and run its next step.
		d.holder.lose("a commit was fenced off: another daemon holds the rotation")
	}
	if err != nil {
		d.discard()
		if !errors.Is(err, ErrConflict) {
			d.e.log.Error("persist rotation step", "rotation", d.r.ID, "key", d.r.Key, "phase", d.r.Phase, "err", err)
		}
		return true, err
	}
	for _, s := range d.buf.spent {
		d.e.metrics.phaseDone(s.phase, s.d)
	}
	for _, p := range d.buf.entered {
		d.e.metrics.phaseEntered(d.r, p)
	}
	d.e.dispatch.committed(d.k, d.buf.events)
	for _, c := range d.buf.creds {
		if c.State == CredCurrent { // the key's age starts again now, not at the next read of the store
			d.e.metrics.KeyAge(d.r.Key, d.now().Sub(c.CreatedAt))
		}
	}
	if d.r.Phase.Terminal() {
		d.e.dropSecret(d.r.ID)
		d.e.noteEnd(ctx, d.r)
	}
	d.buf = pending{}
	return false, nil
}

func (d *driver) discard() { d.buf = pending{} }

// effects are the buffered credential changes that side effects made.
func (p *pending) effects() []*Credential {
	if len(p.stated) == 0 {
		return p.creds
	}
	var out []*Credential
	for _, c := range p.creds {
		if !p.stated[c.Generation] {
			out = append(out, c)
		}
	}
	return out
}

func (d *driver) failpoint(p Phase, act, when string) {
	if d.e.failpoint == nil {
		return
	}
	name := string(p)
	if act != "" {
		name += "/" + act
	}
	d.e.failpoint(name + ":" + when)
}

// fail records a failed step: retry later with backoff, or on a permanent
// error roll back (while the old credential is live) or hold for a human.
func (d *driver) fail(ctx context.Context, spec PhaseSpec, err error) (bool, bool) {
	r := d.r
	msg := d.e.scrub(r.ID, err.Error())
	reason := ReasonOf(err)
	d.e.metrics.stepError(r.Phase, reason)
	// Only a phase undoable as a whole rolls back on its own: in one that
	// is undoable until its revoke (a staged revoking, past the drain
	// gate) a person decides between retrying and cancelling.
	undo, canRollBack := spec.Next[EdgeUndo]
	canRollBack = canRollBack && spec.Undoable
	switch {
	case IsPermanent(err) && canRollBack:
		d.e.log.Error("rotation step failed permanently; rolling back", "rotation", r.ID, "key", r.Key, "phase", r.Phase, "reason", reason, "err", msg)
		r.RollbackTo = PhaseFailed
		r.Outcome = "failed in " + string(r.Phase) + ": " + msg
		d.enter(undo, "rekey", "step.failed", map[string]string{"error": msg, "reason": string(reason)})
	case IsPermanent(err):
		d.e.log.Error("rotation step failed permanently; holding for a human", "rotation", r.ID, "key", r.Key, "phase", r.Phase, "reason", reason, "err", msg)
		r.LastError, r.ErrorReason = msg, reason
		why := "permanent failure in " + string(r.Phase) + ": " + msg
		d.holdOn(holdFor(HoldFailed, why, zeroTime, SeverityCritical))
	default:
		r.Attempts++
		r.LastError, r.ErrorReason = msg, reason
		delay := retryDelay(d.e.backoff, r.Attempts, err)
		r.NextAttemptAt = d.now().Add(delay)
		d.e.log.Warn("rotation step failed; will retry", "rotation", r.ID, "key", r.Key, "phase", r.Phase, "attempt", r.Attempts, "retry_in", delay.Round(time.Millisecond).String(), "reason", reason, "err", msg)
		d.audit("rekey", "step.retry", map[string]string{"error": msg, "reason": string(reason), "attempt": fmt.Sprint(r.Attempts)})
		if r.Attempts == 1 || r.Attempts%5 == 0 {
			d.event(EventRetrying, SeverityWarning, fmt.Sprintf("%s: %s failed (attempt %d), retrying in %s: %s", r.Key, r.Phase, r.Attempts, delay.Round(time.Second), msg), map[string]string{"reason": string(reason)})
		}
	}
	return d.commit(ctx, false)
}

// start puts a new rotation in the first phase of its lifecycle.
func start(r *Rotation) { r.Phase = LifecycleOf(r).Start }

// holdOn parks the rotation on a person. A new hold is announced; the same
// hold found again at its reminder time is a reminder — critical, for
// on-call, once the wait passed the key's escalate_after, and always for a
// critical hold (an emergency's) — and the next
// reminder is scheduled (never later than the hold's own expiry).
func (d *driver) holdOn(o outcome) {
	now := d.now()
	rem := d.k.Reminders.orDefault()
	until := o.until
	if until.IsZero() {
		until = farFuture
	}
	// Reminders keep their cadence from the start of the wait, whatever
	// re-checks the hold in between.
	since := now
	if d.r.Hold == o.hold && d.r.HoldDetail == o.why || d.r.Hold == o.hold && !d.r.HeldSince.IsZero() {
		since = d.heldSince()
	}
	next := until
	if remind := since.Add((now.Sub(since)/rem.Every + 1) * rem.Every); remind.Before(next) {
		next = remind
	}
	fields := map[string]string{"hold": string(o.hold), "detail": o.why}
	switch {
	case d.r.Hold != o.hold || d.r.HoldDetail != o.why:
		if d.r.Hold != o.hold || d.r.HeldSince.IsZero() {
			d.r.HeldSince = now
		}
		d.r.Hold, d.r.HoldDetail, d.r.NextAttemptAt = o.hold, o.why, next
		d.audit("rekey", "held", fields)
		d.event(EventHeld, o.sev, fmt.Sprintf("%s waits: %s", d.r.Key, o.why), fields)
	case !now.Before(d.r.NextAttemptAt) && d.r.NextAttemptAt.Before(until) && now.Sub(d.heldSince()) >= rem.Every:
		// Due again while still waiting, a reminder period into the wait
		// (a command that only re-checks the hold, such as a first of two
		// approvals, is no reason to remind): remind.
		d.r.HeldSince = d.heldSince()
		waited := now.Sub(d.r.HeldSince)
		// A reminder is never less urgent than the wait it recalls: an
		// emergency's (critical) pages from the first reminder on.
		sev := SeverityWarning
		if o.sev == SeverityCritical {
			sev = SeverityCritical
		}
		if waited >= rem.EscalateAfter {
			sev = SeverityCritical
			fields["escalate"] = "oncall"
		}
		shown := waited.Round(time.Minute)
		if rem.Every < time.Minute {
			shown = waited.Round(time.Second)
		}
		fields["waiting_for"] = shown.String()
		d.r.NextAttemptAt = next
		d.buf.dirty = true
		d.event(EventReminder, sev, fmt.Sprintf("%s still waits for a person after %s: %s", d.r.Key, shown, o.why), fields)
	case !d.r.NextAttemptAt.Equal(next):
		d.r.NextAttemptAt = next
		d.buf.dirty = true
	}
}

// heldSince is when the current hold began (a rotation held before
// held_since was recorded: its phase start).
func (d *driver) heldSince() time.Time {
	if d.r.HeldSince.IsZero() {
		return d.r.PhaseStartedAt
	}
	return d.r.HeldSince
}
