package app

import (
	"context"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// RotationView is a rotation as the admin API and `-o json` show it.
type RotationView struct {
	ID            string          `json:"id"`
	Key           string          `json:"key"`
	Trigger       rotator.Trigger `json:"trigger"`
	Mode          rotator.Mode    `json:"mode"`
	Actor         string          `json:"actor"`
	Reason        string          `json:"reason,omitempty"`
	Phase         rotator.Phase   `json:"phase"`
	Hold          rotator.Hold    `json:"hold,omitempty"`
	HoldDetail    string          `json:"hold_detail,omitempty"`
	Attempts      int             `json:"attempts"`
	NextAttemptAt string          `json:"next_attempt_at,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	ErrorReason   rotator.Reason  `json:"error_reason,omitempty"`
	OldGeneration int             `json:"old_generation,omitempty"`
	NewGeneration int             `json:"new_generation,omitempty"`
	Outcome       string          `json:"outcome,omitempty"`
	// Contain says why an emergency's revoke waits for a responder.
	Contain string `json:"contain,omitempty"`
	// Lifecycle names the table driving the rotation (staged, emergency,
	// emergency_manual, decommission).
	Lifecycle string             `json:"lifecycle"`
	Drain     rotator.DrainState `json:"drain"`
	// Request is a command recorded but not yet acted on (the daemon that
	// holds the rotation applies it at its next step).
	Request *rotator.Request `json:"request,omitempty"`
	// Waiting is what an active rotation waits for (absent while it runs).
	Waiting    *WaitingView `json:"waiting,omitempty"`
	CreatedAt  string       `json:"created_at"`
	UpdatedAt  string       `json:"updated_at"`
	FinishedAt string       `json:"finished_at,omitempty"`
}

// ViewRotation converts a rotation.
func ViewRotation(r *rotator.Rotation) RotationView {
	v := RotationView{
		ID: r.ID, Key: r.Key, Trigger: r.Trigger, Mode: r.Mode, Actor: r.Actor, Reason: r.Reason, Phase: r.Phase,
		Hold: r.Hold, HoldDetail: r.HoldDetail, Attempts: r.Attempts, LastError: r.LastError, ErrorReason: r.ErrorReason,
		OldGeneration: r.OldGeneration, NewGeneration: r.NewGeneration, Outcome: r.Outcome, Contain: r.Contain, Drain: r.Drain,
		CreatedAt: rfc3339(r.CreatedAt), UpdatedAt: rfc3339(r.UpdatedAt), FinishedAt: rfc3339(r.FinishedAt),
		Lifecycle: rotator.LifecycleOf(r).Name,
	}
	if r.Request.Kind != "" {
		req := r.Request
		v.Request = &req
	}
	if r.Active() && r.NextAttemptAt.Year() < 9999 {
		v.NextAttemptAt = rfc3339(r.NextAttemptAt)
	}
	if w := r.Waiting; w != nil && r.Active() {
		v.Waiting = &WaitingView{Reason: string(w.Reason), Detail: w.Detail, Since: rfc3339(w.Since), NextCheck: rfc3339(w.NextCheck),
			Deadline: rfc3339(w.Deadline), Escalates: rfc3339(w.Escalates), Progress: w.Progress, LastError: w.LastError}
	}
	return v
}

// WaitingView is what an active rotation waits for (SHARED-CONTRACTS.md).
type WaitingView struct {
	Reason    string            `json:"reason"`
	Detail    string            `json:"detail"`
	Since     string            `json:"since"`
	NextCheck string            `json:"next_check,omitempty"`
	Deadline  string            `json:"deadline,omitempty"`
	Escalates string            `json:"escalates,omitempty"` // a wait on a person pages on-call from then on
	Progress  *rotator.Progress `json:"progress,omitempty"`
	LastError string            `json:"last_error,omitempty"`
}

// KeyView is a key with its state and what the plan says of it.
type KeyView struct {
	Name   string   `json:"name"`
	Issuer string   `json:"issuer"`
	Sinks  []string `json:"sinks"`
	Owners []string `json:"owners"`
	// DepartedOwners are owners on file a departure reported gone: they
	// count as owners of no key (not in Owners).
	DepartedOwners []string `json:"departed_owners,omitempty"`
	Generation     int      `json:"generation,omitempty"`
	IssuerID       string   `json:"issuer_id,omitempty"`
	// Age is the current credential's age in seconds.
	Age     *int64 `json:"age,omitempty"`
	NextDue string `json:"next_due,omitempty"`
	State   string `json:"state"`
	Active  string `json:"active_rotation,omitempty"`
	Plan    string `json:"plan"`
	Reason  string `json:"reason,omitempty"`
	// Gate says what the key's drain gate proves and cannot see.
	Gate *rotator.GateProof `json:"gate,omitempty"`
	// Lingering: live generations beside the current one, each with what
	// would revoke it.
	Lingering []rotator.Lingering `json:"lingering,omitempty"`
	// Exposed: the live generation an emergency is about, still live until
	// revoked.
	Exposed *ExposedView `json:"exposed,omitempty"`
}

// AuditView is an audit event.
type AuditView struct {
	Seq        int64             `json:"seq"`
	At         string            `json:"at"`
	RotationID string            `json:"rotation_id,omitempty"`
	Key        string            `json:"key,omitempty"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	Phase      rotator.Phase     `json:"phase,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	Hash       string            `json:"hash"`
}

// ViewAudit converts an audit event.
func ViewAudit(e rotator.AuditEvent) AuditView {
	return AuditView{Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), RotationID: e.RotationID, Key: e.Key, Actor: e.Actor,
		Action: e.Action, Phase: e.Phase, Detail: e.Detail, Hash: e.Hash}
}

// PlanView is a plan item with its age in seconds (durations in the admin
// API and `-o json` are numbers of seconds).
type PlanView struct {
	rotator.PlanItem
	Age *int64 `json:"age,omitempty"`
}

// BreakerView is the emergency breaker with its window in seconds.
type BreakerView struct {
	rotator.BreakerStatus
	Window float64 `json:"window"`
}

// ViewBreaker converts the breaker's status.
func ViewBreaker(bs rotator.BreakerStatus) BreakerView {
	w, _ := time.ParseDuration(bs.Window) // the engine wrote it with Duration.String
	return BreakerView{BreakerStatus: bs, Window: w.Seconds()}
}

// plan evaluates the plan, with each key's age in seconds (-1: no current
// credential). The key states are not kept: with 100,000 keys they are
// tens of MB, and the plan's answer is encoded after.
func (d *Daemon) plan(ctx context.Context, now time.Time) ([]rotator.PlanItem, []int64, error) {
	states, err := d.Store.KeyStates(ctx)
	if err != nil {
		return nil, nil, err
	}
	items := d.Engine.PlanFrom(ctx, states, now)
	ages := make([]int64, len(items))
	for i, it := range items {
		ages[i] = -1
		if c := states[it.Key].Current; c != nil {
			ages[i] = *ageSeconds(now, c.CreatedAt)
		}
	}
	return items, ages, nil
}

func planView(it rotator.PlanItem, age int64) PlanView {
	v := PlanView{PlanItem: it}
	if age >= 0 {
		v.Age = &age
	}
	return v
}

func ageSeconds(now, t time.Time) *int64 {
	s := max(int64(now.Sub(t)/time.Second), 0)
	return &s
}
