package rotator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
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
	// BasedOn, when set on CreateRotation, is the generation the caller
	// read as the key's current credential (0: none): the rotation is
	// built on it, so the create fails with ErrConflict if it changed.
	BasedOn *int
	// Lease, when set, fences the commit: it applies only while this lease
	// (owner and epoch) still holds the rotation, unexpired by the
	// database's clock; otherwise nothing is written and Save fails with
	// ErrLeaseLost. A commit without a Rotation is fenced by the lease of
	// Lease.RotationID: a daemon that lost its lease writes no credential.
	Lease *Lease
}

// Notification is one event queued for one notifier.
type Notification struct {
	Notifier string
	Event    Event
	// Lane 0 goes before lane 1 in each notifier's queue: emergencies and
	// requests for a decision are not buried behind informational events.
	Lane int
}

// OutboxStats is an optional store capability for the outbox gauges: how
// many notifications wait, and since when the oldest does.
type OutboxStats interface {
	OutboxBacklog(ctx context.Context) (pending int, oldest time.Time, err error)
}

// Pruner is an optional store capability: delete delivered notifications
// and processed inbound events past their retention. Never the audit trail.
type Pruner interface {
	Prune(ctx context.Context, outboxBefore, inboundBefore time.Time) (int64, error)
}

// WorkingSetStore is an optional store capability: the part of a key's
// credential history a rotation works on, whatever the length of that
// history — every credential not revoked, the generations asked for (a
// rotation's old, new and target ones, revoked or not) and the highest
// generation (the next one is minted after it). Without it the engine reads
// every generation.
type WorkingSetStore interface {
	WorkingCredentials(ctx context.Context, key string, generations ...int) ([]*Credential, error)
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
	// Previous are the key's live generations beside the current one
	// (state previous): after a rotation they normally last until its
	// revoke; plan and status flag one that lingers.
	Previous []*Credential
}

