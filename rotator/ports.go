package rotator

import (
	"context"
	"time"
)

// MintRequest asks an issuer for a new credential.
type MintRequest struct {
	Key        string
	Name       string // deterministic: <key>-v<generation>
	Generation int
	RotationID string
	Params     map[string]any
	// Previous describes the credential being replaced (zero when bootstrapping),
	// so an issuer can copy its scopes or tell a human which key to mirror.
	Previous CredentialRef
	// IdempotencyKey is IdempotencyKey(RotationID, Generation): the same on
	// every attempt of this mint intent, after a crash too, and different
	// for any other. It carries no secret. An IdempotentMinter honours it.
	IdempotencyKey string
	// Emergency: Previous is being revoked now (a leak): the instructions
	// must not tell the person to keep it live ("do not revoke it yet").
	Emergency bool
}

// Minted is what an issuer returns: its id for the credential and the secret,
// which rekey shows to sinks only.
type Minted struct {
	ID     string
	Secret Secret
}

// CredentialRef identifies a credential at its issuer.
type CredentialRef struct {
	Key         string
	RotationID  string // the rotation acting on it, for instructions to humans
	Name        string
	Generation  int
	ID          string
	Fingerprint string
	Params      map[string]any
}

// Issuer mints and revokes credentials where they are honoured.
//
// Revoke must treat an already revoked or already deleted credential as
// success. Errors are classified with Permanent / WithReason.
type Issuer interface {
	Mint(ctx context.Context, req MintRequest) (Minted, error)
	Revoke(ctx context.Context, ref CredentialRef) error
}

// Finder is an optional Issuer capability: list the ids of live credentials
// carrying a given name, so the engine can find and revoke what a crash
// between the issuer call and its record left behind.
type Finder interface {
	FindByName(ctx context.Context, key, name string) ([]string, error)
}

// IdempotentMinter is an optional Issuer capability: the issuer promises
// that a Mint carrying an IdempotencyKey it has answered within
// IdempotencyWindow returns that answer again — the same credential, id and
// secret — instead of creating another (an Idempotency-Key header, as
// Stripe and draft-ietf-httpapi-idempotency-key-header define it). The
// engine then resumes an interrupted mint by asking again with the same key
// rather than by revoking what the first attempt created and minting a
// second credential of the same name. A zero window means the issuer does
// not honour keys (not configured).
type IdempotentMinter interface {
	IdempotencyWindow() time.Duration
}

// Checker is an optional capability of any adapter (issuer, sink,
// notifier, traffic source): a read-only call proving it can do its work
// (reachable, authenticated, allowed), for `rekey doctor` and readiness.
// It changes nothing anywhere.
type Checker interface {
	Check(ctx context.Context) error
}

// Verifier is an optional Issuer capability: probe a secret (e.g. call the
// API and expect anything but 401).
type Verifier interface {
	Verify(ctx context.Context, key string, secret Secret, params map[string]any) error
}

// VerifyConfigurer is an optional Issuer capability for issuers that verify
// only when a probe is configured: false makes the engine skip verification.
type VerifyConfigurer interface {
	VerifyConfigured() bool
}

// HumanIssuer is an optional Issuer capability for credentials only a person
// can mint or revoke (dashboard-only APIs). The engine holds the rotation,
// notifies the instructions and resumes on Submit / Confirm.
type HumanIssuer interface {
	MintInstructions(req MintRequest) string
	RevokeInstructions(ref CredentialRef) string
	// Accept checks a submitted secret (format, probe) and returns it with the
	// issuer id to record (for a dashboard key, often the name).
	Accept(ctx context.Context, req MintRequest, secret Secret) (Minted, error)
}

// Target is where, inside one sink, a key lives.
type Target struct {
	Key    string
	Path   string // sink-specific: file name, Vault path, secret id
	Params map[string]string
}

// Delivery tells a sink which generation a step is about. Secret is set only
// for Stage; the other calls work from fingerprints, so that a rotation can
// resume after a crash without the secret in memory.
type Delivery struct {
	RotationID     string
	Generation     int
	Fingerprint    string
	Secret         Secret
	OldGeneration  int
	OldFingerprint string
}

// SinkState reports what a sink holds for a target, as fingerprints.
type SinkState struct {
	Exists   bool
	Managed  bool
	Current  string
	Pending  string
	Previous string
}

// Sink delivers keys where consumers read them. Every method is idempotent:
// a replay after a crash must be a no-op when the work is already done, and
// no method may ever leave the target without a readable current value.
type Sink interface {
	// Stage writes d.Secret as the pending value beside the current one.
	// When the target has no current value yet (first delivery) it may write
	// the secret as current directly.
	Stage(ctx context.Context, t Target, d Delivery) error
	// Promote makes the pending value with d.Fingerprint current and keeps
	// the old current as previous. No-op if it already is current.
	Promote(ctx context.Context, t Target, d Delivery) error
	// Cleanup drops the previous value (revoked by now) and any pending value
	// that is not d.Fingerprint.
	Cleanup(ctx context.Context, t Target, d Delivery) error
	// Rollback undoes Stage/Promote of d: the value with d.OldFingerprint
	// becomes current again and d.Fingerprint is removed.
	Rollback(ctx context.Context, t Target, d Delivery) error
	// Inspect reports what the target holds.
	Inspect(ctx context.Context, t Target) (SinkState, error)
}

