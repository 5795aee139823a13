package rotator

import "time"

// Action is what a policy decides.
type Action string

const (
	ActionNone      Action = "none"
	ActionWarn      Action = "warn"      // notify ahead of time
	ActionRotate    Action = "rotate"    // start a staged rotation
	ActionEmergency Action = "emergency" // revoke at once
)

// PolicyInput is everything a policy may look at. Policies are pure
// functions of it: no I/O, no clock of their own.
type PolicyInput struct {
	Key     *Key
	Now     time.Time
	Current *Credential // nil when the key has none
	Active  *Rotation   // nil when no rotation runs
	// Lingering are live credentials of the key that are not current (a
	// previous generation whose revoke never happened) — they should not
	// be in use.
	Lingering []*Credential
	// Traffic holds what the key's unauthorized-traffic source reported
	// for each lingering generation (only when such a source is set).
	Traffic map[int]Reading
}

// Decision of a policy. Reason is one of the policy's documented constants.
type Decision struct {
	Action  Action
	Policy  string
	Reason  string
	Detail  string
	Due     time.Time // when the key is (or was) due; zero if not applicable
	Trigger Trigger
	// Generation an emergency must revoke first (0: the current one).
	Generation int
}

// Policy decides whether a key must rotate now.
type Policy interface {
	Name() string
	Evaluate(in PolicyInput) Decision
}

// Evaluate runs the policies in order. An Emergency wins over everything;
// otherwise the first Rotate; otherwise the first Warn; otherwise None with
// the first policy's due date.
func Evaluate(policies []Policy, in PolicyInput) Decision {
	best := Decision{Action: ActionNone}
	var rotate *Decision
	for _, p := range policies {
		d := p.Evaluate(in)
		if d.Policy == "" {
			d.Policy = p.Name()
		}
		switch d.Action {
		case ActionEmergency:
			return d
		case ActionRotate:
			if rotate == nil {
				rotate = &d
			}
		case ActionWarn:
			if best.Action == ActionNone {
				best = d
			}
		default:
			if best.Action == ActionNone && best.Due.IsZero() {
				best.Due = d.Due
				best.Policy = d.Policy
				best.Reason = d.Reason
				best.Detail = d.Detail
			}
		}
	}
	if rotate != nil {
		return *rotate
	}
	return best
}