// Store persists rotations, credentials, approvals and the audit trail. It
// never holds plaintext secrets.
type Store interface {
	// CreateRotation inserts a new rotation with its first audit events. It
	// returns ErrActiveRotation (wrapped) when the key already has an active
	// rotation — enforced by the database, so it holds across daemons — and
	// ErrConflict when c.BasedOn is no longer the key's current credential
	// (another daemon's rotation finished after the caller read it).
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
	// Claim leases a rotation to owner for ttl from the database's now,
	// unless another owner holds an unexpired lease (ok false). Each claim
	// gets a greater epoch than any before it on that rotation.
	Claim(ctx context.Context, rotationID, owner string, ttl time.Duration) (l Lease, ok bool, err error)
	// Renew extends l to ttl from the database's now if l is still the
	// rotation's lease; ok is false once another claim replaced it.
	Renew(ctx context.Context, rotationID string, l Lease, ttl time.Duration) (ok bool, err error)
	// Release gives l back, if it is still the rotation's lease.
	Release(ctx context.Context, rotationID string, l Lease) error

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

// AuditHash computes an event's unkeyed chain hash from the previous hash
// and the event's content (Seq, time, ids, action, detail): a SHA-256 that
// anyone can recompute. It detects accidents, not an attacker with write
// access to the database — that takes a keyed chain (AuditKeys) and signed
// checkpoints kept outside the store. Events written before an audit key was
// configured keep this form and stay verifiable.
func AuditHash(prev string, e AuditEvent) string {
	h := sha256.New()
	writeAuditContent(h, prev, e)
	return hex.EncodeToString(h.Sum(nil))
}

// writeAuditContent writes prev and e's content to h, each field length
// prefixed so that no two events encode alike.
func writeAuditContent(h hash.Hash, prev string, e AuditEvent) {
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
}

// auditMACPrefix starts the Hash of an event sealed with an audit key:
// "hmac-sha256:<key id>:<hex MAC>". An unkeyed hash is bare hex, so the two
// never collide and each event says how it is verified.
const auditMACPrefix = "hmac-sha256:"

// AuditKeys are the keys of the keyed audit chain: HMAC-SHA256 keys that the
// database never holds, so that whoever can write the database cannot
// recompute the chain after an edit. Each keyed event names the key id it
// was sealed with (in its Hash), so retired keys listed here keep old events
// verifiable after a rotation of the audit key. The zero value is the
// unkeyed chain.
type AuditKeys struct {
	// Current is the id of the key new events are sealed with; "" seals
	// them unkeyed (AuditHash).
	Current string
	// Keys holds every known key by id: the current one and retired ones.
	Keys map[string]Secret
}

// Keyed reports whether new events are sealed with a key.
func (k AuditKeys) Keyed() bool { return k.Current != "" }

// Validate checks that the current key is among Keys and that every key is
// set and its id fits in a Hash.
func (k AuditKeys) Validate() error {
	if _, ok := k.Keys[k.Current]; k.Current != "" && !ok {
		return fmt.Errorf("audit key %q is current but not among the keys", k.Current)
	}
	for id, key := range k.Keys {
		if id == "" || strings.Contains(id, ":") || key.IsZero() {
			return fmt.Errorf("audit key %q: an id without ':' and a non-empty key are required", id)
		}
	}
	return nil
}

// Seal returns the Hash of e appended after prev: an HMAC with the current
// key, or the unkeyed hash when there is none. k must Validate.
func (k AuditKeys) Seal(prev string, e AuditEvent) string {
	if k.Current == "" {
		return AuditHash(prev, e)
	}
	key := k.Keys[k.Current]
	if key.IsZero() {
		panic("rotator: AuditKeys.Seal with a current key that is not set (call Validate)")
	}
	return auditMAC(k.Current, key, prev, e)
}

func auditMAC(id string, key Secret, prev string, e AuditEvent) string {
	m := hmac.New(sha256.New, []byte(key.Reveal()))
	m.Write([]byte(strconv.Itoa(len(id)) + ":" + id)) // the key id is sealed too: relabelling an event breaks it
	writeAuditContent(m, prev, e)
	return auditMACPrefix + id + ":" + hex.EncodeToString(m.Sum(nil))
}

// AuditHashKeyID returns the id of the audit key that sealed hash, or ""
// for an unkeyed hash.
func AuditHashKeyID(hash string) string {
	rest, ok := strings.CutPrefix(hash, auditMACPrefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ":")
	return id
}

// check verifies e's Hash against its content and PrevHash. keyed reports
// whether e is sealed with a key.
func (k AuditKeys) check(e AuditEvent) (keyed bool, problem string) {
	if !strings.HasPrefix(e.Hash, auditMACPrefix) {
		if AuditHash(e.PrevHash, e) != e.Hash {
			return false, "hash mismatch (event edited)"
		}
		return false, ""
	}
	id := AuditHashKeyID(e.Hash)
	key, ok := k.Keys[id]
	if !ok || key.IsZero() {
		return true, fmt.Sprintf("sealed with audit key %q, which is not configured: cannot verify it (list the key under audit.keys, or the event was forged)", id)
	}
	if !hmac.Equal([]byte(auditMAC(id, key, e.PrevHash, e)), []byte(e.Hash)) {
		return true, fmt.Sprintf("MAC mismatch under audit key %q (event edited, or its chain recomputed without the key)", id)
	}
	return true, ""
}

// AuditProblem describes one break in the audit chain.
type AuditProblem struct {
	Seq     int64  `json:"seq"`
	Problem string `json:"problem"`
}

// Verify checks that events (in Seq order, from the first) form an unbroken
// chain: consecutive sequence numbers, each PrevHash equal to the hash
// before it, each Hash matching the content — unkeyed events by their
// SHA-256, keyed ones by the HMAC of the key they name. Once one event is
// keyed, an unkeyed event after it is a downgrade: someone recomputed the
// chain without the key.
func (k AuditKeys) Verify(events []AuditEvent) []AuditProblem {
	var problems []AuditProblem
	prev := ""
	var want int64 = 1
	keyedSince := int64(0)
	for _, e := range events {
		if e.Seq != want {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "sequence gap: expected " + strconv.FormatInt(want, 10) + " (event deleted?)"})
		}
		if e.PrevHash != prev {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "previous-hash mismatch (event before it edited or deleted)"})
		}
		keyed, problem := k.check(e)
		if problem != "" {
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: problem})
		}
		switch {
		case keyed && keyedSince == 0:
			keyedSince = e.Seq
		case !keyed && keyedSince != 0:
			problems = append(problems, AuditProblem{Seq: e.Seq, Problem: "unkeyed event after keyed events from " +
				strconv.FormatInt(keyedSince, 10) + " (chain recomputed without the audit key?)"})
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
