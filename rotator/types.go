package rotator

import (
	"time"
)

// Phase is a state of the rotation state machine.
type Phase string

const (
	PhaseAwaitingApproval Phase = "awaiting_approval"
	PhaseMinting          Phase = "minting"
	PhaseStaging          Phase = "staging"
	PhaseVerifying        Phase = "verifying"
	PhaseCuttingOver      Phase = "cutting_over"
	PhaseDraining         Phase = "draining"
	PhaseRevoking         Phase = "revoking"
	PhaseWatching         Phase = "watching"
	PhaseCleaning         Phase = "cleaning"
	PhaseRemoving         Phase = "removing"   // decommission: delete from sinks
	PhaseConfirming       Phase = "confirming" // by hand: wait until a person confirms the leaked key is revoked
	PhaseRollingBack      Phase = "rolling_back"

	// Terminal phases.
	PhaseDone      Phase = "done"
	PhaseFailed    Phase = "failed"
	PhaseCancelled Phase = "cancelled"
	PhaseDenied    Phase = "denied"
	PhaseExpired   Phase = "expired"
)

// Terminal reports whether no further step runs in this phase.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseDone, PhaseFailed, PhaseCancelled, PhaseDenied, PhaseExpired:
		return true
	}
	return false
}

// Hold says why a rotation waits for a human instead of a timer.
type Hold string

const (
	HoldNone         Hold = ""
	HoldApproval     Hold = "approval"      // approvals for the current gate are missing
	HoldSecret       Hold = "secret"        // a human must mint and submit the new secret
	HoldConfirm      Hold = "confirm"       // a human must revoke by hand and confirm
	HoldDrainTimeout Hold = "drain_timeout" // max_wait passed with traffic still failing
	HoldFailed       Hold = "failed"        // a permanent (or persistently repeated) failure a person decides on
)

// Trigger is why a rotation started.
type Trigger string

const (
	TriggerAge          Trigger = "age"
	TriggerDeparture    Trigger = "departure"
	TriggerExposure     Trigger = "exposure"
	TriggerUnauthorized Trigger = "unauthorized"
	TriggerDecommission Trigger = "decommission"
	TriggerManual       Trigger = "manual"
	TriggerBootstrap    Trigger = "bootstrap"
)

// Mode selects the state machine.
type Mode string

const (
	ModeStaged    Mode = "staged"
	ModeEmergency Mode = "emergency"
)

// CredentialState is where a credential generation stands.
type CredentialState string

const (
	CredPending  CredentialState = "pending"  // minted (or about to be), not yet current
	CredCurrent  CredentialState = "current"  // consumers read it
	CredPrevious CredentialState = "previous" // replaced, not yet revoked
	CredRevoked  CredentialState = "revoked"
)

// Credential is one minted generation of a key. It never holds the secret,
// only its fingerprint and the issuer's id for it.
type Credential struct {
	Key         string
	Generation  int
	Name        string // deterministic: <key>-v<generation>
	IssuerID    string // empty while the mint is only an intent
	Fingerprint string // hex SHA-256 of the secret; empty until minted
	State       CredentialState
	RotationID  string
	CreatedAt   time.Time
	RevokedAt   time.Time // zero unless revoked
}

// Minted reports whether the issuer call that creates it has been recorded.
func (c *Credential) Minted() bool { return c.IssuerID != "" }

// Rotation is one run of the state machine for a key. It is data: every
// field needed to resume it after a crash is persisted.
type Rotation struct {
	ID      string
	Key     string
	Trigger Trigger
	Actor   string // who or what started it
	Reason  string // human-readable why (policy reason constant + detail)
	Mode    Mode

	Phase         Phase
	Hold          Hold
	HoldDetail    string
	HeldSince     time.Time // when the current hold began (zero: none)
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	ErrorReason   Reason

	OldGeneration    int // the credential being replaced; 0 when bootstrapping
	NewGeneration    int // 0 until the mint intent is recorded
	TargetGeneration int // emergency: the exposed generation to revoke first

	Drain DrainState
	Watch WatchState
	// Outcome of a terminal rotation ("done", "failed: …", "cancelled").
	Outcome string
	// RollbackTo is the terminal phase a rollback ends in.
	RollbackTo Phase
	// Contain, when set, says why this emergency's revoke waits for a
	// responder's approval: "breaker" (too many emergencies at once) or
	// "low_trust" (a source that may only contain, not revoke).
	Contain string
	// Lifecycle names the table that drives the rotation, chosen when it
	// starts (empty: from trigger and mode, see LifecycleOf).
	Lifecycle string
	// Request is a command (cancel, approve anyway, retry, confirm) the
	// interpreter has not acted on yet.
	Request Request
	// Waiting is what the rotation waits for (nil while it runs or once it
	// ended), as the engine last committed it.
	Waiting *Waiting

	CreatedAt      time.Time
	UpdatedAt      time.Time
	PhaseStartedAt time.Time
	FinishedAt     time.Time

	// Version increases with every save; the store refuses a stale save.
	Version int
}

