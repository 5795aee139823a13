// Package slots is the algebra every key/value sink shares: the pure
// transitions over the three slots a target holds — current (what consumers
// read), pending (staged beside it) and previous (kept after a promotion
// until cleanup) — keyed by fingerprint.
//
//	{cur: a} ──Stage(v)──→ {cur: a, pend: v} ──Promote(v)──→ {cur: v, prev: a} ──Cleanup(v)──→ {cur: v}
//	   ↑                          │                                │
//	   └──────Rollback(v)─────────┴────────────Rollback(v)─────────┘
//
// A target without a current value takes a staged value straight as
// current (a first delivery), which Rollback refuses to undo. Each
// transition returns the new slots and whether anything changed, so that a
// replay of a step that already happened writes nothing. A refusal is one of
// ErrNotStaged, ErrOldGone or ErrOnlyCurrent, already classified for the
// engine (rotator.Permanent with a reason, wrapping rotator.ErrNotFound or
// rotator.ErrBadState), so every sink reports it the same way.
//
// A new key/value sink is one package that reads its slots (with whatever
// check-and-set its store offers), calls the transition here, and writes
// the result back only when it changed — plus one line in app's factory
// map. Its slot value is any type whose Fingerprint method returns the
// SHA-256 fingerprint of the secret it holds, "" for an absent value: the
// Vault sink keeps bare strings, the file sink entries with metadata.
// Stores whose slots are not values but labels on versions (Secrets
// Manager) decide with their own preconditions and share only the errors.
package slots
