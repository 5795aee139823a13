package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Why an emergency is contained (Rotation.Contain).
const (
	ContainBreaker  = "breaker"
	ContainLowTrust = "low_trust"
)

// BreakerPolicy bounds automatic emergency revocations fleet-wide: past
// Max within Window, further emergencies are contained — their revoke
// waits for a responder — with one critical notification, until a
// responder releases the breaker. Sources listed in Exempt (which prove
// possession of the token, such as GitHub's partner program) are never
// contained by it.
type BreakerPolicy struct {
	Max    int // <0 disables; 0 means the default, 5
	Window time.Duration
	Exempt []string
}

// DefaultBreaker: more than 5 emergency revocations in 10 minutes is more
// likely an attack or a broken scanner than five real leaks.
var DefaultBreaker = BreakerPolicy{Max: 5, Window: 10 * time.Minute}

const stateBreaker = "rekey.breaker"

// breakerState is the breaker's durable state.
type breakerState struct {
	OpenedAt   time.Time `json:"opened_at,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
}

// BreakerStatus is what status, the admin API and /metrics show.
type BreakerStatus struct {
	Open      bool      `json:"open"`
	Recent    int       `json:"recent_emergencies"` // automatic revocations counted in the window
	Max       int       `json:"max"`
	Window    string    `json:"window"`
	Since     time.Time `json:"since"`
	Contained []string  `json:"contained,omitempty"` // rotations waiting for a responder
}

func (e *Engine) loadBreaker(ctx context.Context) breakerState {
	var st breakerState
	if e.state == nil {
		e.mu.Lock()
		st = e.breaker
		e.mu.Unlock()
		return st
	}
	if v, ok, err := e.state.GetState(ctx, stateBreaker, "fleet"); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &st)
	}
	return st
}

func (e *Engine) saveBreaker(ctx context.Context, st breakerState) error {
	if e.state == nil {
		e.mu.Lock()
		e.breaker = st
		e.mu.Unlock()
		return nil
	}
	b, _ := json.Marshal(st)
	return e.state.PutState(ctx, stateBreaker, "fleet", string(b))
}

// Breaker reports the breaker's state now.
func (e *Engine) Breaker(ctx context.Context) (BreakerStatus, error) {
	now := e.clock.Now()
	st := e.loadBreaker(ctx)
	since := now.Add(-e.breakerPolicy.Window)
	if st.ReleasedAt.After(since) {
		since = st.ReleasedAt
	}
	rs, err := e.store.ListRotations(ctx, RotationFilter{Mode: ModeEmergency, Since: since})
	if err != nil {
		return BreakerStatus{}, err
	}
	bs := BreakerStatus{Max: e.breakerPolicy.Max, Window: e.breakerPolicy.Window.String(), Since: since}
	for _, r := range rs {
		if r.Trigger == TriggerDecommission {
			continue
		}
		if r.Contain == "" {
			bs.Recent++
		}
	}
	active, err := e.store.ListRotations(ctx, RotationFilter{Mode: ModeEmergency, ActiveOnly: true})
	if err != nil {
		return BreakerStatus{}, err
	}
	for _, r := range active {
		if r.Contain == ContainBreaker {
			bs.Contained = append(bs.Contained, r.ID)
		}
	}
	bs.Open = e.breakerPolicy.Max >= 0 && (bs.Recent >= e.breakerPolicy.Max || len(bs.Contained) > 0)
	e.metrics.breaker(bs.Open)
	return bs, nil
}

// breakerContains decides whether a new automatic emergency from source
// must be contained, and announces the breaker's opening once.
func (e *Engine) breakerContains(ctx context.Context, k *Key, source string) bool {
	p := e.breakerPolicy
	if p.Max < 0 || slices.Contains(p.Exempt, source) {
		return false
	}
	bs, err := e.Breaker(ctx)
	if err != nil {
		e.log.Error("emergency breaker: cannot count recent emergencies; containing", "err", err)
		return true
	}
	if !bs.Open {
		return false
	}
	st := e.loadBreaker(ctx)
	if st.OpenedAt.Before(bs.Since) {
		st.OpenedAt = e.clock.Now()
		if err := e.saveBreaker(ctx, st); err == nil {
			msg := fmt.Sprintf("emergency breaker OPEN: %d automatic emergency revocations within %s (limit %d). Further emergencies are contained: their revoke waits for a responder (rekey breaker release, or approve each).", bs.Recent, p.Window, p.Max)
			_ = e.record(ctx, nil, []AuditEvent{{At: st.OpenedAt, Actor: "rekey", Action: "breaker.opened", Detail: map[string]string{"recent": fmt.Sprint(bs.Recent), "window": p.Window.String()}}},
				Event{Kind: EventBreaker, Severity: SeverityCritical, Key: k.Name, Message: msg, Fields: map[string]string{"recent": fmt.Sprint(bs.Recent), "max": fmt.Sprint(p.Max)}})
		}
	}
	return true
}

// Release is one contained rotation's part in a breaker release.
type Release struct {
	RotationID string
	Key        string
	// Err is why it was not released (nil: released).
	Err error
}

// ReleaseBreaker is a responder's decision to let contained emergencies
// revoke: each one waiting, whose key may(key) allows (the caller's
// responder check), is approved by by
// (Approver, Via and the token it acts with), each on its own — one that
// cannot be released does not stop the others. When restart is set,
// counting starts over (a decision for the whole fleet, which the caller
// allows only to whoever may act on every key).
func (e *Engine) ReleaseBreaker(ctx context.Context, by ApproveRequest, may func(key string) bool, restart bool) ([]Release, error) {
	actor, via := by.Approver, by.Via
	if CanonicalIdentity(actor) == "" {
		return nil, fmt.Errorf("a responder is required: %w", ErrNotApprover)
	}
	st := e.loadBreaker(ctx)
	if restart {
		st.ReleasedAt, st.ReleasedBy = e.clock.Now(), actor
		if err := e.saveBreaker(ctx, st); err != nil {
			return nil, err
		}
	}
	active, err := e.store.ListRotations(ctx, RotationFilter{Mode: ModeEmergency, ActiveOnly: true})
	if err != nil {
		return nil, err
	}
	var out []Release
	var released []string
	for _, r := range active {
		if r.Contain != ContainBreaker || r.Phase != PhaseRevoking || r.Hold != HoldApproval {
			continue
		}
		rel := Release{RotationID: r.ID, Key: r.Key}
		if may != nil && !may(r.Key) {
			rel.Err = fmt.Errorf("%s may not release emergencies of key %s: %w", actor, r.Key, ErrNotApprover)
		} else {
			req := by
			req.RotationID, req.Gate, req.Verdict, req.Comment, req.Responder = r.ID, GateRevoke, VerdictApprove, "breaker released", true
			if _, err := e.Decide(ctx, req); err != nil {
				rel.Err = fmt.Errorf("release %s: %w", r.ID, err)
			} else {
				released = append(released, r.ID)
			}
		}
		out = append(out, rel)
	}
	if !restart && len(released) == 0 {
		return out, nil
	}
	at := e.clock.Now()
	msg := fmt.Sprintf("emergency breaker released by %s: %d contained emergencies revoke now", actor, len(released))
	if !restart {
		msg = fmt.Sprintf("%s released %d contained emergencies of the keys in their scope; the breaker keeps counting", actor, len(released))
	}
	detail := map[string]string{"via": via, "rotations": fmt.Sprint(released), "restart": fmt.Sprint(restart)}
	if by.TokenID != "" {
		detail["token"], detail["token_created_by"] = by.TokenID, by.TokenCreator
	}
	if err := e.record(ctx, nil, []AuditEvent{{At: at, Actor: actor, Action: "breaker.released", Detail: detail}},
		Event{Kind: EventBreaker, Severity: SeverityWarning, Actor: actor, Message: msg}); err != nil {
		return out, err
	}
	_, _ = e.Breaker(ctx) // the gauge: still open while any stays contained
	return out, nil
}
