package rotator

import (
	"context"
	"slices"
)

// Edge names a way out of a phase. A step chooses the edge; the table says
// where it leads.
type Edge string

const (
	EdgeOK         Edge = ""            // the usual next phase
	EdgeBootstrap  Edge = "bootstrap"   // no old credential: nothing to drain, revoke or watch
	EdgeDenied     Edge = "denied"      // a person denied the gate
	EdgeExpired    Edge = "expired"     // nobody decided within approval.expire_after
	EdgeAbandon    Edge = "abandon"     // the new secret was lost before every sink held it: mint again
	EdgeNotCurrent Edge = "not_current" // emergency: the exposed generation was not the current one
	EdgeUndo       Edge = "undo"        // a permanent error, cancel or deny before the point of no return
	EdgeFailed     Edge = "failed"      // a rollback ends as the rotation's RollbackTo says
	EdgeCancelled  Edge = "cancelled"
)

// PhaseSpec is one row of a lifecycle table.
type PhaseSpec struct {
	Phase Phase
	// Does says in a few words what the step does (the package diagram).
	Does string
	// Next maps each edge a step may take to the phase it leads to.
	Next map[Edge]Phase
	// Undoable: a permanent error, a cancel or a deny in this phase rolls
	// the rotation back (the old credential is still live). Otherwise the
	// rotation holds for a human. UndoUntilRevoke (a staged revoking) keeps
	// the phase undoable by a person — cancel, a deny at the revoke gate,
	// an exposure of the new key — until the revoke of the old credential
	// is issued: the step records that (DrainState.RevokeIssuedAt) before
	// it calls the issuer or asks a person to revoke by hand, and that
	// record is the point of no return. A permanent error there holds for
	// a human, who may still cancel.
	Undoable        bool
	UndoUntilRevoke bool
	// Acts names the side effects the step may perform, in order; "" is
	// the phase's main one. Each is a crash-matrix point, before and after.
	Acts []string

	step func(s *step, ctx context.Context) outcome
}

// Lifecycle is the table of one kind of rotation: its first phase and one
// row per phase. It is the whole state machine: the interpreter moves a
// rotation only along these edges.
type Lifecycle struct {
	Name   string
	Start  Phase
	Phases []PhaseSpec
}

// Spec returns the row of phase p.
func (l *Lifecycle) Spec(p Phase) (PhaseSpec, bool) {
	for _, s := range l.Phases {
		if s.Phase == p {
			return s, true
		}
	}
	return PhaseSpec{}, false
}

// Path is the phases a rotation of l passes through when every step takes
// its usual edge, from Start to the terminal phase: the progress line a
// notifier draws. It is read off the table, so it cannot disagree with it.
func (l *Lifecycle) Path() []Phase {
	var out []Phase
	for p := l.Start; ; {
		out = append(out, p)
		if p.Terminal() || slices.Contains(out[:len(out)-1], p) {
			return out
		}
		spec, ok := l.Spec(p)
		if !ok {
			return out
		}
		next, ok := spec.Next[EdgeOK]
		if !ok {
			return out
		}
		p = next
	}
}

// rollingBack is the same row in every table that can undo: the sinks get
// the old value back, consumers move back, the new credential is revoked.
var rollingBack = PhaseSpec{
	Phase: PhaseRollingBack, Does: "restore the old key in every sink, wait for consumers, revoke the new key",
	Next: map[Edge]Phase{EdgeFailed: PhaseFailed, EdgeCancelled: PhaseCancelled, EdgeDenied: PhaseDenied},
	Acts: []string{"", "reap", "revoke"},
	step: (*step).rollBack,
}