// Active reports whether the rotation still runs or waits.
func (r *Rotation) Active() bool { return !r.Phase.Terminal() }

// DrainState is the progress of the drain gate.
type DrainState struct {
	StartedAt  time.Time `json:"started_at,omitzero"`
	QuietSince time.Time `json:"quiet_since,omitzero"`
	// LastPollAt is when the last poll's readings came back: quiet time
	// accrues only between consecutive polls (observe.go).
	LastPollAt time.Time `json:"last_poll_at,omitzero"`
	// QuietGap is the gap in observation that last restarted the quiet
	// clock (-1: of unknown length), for the waiting text; zero when the
	// clock last restarted because of traffic or an error.
	QuietGap  time.Duration `json:"quiet_gap,omitempty"`
	LastValue float64       `json:"last_value"`
	// LastValues is the last reading of each check ("old_key_use via
	// prom"), when every check answered.
	LastValues map[string]float64 `json:"last_values,omitempty"`
	// Readings is the last answer of each check, in the gate's order: the
	// waiting text says from it which question is not zero, and where.
	Readings  []DrainReading `json:"readings,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	Polls     int            `json:"polls"`
	Escalated bool           `json:"escalated,omitempty"`
	Override  string         `json:"override,omitempty"` // "revoke" when a human approved revoking anyway
	// OverrideBy is who (or what) overrode the gate.
	OverrideBy string `json:"override_by,omitempty"`
	// RestoredAt: a rollback after cut-over made the old key current again
	// at this time; the new key is revoked after a quiet period.
	RestoredAt time.Time `json:"restored_at,omitzero"`
	// SinksRestored: a rollback gave every sink the old value back.
	SinksRestored bool `json:"sinks_restored,omitempty"`
	// Urgent: the generation rolled back from is revoked without waiting
	// for consumers to move back — the one restored is to be revoked at
	// once too (a departure of the key's only owner, who saw both).
	Urgent bool `json:"urgent,omitempty"`
	// RevokeIssuedAt is a staged rotation's point of no return: when the
	// revoke of the old credential was issued, recorded before the issuer
	// is called (or a person is asked to revoke it by hand). Until then a
	// person may still cancel (roll back): the old key is live.
	RevokeIssuedAt time.Time `json:"revoke_issued_at,omitzero"`
}

// WatchState is the progress of the post-revoke watch.
type WatchState struct {
	StartedAt time.Time `json:"started_at,omitzero"`
	// Observed is the time the watch looked (it ends at watch.period of
	// it); a gap in observation longer than the poll interval plus slack
	// does not count (observe.go). Gaps counts such gaps.
	Observed   time.Duration `json:"observed,omitempty"`
	LastPollAt time.Time     `json:"last_poll_at,omitzero"`
	Gaps       int           `json:"gaps,omitempty"`
	Alerted    bool          `json:"alerted,omitempty"`
	LastValue  float64       `json:"last_value"`
	Readings   int           `json:"readings"`
	Errors     int           `json:"errors"`
}

// Gate names a decision point that may require approval.
type Gate string

const (
	GateStart  Gate = "start"
	GateRevoke Gate = "revoke"
	GateDrain  Gate = "drain" // revoke although the drain gate did not pass
)

// Verdict of an approver.
type Verdict string

const (
	VerdictApprove Verdict = "approve"
	VerdictDeny    Verdict = "deny"
)

// Approval is one person's decision on one gate of one rotation.
type Approval struct {
	RotationID string
	Gate       Gate
	Approver   string
	Verdict    Verdict
	Via        string // cli, api, slack
	Comment    string
	At         time.Time
}

// AuditEvent is an append-only, hash-chained record of a transition or
// decision. It never holds secret material.
type AuditEvent struct {
	Seq        int64
	At         time.Time
	RotationID string
	Key        string
	Actor      string
	Action     string
	Phase      Phase
	Detail     map[string]string
	PrevHash   string
	Hash       string
}
