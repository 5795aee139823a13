package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// InboundEvent is an accepted inbound report, recorded before the sender is
// answered. Payload is JSON without secret material (tokens arrive hashed).
type InboundEvent struct {
	ID          string
	Kind        string // exposure, departure
	Payload     string
	ReceivedAt  time.Time
	ProcessedAt time.Time // zero while pending
	Result      string
}

// InboundStore keeps inbound events durably (invariant 5).
type InboundStore interface {
	// RecordInbound inserts ev unless its ID exists; it reports whether it
	// inserted. A duplicate returns the stored event.
	RecordInbound(ctx context.Context, ev InboundEvent) (inserted bool, stored InboundEvent, err error)
	PendingInbound(ctx context.Context, limit int) ([]InboundEvent, error)
	FinishInbound(ctx context.Context, id string, at time.Time, result string) error
}

// errPending: the event cannot be acted on yet (a rotation it must preempt
// is still rolling back); it stays pending and is retried on the next scan.
var errPending = errors.New("pending")

// ReportExposure records an exposure report, then acts on it: the credential
// whose fingerprint matches (current, pending or previous) is revoked at
// once by an emergency rotation. Implements Intake.
func (e *Engine) ReportExposure(ctx context.Context, r ExposureReport) (ExposureResult, error) {
	if e.inbound == nil {
		return ExposureResult{}, errors.New("rotator: no inbound store configured")
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = e.clock.Now()
	}
	if len(r.Fingerprint) != 64 {
		return ExposureResult{}, fmt.Errorf("exposure report %s: fingerprint must be 64 hex characters: %w", r.ID, ErrBadState)
	}
	payload, _ := json.Marshal(r)
	ev := InboundEvent{ID: "exposure/" + r.ID, Kind: "exposure", Payload: string(payload), ReceivedAt: r.ReceivedAt}
	inserted, stored, err := e.inbound.RecordInbound(ctx, ev)
	if err != nil {
		return ExposureResult{}, fmt.Errorf("record exposure report: %w", err)
	}
	if !inserted {
		var res ExposureResult
		_ = json.Unmarshal([]byte(stored.Result), &res)
		res.Duplicate = true
		if c, err := e.liveByFingerprint(ctx, r.Fingerprint); err == nil {
			res.Live = c != nil
			if c != nil && res.Key == "" { // the first report is still pending
				res.Known, res.Key, res.Generation = true, c.Key, c.Generation
			}
		} else {
			res.Live = res.Known // cannot tell: as it was
		}
		return res, nil
	}
	e.metrics.inbound("exposure")
	res, err := e.processExposure(ctx, r)
	e.finish(ctx, ev.ID, res, err)
	return res, nil // recorded: a processing error is retried from the store
}

// liveByFingerprint returns the credential with the fingerprint that is
// not revoked (current, pending or previous), or nil.
func (e *Engine) liveByFingerprint(ctx context.Context, fp string) (*Credential, error) {
	creds, err := e.store.CredentialByFingerprint(ctx, fp)
	if err != nil {
		return nil, err
	}
	var c *Credential
	for _, x := range creds {
		if x.State != CredRevoked {
			c = x
		}
	}
	return c, nil
}

func (e *Engine) finish(ctx context.Context, id string, res any, err error) {
	if err != nil {
		if !errors.Is(err, errPending) {
			e.log.Warn("inbound event not processed yet; will retry", "event", id, "err", err)
		}
		e.Wake()
		return
	}
	b, _ := json.Marshal(res)
	if ferr := e.inbound.FinishInbound(context.WithoutCancel(ctx), id, e.clock.Now(), string(b)); ferr != nil {
		e.log.Warn("mark inbound event processed", "event", id, "err", ferr)
	}
}