// Staged is the lifecycle of age, departure (another owner on file),
// manual and bootstrap rotations: the old key stays live until every sink
// holds the new one as current and the drain gate passed.
var Staged = Lifecycle{Name: "staged", Start: PhaseAwaitingApproval, Phases: []PhaseSpec{
	{Phase: PhaseAwaitingApproval, Does: "wait for the start gate's approvals",
		Next:     map[Edge]Phase{EdgeOK: PhaseMinting, EdgeDenied: PhaseDenied, EdgeExpired: PhaseExpired, EdgeUndo: PhaseRollingBack},
		Undoable: true, step: (*step).awaitStart},
	{Phase: PhaseMinting, Does: "record the intent, then mint (or wait for a person to submit)",
		Next:     map[Edge]Phase{EdgeOK: PhaseStaging, EdgeUndo: PhaseRollingBack},
		Undoable: true, Acts: []string{"reap", ""}, step: (*step).mint},
	{Phase: PhaseStaging, Does: "write the new key as pending beside the current one in every sink",
		Next:     map[Edge]Phase{EdgeOK: PhaseVerifying, EdgeAbandon: PhaseMinting, EdgeUndo: PhaseRollingBack},
		Undoable: true, Acts: []string{"", "abandon"}, step: (*step).stage},
	{Phase: PhaseVerifying, Does: "probe the new key (skipped when not configured)",
		Next:     map[Edge]Phase{EdgeOK: PhaseCuttingOver, EdgeAbandon: PhaseMinting, EdgeUndo: PhaseRollingBack},
		Undoable: true, Acts: []string{"", "abandon"}, step: (*step).verify},
	{Phase: PhaseCuttingOver, Does: "make the new key current in every sink",
		Next:     map[Edge]Phase{EdgeOK: PhaseDraining, EdgeBootstrap: PhaseCleaning, EdgeUndo: PhaseRollingBack},
		Undoable: true, Acts: []string{""}, step: (*step).cutOver},
	{Phase: PhaseDraining, Does: "wait until traffic shows the old key unused for quiet_period",
		Next:     map[Edge]Phase{EdgeOK: PhaseRevoking, EdgeUndo: PhaseRollingBack},
		Undoable: true, step: (*step).drain},
	{Phase: PhaseRevoking, Does: "pass the revoke gate, re-check every sink, revoke the old key",
		Next:            map[Edge]Phase{EdgeOK: PhaseWatching, EdgeExpired: PhaseExpired, EdgeUndo: PhaseRollingBack},
		UndoUntilRevoke: true, Acts: []string{""}, step: (*step).revoke},
	{Phase: PhaseWatching, Does: "alert on traffic that still uses the revoked key",
		Next: map[Edge]Phase{EdgeOK: PhaseCleaning}, step: (*step).watch},
	{Phase: PhaseCleaning, Does: "drop the previous value from every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseDone}, Acts: []string{""}, step: (*step).clean},
	rollingBack,
}}

// Emergency is the lifecycle of exposure, unauthorized traffic and a
// departure with no other owner: revoke first, then deliver a replacement
// straight to current. With the old key revoked there is nothing to stage
// beside, no consumer to move over gently and nothing to clean up: each
// sink gets one write of the replacement as its only value.
var Emergency = Lifecycle{Name: "emergency", Start: PhaseRevoking, Phases: []PhaseSpec{
	{Phase: PhaseRevoking, Does: "revoke the exposed generation at once (contained: once a responder approves)",
		Next: map[Edge]Phase{EdgeOK: PhaseMinting, EdgeNotCurrent: PhaseCleaning, EdgeDenied: PhaseDenied}, Acts: []string{""}, step: (*step).revoke},
	{Phase: PhaseMinting, Does: "record the intent, then mint the replacement",
		Next: map[Edge]Phase{EdgeOK: PhaseStaging}, Acts: []string{"reap", ""}, step: (*step).mint},
	{Phase: PhaseStaging, Does: "write the replacement as the only, current value in every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseVerifying, EdgeAbandon: PhaseMinting}, Acts: []string{"", "abandon"}, step: (*step).stage},
	{Phase: PhaseVerifying, Does: "probe the replacement (skipped when not configured)",
		Next: map[Edge]Phase{EdgeOK: PhaseDone}, Acts: []string{""}, step: (*step).verify},
	{Phase: PhaseCleaning, Does: "drop the revoked generation (not the current one) from every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseDone}, Acts: []string{""}, step: (*step).clean},
}}

// lifecycleByHand names EmergencyByHand (Rotation.Lifecycle).
const lifecycleByHand = "emergency_manual"

// EmergencyByHand is the emergency lifecycle of a key only a person can
// mint and revoke (HumanIssuer). One message asks the person to revoke the
// leaked key now and mint its replacement in the same visit; rekey takes
// the replacement (submit) and the revocation (confirm) in either order, and
// delivers the replacement as soon as it exists: consumers never wait for a
// second trip to the dashboard. The replacement is staged and made current
// at once, which keeps the leaked value in every sink as previous (never
// current) until the revoke is confirmed: the confirmation is probed with
// it whichever came first, and cleaning drops it.
var EmergencyByHand = Lifecycle{Name: lifecycleByHand, Start: PhaseRevoking, Phases: []PhaseSpec{
	{Phase: PhaseRevoking, Does: "contained: wait for a responder's approval (otherwise pass at once)",
		Next: map[Edge]Phase{EdgeOK: PhaseMinting, EdgeNotCurrent: PhaseConfirming, EdgeDenied: PhaseDenied}, step: (*step).containByHand},
	{Phase: PhaseMinting, Does: "record the intent; one message: revoke the leaked key now and mint the replacement (submit and confirm in either order)",
		Next: map[Edge]Phase{EdgeOK: PhaseStaging}, step: (*step).mint},
	{Phase: PhaseStaging, Does: "write the replacement as pending beside the leaked value in every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseCuttingOver, EdgeAbandon: PhaseMinting}, Acts: []string{"", "abandon"}, step: (*step).stage},
	{Phase: PhaseCuttingOver, Does: "make the replacement current in every sink at once (the leaked value stays as previous, to probe the confirmation)",
		Next: map[Edge]Phase{EdgeOK: PhaseVerifying}, Acts: []string{""}, step: (*step).cutOver},
	{Phase: PhaseVerifying, Does: "probe the replacement (skipped when not configured)",
		Next: map[Edge]Phase{EdgeOK: PhaseConfirming}, Acts: []string{""}, step: (*step).verify},
	{Phase: PhaseConfirming, Does: "wait for the person's confirmation that the leaked key is revoked (passes at once when it came first)",
		Next: map[Edge]Phase{EdgeOK: PhaseCleaning}, step: (*step).confirmed},
	{Phase: PhaseCleaning, Does: "drop the leaked value (previous) from every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseDone}, Acts: []string{""}, step: (*step).clean},
}}

// Decommission revokes every live generation of a key and deletes it from
// every sink; the key is then never bootstrapped again.
var Decommission = Lifecycle{Name: "decommission", Start: PhaseRevoking, Phases: []PhaseSpec{
	{Phase: PhaseRevoking, Does: "a second person approves (when the key requires one), then revoke every live generation, one at a time",
		Next: map[Edge]Phase{EdgeOK: PhaseRemoving, EdgeDenied: PhaseDenied}, Acts: []string{"each", ""}, step: (*step).revoke},
	{Phase: PhaseRemoving, Does: "delete the key from every sink",
		Next: map[Edge]Phase{EdgeOK: PhaseDone}, Acts: []string{""}, step: (*step).remove},
}}

// Lifecycles are every table, for documentation and the crash matrix.
func Lifecycles() []*Lifecycle {
	return []*Lifecycle{&Staged, &Emergency, &EmergencyByHand, &Decommission}
}

// LifecycleOf returns the table that drives r: the one it recorded when it
// started, else the one its trigger and mode imply.
func LifecycleOf(r *Rotation) *Lifecycle {
	switch {
	case r.Lifecycle == lifecycleByHand:
		return &EmergencyByHand
	case r.Trigger == TriggerDecommission:
		return &Decommission
	case r.Mode == ModeEmergency:
		return &Emergency
	}
	return &Staged
}

// canUndo reports whether r, where it stands, can still be rolled back
// instead of holding for a human: its old credential is still live.
func canUndo(r *Rotation) bool {
	spec, ok := LifecycleOf(r).Spec(r.Phase)
	if !ok {
		return false
	}
	return spec.Undoable || spec.UndoUntilRevoke && !revokeIssued(r)
}

// revokeIssued reports whether a staged rotation passed its point of no
// return: the revoke of the old credential was issued (recorded before the
// call), or a person was asked to revoke it by hand.
func revokeIssued(r *Rotation) bool {
	return !r.Drain.RevokeIssuedAt.IsZero() || r.Hold == HoldConfirm
}