// PendingReader is an optional Sink capability: read back the pending secret
// with a given fingerprint, so that a rotation interrupted between staging and
// verification resumes without minting again.
type PendingReader interface {
	ReadPending(ctx context.Context, t Target, fingerprint string) (Secret, error)
}

// Replacer is an optional Sink capability used by emergency rotations,
// whose old credential is revoked before the replacement exists: write
// d.Secret straight as the current value, keeping no pending and no
// previous value beside it (the old one is worthless to consumers). It is
// idempotent like every sink method: a replay that finds d current and
// nothing beside it writes nothing. A sink without it gets Stage, Promote
// and Cleanup in a row.
type Replacer interface {
	Replace(ctx context.Context, t Target, d Delivery) error
}

// ValueReader is an optional Sink capability: read back the value with a
// given fingerprint from whichever slot holds it (pending, current or
// previous), so that a person's confirmation that they revoked the old key
// can be probed. The value is never logged.
type ValueReader interface {
	ReadValue(ctx context.Context, t Target, fingerprint string) (Secret, error)
}

// Remover is an optional Sink capability used by decommission: delete the
// key's values from the target.
type Remover interface {
	Remove(ctx context.Context, t Target) error
}

// Severity of an event.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event is what notifiers deliver. It never carries secret material.
type Event struct {
	ID         string // unique, for de-duplication by receivers
	Kind       string // rotation.started, rotation.phase, rotation.held, …
	Severity   Severity
	Key        string
	RotationID string
	Phase      Phase
	Trigger    Trigger
	Mode       Mode
	Actor      string
	Owners     []string
	Message    string
	Fields     map[string]string
	At         time.Time
	// Waiting is what the rotation waits for once the change this event
	// reports is committed (nil: it runs, or ended).
	Waiting *Waiting `json:",omitempty"`
}

// Event kinds.
const (
	EventStarted     = "rotation.started"
	EventPhase       = "rotation.phase"
	EventHeld        = "rotation.held"
	EventRetrying    = "rotation.retrying"
	EventFailed      = "rotation.failed"
	EventFinished    = "rotation.finished"
	EventApproval    = "rotation.approval"
	EventWarnAge     = "key.age_warning"
	EventWatchAlert  = "rotation.watch_alert"
	EventOrphan      = "credential.orphan"
	EventUnknownLeak = "exposure.unknown"
	EventDigest      = "exposure.digest"
	EventBreaker     = "breaker"
	EventPreempted   = "rotation.preempted"
	EventReminder    = "rotation.reminder"
	// EventDeparture lists what a departure left working that the person
	// may still use: tokens they created for others, shared secrets.
	EventDeparture = "departure.remaining"
)

// Notifier delivers events. The engine calls it from a retrying dispatcher,
// never from the rotation's own path, so a slow notifier cannot stall a
// rotation.
type Notifier interface {
	Notify(ctx context.Context, ev Event) error
}

// TrafficQuery asks a traffic source about one key.
type TrafficQuery struct {
	Key     string
	Query   string // source-specific, e.g. PromQL (templated by the source)
	OldID   string
	NewID   string
	OldName string
	NewName string
	// OldGeneration / NewGeneration number the two credentials.
	OldGeneration int
	NewGeneration int
	Since         time.Time
	// Question is what the gate asks; empty asks the source's own
	// configured question (policies, older callers).
	Question Question
	// NotBefore, when set, excludes traffic from before it (the post-revoke
	// watch must not count requests made before the revoke).
	NotBefore time.Time
}

// Reading is one answer of a traffic source: the rate of 401s (or of uses of
// the old credential) attributable to the key.
type Reading struct {
	Value  float64
	At     time.Time
	Detail string
	// Query is the query actually run (rendered, the source's default when
	// the key has none), for alerts and audit.
	Query string
}

// TrafficSource reports failed authentication. An error or an empty result
// is never "zero": the gate does not pass on it.
type TrafficSource interface {
	Unauthorized(ctx context.Context, q TrafficQuery) (Reading, error)
}

// Clock is the time source; tests inject a fake.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// ConsumerSeen is what a consumer last attested for a key: the generation
// it holds now. It never carries the secret.
type ConsumerSeen struct {
	Key        string    `json:"key"`
	Name       string    `json:"name"`
	Generation int       `json:"generation"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// Via names the sender (the webhook's configured name).
	Via string `json:"via,omitempty"`
}

// ConsumerStore remembers, per key, which generation each consumer last
// reported holding.
type ConsumerStore interface {
	// RecordConsumer upserts c (first_seen is kept) and deletes the key's
	// consumers last seen before forgetBefore. It refuses a new consumer
	// beyond maxPerKey consumers of the key with ErrTooManyConsumers.
	RecordConsumer(ctx context.Context, c ConsumerSeen, forgetBefore time.Time, maxPerKey int) error
	// Consumers lists the key's consumers, most recently seen first.
	Consumers(ctx context.Context, key string) ([]ConsumerSeen, error)
}