func (e *Engine) processExposure(ctx context.Context, r ExposureReport) (ExposureResult, error) {
	c, err := e.liveByFingerprint(ctx, r.Fingerprint)
	if err != nil {
		return ExposureResult{}, err
	}
	where := strings.TrimSpace(r.Source + " " + r.URL)
	if c == nil {
		// No live credential (none, or one already revoked): counted into
		// the source's digest, not echoed.
		err := e.unmatched(ctx, r, where)
		return ExposureResult{Known: false}, err
	}
	res := ExposureResult{Known: true, Live: true, Key: c.Key, Generation: c.Generation}
	if _, ok := e.keys[c.Key]; !ok {
		return res, fmt.Errorf("exposed credential belongs to key %s, which is no longer configured", c.Key)
	}
	actor := "exposure:" + r.Via
	if r.Reporter != "" {
		actor = r.Reporter
	}
	req := TriggerRequest{Key: c.Key, Trigger: TriggerExposure, Mode: ModeEmergency, TargetGeneration: c.Generation, Source: r.Via,
		Actor: actor, Reason: fmt.Sprintf("generation %d exposed (%s) at %s", c.Generation, r.Via, where)}
	if r.ContainOnly {
		req.Contain = ContainLowTrust
	}
	rot, err := e.Trigger(ctx, req)
	if err == nil {
		res.RotationID = rot.ID
		return res, nil
	}
	if !errors.Is(err, ErrActiveRotation) || rot == nil {
		return res, err
	}
	res.RotationID = rot.ID
	return res, e.preemptBy(ctx, rot, c, "exposure of generation "+fmt.Sprint(c.Generation)+" at "+where, actor, false)
}

// preemptBy makes an active rotation yield to an emergency about
// credential c, on behalf of actor (an exposure's "exposure:<source>" or
// its reporter, a departure's "departure:<webhook>", as the emergency
// records): the pre-emption is audited and announced as theirs, and its
// critical notification names the key's owners so that they are mentioned
// and paged (the outbox keeps the present ones). It returns nil when the
// active rotation itself now takes care of c, and errPending when the
// emergency must wait for it to end (the event stays pending and is
// retried).
//
// urgent: every live generation of the key is exposed (a departure of its
// only owner), so a rollback revokes the new one without waiting for
// consumers to move back to the old one, which the emergency that follows
// revokes at once anyway.
func (e *Engine) preemptBy(ctx context.Context, a *Rotation, c *Credential, why, actor string, urgent bool) error {
	if a.Mode == ModeEmergency {
		if a.TargetGeneration == c.Generation || a.Trigger == TriggerDecommission {
			return nil
		}
		return errPending
	}
	preempted := func(ch *change) {
		var owners []string
		if k, ok := e.keys[a.Key]; ok {
			owners = k.Owners
		}
		ch.Audit = append(ch.Audit, AuditEvent{At: e.clock.Now(), RotationID: a.ID, Key: a.Key, Actor: actor, Action: "preempted", Phase: a.Phase,
			Detail: map[string]string{"why": why, "generation": fmt.Sprint(c.Generation)}})
		// Every override is announced: a person must know the staged
		// rotation they were watching changed course, and why.
		ch.events = append(ch.events, Event{ID: a.ID + "-" + randomHex(4), Kind: EventPreempted, Severity: SeverityCritical, Key: a.Key, RotationID: a.ID,
			Phase: a.Phase, Trigger: a.Trigger, Mode: a.Mode, Actor: actor, Owners: owners, At: e.clock.Now(),
			Message: fmt.Sprintf("%s: generation %d (%s) is exposed (%s); the staged rotation %s in %s %s%s",
				a.Key, c.Generation, c.Name, why, a.ID, a.Phase, preemptOutcome(a, c), e.mintedByHand(a)),
			Fields: map[string]string{"generation": fmt.Sprint(c.Generation), "name": c.Name, "why": why}})
	}
	switch {
	case c.Generation == a.OldGeneration && (a.Phase == PhaseDraining || a.Phase == PhaseRevoking):
		// Consumers already read the new key: revoke the exposed old one now,
		// skipping the drain gate and any revoke approval.
		_, err := e.request(ctx, a.ID, Request{Kind: RequestRevokeNow, By: actor, Reason: "exposure"}, func(r *Rotation, ch *change) error {
			if r.Phase != PhaseDraining && r.Phase != PhaseRevoking {
				return errPending
			}
			preempted(ch)
			return nil
		})
		return err
	case c.Generation == a.NewGeneration && canUndo(a):
		// Rolling back revokes the exposed new credential; the old one,
		// not exposed, stays current.
		_, err := e.request(ctx, a.ID, Request{Kind: RequestRollBack, By: actor, Reason: "rolled back: " + why, To: PhaseCancelled, Urgent: urgent}, func(r *Rotation, ch *change) error {
			if !canUndo(r) {
				return errPending
			}
			preempted(ch)
			return nil
		})
		return err
	case canUndo(a) && a.Phase != PhaseRollingBack:
		// The exposed credential is the current one and the staged rotation
		// has not cut over: roll it back, then the emergency runs.
		_, _ = e.request(ctx, a.ID, Request{Kind: RequestRollBack, By: actor, Reason: "superseded: " + why, To: PhaseCancelled, Urgent: urgent}, func(r *Rotation, ch *change) error {
			if !canUndo(r) || r.Phase == PhaseRollingBack {
				return errPending
			}
			preempted(ch)
			return nil
		})
	}
	return errPending
}

