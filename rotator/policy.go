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
}

// Decision of a policy. Reason is one of the policy's documented constants.
type Decision struct {
	Action  Action
	Policy  string
	Reason  string
	Detail  string
	Due     time.Time // when the key is (or was) due; zero if not applicable
	Trigger Trigger
}

// Policy decides whether a key must rotate now.
type Policy interface {
	Name() string
	Evaluate(in PolicyInput) Decision
}

// Evaluate runs the policies in order; the first decision that is not
// ActionNone wins, except that a Warn keeps looking for a Rotate or Emergency.
func Evaluate(policies []Policy, in PolicyInput) Decision {
	best := Decision{Action: ActionNone}
	for _, p := range policies {
		d := p.Evaluate(in)
		if d.Policy == "" {
			d.Policy = p.Name()
		}
		switch d.Action {
		case ActionRotate, ActionEmergency:
			return d
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
	return best
}
