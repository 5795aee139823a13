package rotator

import (
	"context"
	"time"
)

// outcomeKind says what the interpreter does with a step's result.
type outcomeKind int

const (
	// outNext: the phase is done; follow the table's edge to the next phase.
	outNext outcomeKind = iota
	// outAgain: record what the step learned and run the same phase again
	// at once (one side effect of several, like revoking one orphan).
	outAgain
	// outWait: run the same phase again at `until` (polling phases, and
	// timers such as a rollback waiting for consumers).
	outWait
	// outHold: park the rotation until a human acts, or until `until`.
	outHold
	// outAct: the step needs a side effect. The interpreter commits
	// everything recorded so far (the intent), fires the "before"
	// failpoint, runs act, fires "after", and goes on with act's outcome.
	outAct
	// outFail: the step failed with err: retry with backoff, or on a
	// permanent error undo (before the point of no return) or hold.
	outFail
)

// outcome is what a step function returns: a verdict plus what to record
// with it. Steps never write the phase, commit, or notify; the interpreter
// does all three from the outcome (interpreter.go).
type outcome struct {
	kind outcomeKind
	// edge selects the next phase among the table's edges (outNext).
	edge Edge
	// action and detail become the audit event of a transition (outNext) or
	// of what an outAgain/outAct records.
	action string
	detail map[string]string
	// creds are credential changes to commit with the outcome.
	creds []*Credential
	// audits are extra audit events (another actor, such as the person who
	// submitted a secret); events are notifications committed with it.
	audits []AuditEvent
	events []Event

	until time.Time // outWait, outHold
	hold  Hold      // outHold
	why   string    // outHold: the detail a human reads
	sev   Severity  // outHold
	hint  *waitHint // outWait, outHold: what the rotation's state does not say

	act     func(ctx context.Context) outcome // outAct
	actName string                            // outAct: "" is the phase's main side effect
	// lazy: the act may run before what is buffered is committed, because
	// losing the buffer in a crash only repeats idempotent work (a read-only
	// probe; a clean-up after the revoke). It saves a transaction.
	lazy bool

	err error // outFail
}

// zeroTime is a hold without expiry.
var zeroTime time.Time

// advance is the outcome of a finished phase: go to the default next phase.
func advance(action string, detail map[string]string) outcome {
	return outcome{kind: outNext, action: action, detail: detail}
}

// via picks another edge of the table than the default.
func (o outcome) via(e Edge) outcome { o.edge = e; return o }

// with adds credential changes to commit.
func (o outcome) with(creds ...*Credential) outcome {
	o.creds = append(o.creds, creds...)
	return o
}

// notifying adds a notification to commit with the outcome.
func (o outcome) notifying(ev Event) outcome {
	o.events = append(o.events, ev)
	return o
}

// auditing adds an audit event of another actor.
func (o outcome) auditing(ev AuditEvent) outcome {
	o.audits = append(o.audits, ev)
	return o
}

// again records action and runs the same phase again at once.
func again(action string, detail map[string]string) outcome {
	return outcome{kind: outAgain, action: action, detail: detail}
}

// waitUntil runs the same phase again at t.
func waitUntil(t time.Time) outcome { return outcome{kind: outWait, until: t} }

// holdFor parks the rotation for a human (until zero: no expiry).
func holdFor(h Hold, why string, until time.Time, sev Severity) outcome {
	return outcome{kind: outHold, hold: h, why: why, until: until, sev: sev}
}

// sideEffect asks the interpreter to run fn after committing the intent
// recorded in the returned outcome (action, detail, creds).
func sideEffect(name string, fn func(ctx context.Context) outcome) outcome {
	return outcome{kind: outAct, actName: name, act: fn}
}

// lazily marks an act that needs no commit before it (see outcome.lazy).
func (o outcome) lazily() outcome { o.lazy = true; return o }

// failed is a failed step.
func failed(err error) outcome { return outcome{kind: outFail, err: err} }

// recording sets the audit record of an outcome (the intent of a side effect).
func (o outcome) recording(action string, detail map[string]string) outcome {
	o.action, o.detail = action, detail
	return o
}