// processPending retries inbound events that could not be acted on yet.
func (e *Engine) processPending(ctx context.Context) {
	if e.inbound == nil {
		return
	}
	evs, err := e.inbound.PendingInbound(ctx, 100)
	if err != nil {
		e.logs.warn("inbound", "list pending inbound events", "err", err)
		return
	}
	for _, ev := range evs {
		switch ev.Kind {
		case "exposure":
			var r ExposureReport
			if err := json.Unmarshal([]byte(ev.Payload), &r); err != nil {
				e.finish(ctx, ev.ID, map[string]string{"error": "undecodable payload"}, nil)
				continue
			}
			res, err := e.processExposure(ctx, r)
			e.finish(ctx, ev.ID, res, err)
		case "departure":
			var r DepartureReport
			if err := json.Unmarshal([]byte(ev.Payload), &r); err != nil {
				e.finish(ctx, ev.ID, map[string]string{"error": "undecodable payload"}, nil)
				continue
			}
			res, err := e.processDeparture(ctx, ev.ID, r)
			e.finish(ctx, ev.ID, res, err)
		}
	}
}

// ReportDeparture records that a person left, then acts for every key they
// own: with another owner on file, a staged rotation; without, an emergency
// revocation. The person is removed from the key's owners. Implements Intake.
func (e *Engine) ReportDeparture(ctx context.Context, r DepartureReport) (DepartureResult, error) {
	if e.inbound == nil {
		return DepartureResult{}, errors.New("rotator: no inbound store configured")
	}
	if r.Email == "" && r.UserID == "" {
		return DepartureResult{}, fmt.Errorf("departure report %s names nobody: %w", r.ID, ErrBadState)
	}
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = e.clock.Now()
	}
	payload, _ := json.Marshal(r)
	ev := InboundEvent{ID: "departure/" + r.ID, Kind: "departure", Payload: string(payload), ReceivedAt: r.ReceivedAt}
	inserted, stored, err := e.inbound.RecordInbound(ctx, ev)
	if err != nil {
		return DepartureResult{}, fmt.Errorf("record departure: %w", err)
	}
	if !inserted {
		var res DepartureResult
		_ = json.Unmarshal([]byte(stored.Result), &res)
		res.Duplicate = true
		return res, nil
	}
	e.metrics.inbound("departure")
	res, err := e.processDeparture(ctx, ev.ID, r)
	e.finish(ctx, ev.ID, res, err)
	return res, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// preemptOutcome says what an exposure does to the staged rotation a.
func preemptOutcome(a *Rotation, c *Credential) string {
	switch {
	case c.Generation == a.OldGeneration && (a.Phase == PhaseDraining || a.Phase == PhaseRevoking):
		return "skips its drain gate: the exposed old key is revoked now"
	case c.Generation == a.NewGeneration:
		return "rolls back: the exposed new key is revoked, the old one stays current"
	}
	return "rolls back, then an emergency rotation revokes the exposed key"
}

// mintedByHand is what a superseded rotation that asked a person for a
// secret tells them: delete what they may have minted, by name.
func (e *Engine) mintedByHand(a *Rotation) string {
	k, ok := e.keys[a.Key]
	if !ok || a.Phase != PhaseMinting || a.Hold != HoldSecret || a.NewGeneration == 0 {
		return ""
	}
	if _, human := k.Issuer.(HumanIssuer); !human {
		return ""
	}
	name := CredentialName(a.Key, a.NewGeneration)
	return fmt.Sprintf(". It was waiting for you to mint %s: do not submit it; if you already minted %s, delete it in the dashboard — it was never delivered and nothing uses it", name, name)
}
