package rotator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"time"
)

// Commit is one atomic unit of persisted progress: the rotation's new state,
// the credentials it changed and the audit events that explain why. A store
// applies all of it or nothing.
type Commit struct {
	Rotation    *Rotation     // saved with a version check (Version is the one read); nil: none
	Credentials []*Credential // upserted by (Key, Generation)
	Audit       []AuditEvent  // appended to the hash chain
	// Approvals are inserted; a second decision by the same approver on the
	// same gate fails the whole commit with ErrDecided.
	Approvals []Approval
	// Outbox rows are the notifications of this change, one per notifier:
	// written in the same transaction (a transactional outbox), so that a
	// crash can lose neither the change nor what it tells people.
	Outbox []Notification
}

// Notification is one event queued for one notifier.
type Notification struct {
	Notifier string
	Event    Event
	// Lane 0 goes before lane 1 in each notifier's queue: emergencies and
	// requests for a decision are not buried behind informational events.
	Lane int
}

// Pruner is an optional store capability: delete delivered notifications
// and processed inbound events past their retention. Never the audit trail.
type Pruner interface {
	Prune(ctx context.Context, outboxBefore, inboundBefore time.Time) (int64, error)
}

// RotationFilter selects rotations to list.
type RotationFilter struct {
	Key        string
	ActiveOnly bool
	Since      time.Time // created at or after; zero: any time
	Mode       Mode      // "": any
	Limit      int
}

// AuditFilter selects audit events.
type AuditFilter struct {
	Key        string
	RotationID string
	AfterSeq   int64
	Limit      int
}

// KeyState is what the store knows of a key, for plans and listings.
type KeyState struct {
	Key     string
	Current *Credential
	Active  *Rotation
}

// Store persists rotations, credentials, approvals and the audit trail. It
// never holds plaintext secrets.
type Store interface {
	// CreateRotation inserts a new rotation with its first audit events. It
	// returns ErrActiveRotation (wrapped) when the key already has an active
	// rotation — enforced by the database, so it holds across daemons.
	CreateRotation(ctx context.Context, c Commit) error
	// Save applies a commit, to an existing rotation when c.Rotation is set.
	// It returns ErrConflict when the stored Version differs from
	// c.Rotation.Version; on success c.Rotation.Version is incremented. A
	// commit without a rotation records only its other rows.
	Save(ctx context.Context, c Commit) error
	GetRotation(ctx context.Context, id string) (*Rotation, error)
	ActiveRotation(ctx context.Context, key string) (*Rotation, error)
	ListRotations(ctx context.Context, f RotationFilter) ([]*Rotation, error)
	// DueRotations lists active rotations whose next attempt is at or before
	// now, oldest first — held ones included: a hold's next attempt is its
	// expiry (or the far future), and a human decision sets it to now.
	DueRotations(ctx context.Context, now time.Time, limit int) ([]*Rotation, error)
	// Lease claims a rotation for owner until the given time, if no other
	// owner holds an unexpired lease. It reports whether the claim succeeded.
	Lease(ctx context.Context, rotationID, owner string, now, until time.Time) (bool, error)
	// Release drops owner's lease.
	Release(ctx context.Context, rotationID, owner string) error

	Credentials(ctx context.Context, key string) ([]*Credential, error)
	// CredentialByFingerprint finds credentials whose fingerprint matches.
	CredentialByFingerprint(ctx context.Context, fingerprint string) ([]*Credential, error)
	// KeyStates returns, for every key with any record, its current
	// credential and active rotation, in one pass.
	KeyStates(ctx context.Context) (map[string]KeyState, error)

	Approvals(ctx context.Context, rotationID string) ([]Approval, error)

	Audit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	Close() error
}

// AuditHash computes an event's chain hash from the previous hash and the
// event's content (Seq, time, ids, action, detail). Stores call it while
// appending; VerifyAuditChain calls it to detect edits and deletions.
func AuditHash(prev string, e AuditEvent) string {
	h := sha256.New()
	w := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	w(prev)
	w(strconv.FormatInt(e.Seq, 10))
	w(e.At.UTC().Format(time.RFC3339Nano))
	w(e.RotationID)
	w(e.Key)
	w(e.Actor)
	w(e.Action)
	w(string(e.Phase))
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w(k)
		w(e.Detail[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AuditProblem describes one break in the audit chain.
type AuditProblem struct {
	Seq     int64
	Problem string
}

// VerifyAuditChain checks that events (in Seq order, from the first) form an
// unbroken chain: consecutive sequence numbers, each PrevHash equal to the
// hash before it, each Hash matching the content.
func VerifyAuditChain(events []AuditEvent) []AuditProblem {
	var problems []AuditProblem
	prev := ""
	var want int64 = 1
	for _, e := range events {
		if e.Seq != want {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "sequence gap: expected " + strconv.FormatInt(want, 10) + " (event deleted?)"})
		}
		if e.PrevHash != prev {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "previous-hash mismatch (event before it edited or deleted)"})
		}
		if got := AuditHash(e.PrevHash, e); got != e.Hash {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "hash mismatch (event edited)"})
		}
		prev = e.Hash
		want = e.Seq + 1
	}
	return problems
}

// MarshalDetail encodes an audit detail map deterministically.
func MarshalDetail(d map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(d) // map keys are sorted by encoding/json
	return string(b)
}
