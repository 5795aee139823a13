// Package rotator is the core of rekey: the domain types, the ports that
// adapters implement (Issuer, Sink, Notifier, TrafficSource, Store), and the
// engine that drives each rotation through its lifecycle, one small
// idempotent step at a time, persisting the intent before every side effect.
//
// # The lifecycle is data
//
// Read lifecycle.go first. Each kind of rotation has one table (Staged,
// Emergency, Decommission): for every phase, the step function that runs
// it, the edges out of it, whether a permanent error still rolls it back
// (the old credential is live), and the side effects its step may perform.
// One interpreter (interpreter.go) alone moves a rotation along those
// edges: it runs the current phase's step, which reads what it needs and
// returns an outcome (advance by an edge, again, wait until, hold for a
// person, fail) — or asks for a side effect, which the interpreter runs
// after committing everything recorded so far, between the phase's
// "before" and "after" failpoints. The interpreter then writes the phase,
// and commits the rotation, its credentials, its audit events and the
// outbox rows of every notifier in one transaction; it records the phase
// metrics once the commit is durable. Outcomes that touch nothing outside
// (a start gate nobody configured, a verify that is off) are committed
// together with the next one, so they cost no transaction.
//
// Commands — cancel, approve or deny, retry, confirm, and an exposure that
// pre-empts a staged rotation — never move a rotation: they record a
// Request on it (request.go), which the interpreter acts on before the next
// step, whichever daemon holds the rotation.
//
// The tables, as Diagram renders them (a test keeps this text equal to the
// tables; TestCrashMatrix kills the engine at every side effect listed):
//
// (diagram start)
//
//	staged (starts in awaiting_approval)
//	  awaiting_approval  wait for the start gate's approvals
//	      → minting; denied → denied; expired → expired; undo → rolling_back
//	  minting            record the intent, then mint (or wait for a person to submit)
//	      → staging; undo → rolling_back   [side effects: reap, main]
//	  staging            write the new key as pending beside the current one in every sink
//	      → verifying; abandon → minting; undo → rolling_back   [side effects: main, abandon]
//	  verifying          probe the new key (skipped when not configured)
//	      → cutting_over; abandon → minting; undo → rolling_back   [side effects: main, abandon]
//	  cutting_over       make the new key current in every sink
//	      → draining; bootstrap → cleaning; undo → rolling_back   [side effects: main]
//	  draining           wait until traffic shows the old key unused for quiet_period
//	      → revoking; undo → rolling_back
//	  revoking           pass the revoke gate, re-check every sink, revoke the old key
//	      → watching; expired → expired; undo → rolling_back   [side effects: main]   [undo until the revoke is issued]
//	  watching           alert on traffic that still uses the revoked key
//	      → cleaning
//	  cleaning           drop the previous value from every sink
//	      → done   [side effects: main]
//	  rolling_back       restore the old key in every sink, wait for consumers, revoke the new key
//	      cancelled → cancelled; denied → denied; failed → failed   [side effects: main, reap, revoke]
//
//	emergency (starts in revoking)
//	  revoking           revoke the exposed generation at once (contained: once a responder approves)
//	      → minting; denied → denied; not_current → cleaning   [side effects: main]
//	  minting            record the intent, then mint the replacement
//	      → staging   [side effects: reap, main]
//	  staging            write the replacement as the only, current value in every sink
//	      → verifying; abandon → minting   [side effects: main, abandon]
//	  verifying          probe the replacement (skipped when not configured)
//	      → done   [side effects: main]
//	  cleaning           drop the revoked generation (not the current one) from every sink
//	      → done   [side effects: main]
//
//	emergency_manual (starts in revoking)
//	  revoking           contained: wait for a responder's approval (otherwise pass at once)
//	      → minting; denied → denied; not_current → confirming
//	  minting            record the intent; one message: revoke the leaked key now and mint the replacement (submit and confirm in either order)
//	      → staging
//	  staging            write the replacement as pending beside the leaked value in every sink
//	      → cutting_over; abandon → minting   [side effects: main, abandon]
//	  cutting_over       make the replacement current in every sink at once (the leaked value stays as previous, to probe the confirmation)
//	      → verifying   [side effects: main]
//	  verifying          probe the replacement (skipped when not configured)
//	      → confirming   [side effects: main]
//	  confirming         wait for the person's confirmation that the leaked key is revoked (passes at once when it came first)
//	      → cleaning
//	  cleaning           drop the leaked value (previous) from every sink
//	      → done   [side effects: main]
//
//	decommission (starts in revoking)
//	  revoking           a second person approves (when the key requires one), then revoke every live generation, one at a time
//	      → removing; denied → denied   [side effects: each, main]
//	  removing           delete the key from every sink
//	      → done   [side effects: main]
//
// (diagram end)
//
// A rotation that needs a person (approval, a manually minted secret, a
// manual revocation, a drain that outlived max_wait, a permanent failure
// after the point of no return) holds in its phase; approve, submit,
// confirm and retry release it.
//
// Failures keep the rotation in its phase with Attempts+1 and a next attempt
// after an exponential, jittered backoff (see Backoff). Permanent errors
// (Permanent, IsPermanent) stop the phase at once: while the table says the
// phase can be undone, the rotation rolls back; otherwise it holds and
// pages a person.
//
// The point of no return of a staged rotation is the revoke of its old
// credential, recorded on the rotation (DrainState.RevokeIssuedAt) in the
// commit before the issuer is called. Until then revoking stays undoable
// by a person — cancel, a deny at the revoke gate, an exposure of the new
// key — though a permanent error there holds rather than rolling back on
// its own: consumers already read the new key, and a person decides. A
// sink that keeps refusing the re-check before the revoke holds, critical,
// after a few attempts instead of retrying quietly forever.
//
// Several daemons may share one store. A daemon runs a rotation's steps
// only while it holds the rotation's lease (lease.go): claimed for a TTL
// judged by the database's clock, renewed by a heartbeat, and fencing every
// commit by its epoch, so that a daemon that lost it stops before its next
// side effect and another takes the rotation over within the TTL.
//
// The engine never revokes the current credential of a staged rotation before
// every sink reports the new credential as current and the drain gate passed
// (invariant 1); it re-checks the sinks right before the revoke call.
package rotator
