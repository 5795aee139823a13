package rotator

import (
	"fmt"
	"time"
)

// WaitReason says what an active rotation is waiting for. The set is open:
// gates added later (consumer attestation, leases) add their own reasons,
// and readers show an unknown reason as it is.
type WaitReason string

const (
	WaitApproval      WaitReason = "approval"       // approvals for a gate are missing
	WaitSecret        WaitReason = "secret"         // a person must mint and submit the new secret
	WaitConfirm       WaitReason = "confirm"        // a person must revoke by hand and confirm
	WaitQuietPeriod   WaitReason = "quiet_period"   // the drain gate counts quiet time
	WaitTrafficError  WaitReason = "traffic_error"  // the drain gate's traffic source does not answer
	WaitRetryBackoff  WaitReason = "retry_backoff"  // a step failed; retried after a backoff
	WaitRollingBack   WaitReason = "rolling_back"   // consumers move back to the old key before the new one is revoked
	WaitDrainDecision WaitReason = "drain_decision" // the drain gate gave up: a person decides
	WaitHeld          WaitReason = "held"           // a permanent failure: a person decides
	WaitWatching      WaitReason = "watching"       // the post-revoke watch looks for callers of the old key
)

// Waiting is the structured form of what an active rotation waits for, so
// an operator sees why nothing moves, until when, and how far it got. It is
// computed by the engine whenever it commits a rotation (waitingOf) and
// persisted with it: Since survives restarts.
type Waiting struct {
	Reason WaitReason `json:"reason"`
	Detail string     `json:"detail"`
	Since  time.Time  `json:"since"`
	// NextCheck is when the engine looks again (zero: only a person moves it).
	NextCheck time.Time `json:"next_check,omitzero"`
	// Deadline is when waiting ends on its own (expiry, max_wait).
	Deadline time.Time `json:"deadline,omitzero"`
	// Escalates is when a wait on a person escalates to on-call (its
	// reminders page from then on); zero once it has, or for no person.
	Escalates time.Time `json:"escalates,omitzero"`
	Progress  *Progress `json:"progress,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Progress is how far a counted wait got: Done of Of Units ("s",
// "approvals").
type Progress struct {
	Done int64  `json:"done"`
	Of   int64  `json:"of"`
	Unit string `json:"unit"`
}

// waitHint is what a step knows about its wait that the rotation's state
// does not say (how many approvals of how many, when a hold expires). A
// gate with a reason of its own (consumer attestation, say) sets reason
// and detail: they replace what the state would give.
type waitHint struct {
	reason    WaitReason
	detail    string
	deadline  time.Time
	progress  *Progress
	lastError string
}

// hinting attaches a wait hint to a wait or hold outcome.
func (o outcome) hinting(h waitHint) outcome { o.hint = &h; return o }

// waitingOf derives r's waiting state from its persisted state after an
// outcome was applied; prev (r's waiting state before) keeps Since while
// the reason stays the same. A rotation that runs (or ended) waits for
// nothing: nil.
func waitingOf(k *Key, r *Rotation, now time.Time, prev *Waiting, hint *waitHint) *Waiting {
	if r.Phase.Terminal() {
		return nil
	}
	var w *Waiting
	switch {
	case r.Hold != HoldNone:
		w = heldWaiting(r)
		rem := k.Reminders.orDefault()
		// An emergency by hand never expires its wait for the
		// replacement (it escalates): no deadline it would not honour.
		if r.Hold == HoldSecret && !r.HeldSince.IsZero() && r.Lifecycle != lifecycleByHand {
			w.Deadline = r.HeldSince.Add(rem.SecretExpireAfter)
		}
		if at := r.HeldSince.Add(rem.EscalateAfter); !r.HeldSince.IsZero() && now.Before(at) {
			w.Escalates = at
		}
	case r.Attempts > 0 && r.LastError != "":
		w = &Waiting{Reason: WaitRetryBackoff, NextCheck: r.NextAttemptAt, LastError: r.LastError,
			Detail: fmt.Sprintf("%s failed %d time(s) (%s); retrying with backoff", r.Phase, r.Attempts, orDash(string(r.ErrorReason)))}
	case r.Phase == PhaseDraining:
		w = drainWaiting(k, r, now)
	case r.Phase == PhaseRollingBack && !r.Drain.RestoredAt.IsZero():
		w = rollbackWaiting(k, r, now)
	case r.Phase == PhaseWatching && !r.Watch.StartedAt.IsZero() && k.Watch.Period > 0:
		w = &Waiting{Reason: WaitWatching, Since: r.Watch.StartedAt, NextCheck: r.NextAttemptAt,
			Deadline: now.Add(max(k.Watch.Period-r.Watch.Observed, 0)),
			Progress: seconds(r.Watch.Observed, k.Watch.Period),
			Detail:   fmt.Sprintf("%s (%d readings, %d errors)", watchDetail(k.Drain, r.OldGeneration), r.Watch.Readings, r.Watch.Errors)}
		if r.Watch.Gaps > 0 {
			w.Detail += fmt.Sprintf("; %d gap(s) in observation not counted", r.Watch.Gaps)
		}
	case hint != nil && hint.reason != "":
		w = &Waiting{NextCheck: r.NextAttemptAt}
	default:
		return nil
	}
	if hint != nil && hint.reason != "" {
		if w.Reason != hint.reason {
			w.Since = time.Time{}
		}
		w.Reason, w.Detail, w.LastError = hint.reason, hint.detail, hint.lastError
	}
	if hint != nil {
		if !hint.deadline.IsZero() {
			w.Deadline = hint.deadline
		}
		if hint.progress != nil {
			w.Progress = hint.progress
		}
	} else if prev != nil && prev.Reason == w.Reason && w.Deadline.IsZero() && r.Lifecycle != lifecycleByHand {
		w.Deadline = prev.Deadline // a re-check of the same hold keeps its expiry
	}
	if w.NextCheck.Year() >= 9999 {
		w.NextCheck = time.Time{}
	}
	if w.Since.IsZero() {
		w.Since = now
		if prev != nil && prev.Reason == w.Reason {
			w.Since = prev.Since
		}
	}
	return w
}

func heldWaiting(r *Rotation) *Waiting {
	w := &Waiting{Detail: r.HoldDetail, Since: r.HeldSince}
	switch r.Hold {
	case HoldApproval:
		w.Reason = WaitApproval
	case HoldSecret:
		w.Reason = WaitSecret
	case HoldConfirm:
		w.Reason = WaitConfirm
	case HoldDrainTimeout:
		w.Reason, w.LastError = WaitDrainDecision, r.Drain.LastError
	default:
		w.Reason, w.LastError = WaitHeld, r.LastError
	}
	return w
}

func drainWaiting(k *Key, r *Rotation, now time.Time) *Waiting {
	ds, p := r.Drain, k.Drain
	w := &Waiting{NextCheck: r.NextAttemptAt, Since: ds.StartedAt}
	if p.MaxWait > 0 && !ds.StartedAt.IsZero() {
		w.Deadline = ds.StartedAt.Add(p.MaxWait)
	}
	switch {
	case ds.LastError != "":
		w.Reason, w.LastError, w.Since = WaitTrafficError, ds.LastError, time.Time{}
		w.Detail = fmt.Sprintf("traffic source %s does not answer; the quiet period cannot start", errorSources(p, ds))
	case ds.QuietSince.IsZero():
		w.Reason = WaitQuietPeriod
		w.Progress = seconds(0, p.QuietPeriod)
		w.Detail = busyDetail(p, ds)
	default:
		w.Reason = WaitQuietPeriod
		w.Progress = seconds(now.Sub(ds.QuietSince), p.QuietPeriod)
		if len(p.Require()) == 0 {
			w.Detail = fmt.Sprintf("source %s observes nothing: waiting the quiet period, %s of %s", p.sourceNames(), now.Sub(ds.QuietSince).Round(time.Second), p.QuietPeriod) + quietRestartNote(ds)
		} else {
			w.Detail = quietDetail(p, ds, now.Sub(ds.QuietSince).Round(time.Second).String(), p.QuietPeriod.String()) + quietRestartNote(ds)
		}
	}
	return w
}

func rollbackWaiting(k *Key, r *Rotation, now time.Time) *Waiting {
	ds, p := r.Drain, k.Drain
	w := &Waiting{Reason: WaitRollingBack, Since: ds.RestoredAt, NextCheck: r.NextAttemptAt, LastError: ds.LastError}
	if p.MaxWait > 0 {
		w.Deadline = ds.RestoredAt.Add(p.MaxWait)
	}
	quiet := time.Duration(0)
	if !ds.QuietSince.IsZero() {
		quiet = now.Sub(ds.QuietSince)
	}
	w.Progress = seconds(quiet, p.QuietPeriod)
	w.Detail = fmt.Sprintf("generation %d is current again; waiting for consumers to move back before revoking generation %d", r.OldGeneration, r.NewGeneration) + quietRestartNote(ds)
	return w
}

func seconds(done, of time.Duration) *Progress {
	d := int64(done / time.Second)
	if o := int64(of / time.Second); d > o {
		d = o
	}
	return &Progress{Done: max(d, 0), Of: int64(of / time.Second), Unit: "s"}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
