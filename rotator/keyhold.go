package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// A key whose rotations keep failing for a reason that will not go away
// by itself (a sink target someone else owns, an issuer that refuses) must
// not be retried every scheduler tick: each try may mint and revoke a real
// credential. The scheduler backs off per key, exponentially, and after
// keyHoldAfter failures in a row holds the key — nothing automatic starts
// for it, and a person is told once — until a person rotates it by hand.
const (
	keyHoldAfter   = 3
	keyBackoffBase = time.Minute
	keyBackoffMax  = time.Hour
	stateFailures  = "rekey.failures"
)

// failureStreak is what the engine remembers of a key's failed rotations.
type failureStreak struct {
	Failed   int       `json:"failed"`
	Last     string    `json:"last"` // rotation id
	At       time.Time `json:"at"`
	Outcome  string    `json:"outcome"`
	Notified bool      `json:"notified,omitempty"`
}

// noteEnd updates a key's failure streak when one of its rotations ends.
func (e *Engine) noteEnd(ctx context.Context, r *Rotation) {
	if e.state == nil || !r.Phase.Terminal() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	fs, _ := e.streak(ctx, r.Key)
	switch {
	case r.Phase == PhaseFailed:
		fs.Failed++
		fs.Last, fs.At, fs.Outcome = r.ID, r.FinishedAt, r.Outcome
	case r.Phase == PhaseDone && fs.Failed > 0:
		fs = failureStreak{}
	default:
		return
	}
	b, _ := json.Marshal(fs)
	if err := e.state.PutState(ctx, stateFailures, r.Key, string(b)); err != nil {
		e.log.Warn("remember failed rotation", "key", r.Key, "err", err)
	}
}

func (e *Engine) streak(ctx context.Context, key string) (failureStreak, error) {
	var fs failureStreak
	if e.state == nil {
		return fs, nil
	}
	v, ok, err := e.state.GetState(ctx, stateFailures, key)
	if err != nil || !ok {
		return fs, err
	}
	err = json.Unmarshal([]byte(v), &fs)
	return fs, err
}

// automaticBlocked says whether the scheduler must not start a rotation of
// k now, and why; it tells a person once when the key becomes held.
func (e *Engine) automaticBlocked(ctx context.Context, k *Key, now time.Time) (string, bool) {
	fs, err := e.streak(ctx, k.Name)
	if err != nil || fs.Failed == 0 {
		return "", false
	}
	if fs.Failed >= keyHoldAfter {
		why := fmt.Sprintf("held after %d failed rotations in a row (last %s: %s); fix the cause, then rotate it by hand (rekey rotate %s)", fs.Failed, fs.Last, fs.Outcome, k.Name)
		if !fs.Notified {
			fs.Notified = true
			b, _ := json.Marshal(fs)
			if err := e.state.PutState(ctx, stateFailures, k.Name, string(b)); err == nil {
				_ = e.record(ctx, k, []AuditEvent{{At: now, Key: k.Name, Actor: "rekey", Action: "key.held", Detail: map[string]string{"failed": fmt.Sprint(fs.Failed), "last": fs.Last}}},
					Event{Kind: EventHeld, Severity: SeverityCritical, Key: k.Name, Owners: k.Owners, Message: k.Name + ": " + why,
						Fields: map[string]string{"failed": fmt.Sprint(fs.Failed), "last_rotation": fs.Last}})
			}
		}
		return why, true
	}
	wait := keyBackoffBase << (2 * (fs.Failed - 1))
	if wait > keyBackoffMax || wait <= 0 {
		wait = keyBackoffMax
	}
	if next := fs.At.Add(wait); now.Before(next) {
		return fmt.Sprintf("backing off after %d failed rotation(s) until %s (last: %s)", fs.Failed, next.UTC().Format(time.RFC3339), fs.Outcome), true
	}
	return "", false
}
