// Package rotator is the core of rekey: the domain types, the ports that
// adapters implement (Issuer, Sink, Notifier, TrafficSource, Store), and the
// engine that drives each rotation through its state machine, one small
// idempotent step at a time, persisting the intent before every side effect.
//
// Staged mode (age, departure with another owner on file, manual, bootstrap):
//
//	awaiting_approval ─approve→ minting → staging → verifying → cutting_over → draining
//	       │deny/expire              │ (any failure before the old key is         │ zero 401s for
//	       ▼                         │  revoked, or a cancel: rolling_back)       │ quiet_period
//	  denied/expired                 ▼                                            ▼
//	                            rolling_back → failed/cancelled   done ← cleaning ← watching ← revoking
//
// Emergency mode (exposure, unauthorized traffic, owner left alone, decommission):
//
//	revoking → minting → staging → cutting_over → verifying → cleaning → done
//	revoking → removing → done                                  (decommission)
//
// A rotation that needs a human (approval, a manually minted secret, a manual
// revocation, a drain that outlived max_wait, a permanent failure after cut-over)
// stays in its phase with a Hold; approve/submit/confirm/retry clear it.
//
// Failures keep the rotation in its phase with Attempts+1 and a next attempt
// after an exponential, jittered backoff (see Backoff). Permanent errors
// (Permanent, IsPermanent) stop the phase at once: before the old credential is
// revoked the rotation rolls back; after it, it holds and pages a human.
//
// The engine never revokes the current credential of a staged rotation before
// every sink reports the new credential as current and the drain gate passed
// (invariant 1); it re-checks the sinks right before the revoke call.
package rotator
