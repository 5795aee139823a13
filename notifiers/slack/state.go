package slack

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// StateStore keys, inside the notifier's namespace.
const (
	rotationPrefix = "rotation/" // + rotation id → JSON messageState
	eventPrefix    = "event/"    // + event id → "1" for events outside a rotation
	maxEventIDs    = 500         // remembered per rotation
)

// messageState is what the notifier remembers about a rotation's parent
// message, durably, so that a restarted daemon updates the same message. It
// holds what the message shows — never secret material.
type messageState struct {
	Channel string `json:"channel"` // channel id, as chat.postMessage answered
	TS      string `json:"ts"`

	Key        string          `json:"key"`
	Trigger    rotator.Trigger `json:"trigger,omitempty"`
	Mode       rotator.Mode    `json:"mode,omitempty"`
	Actor      string          `json:"actor,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Owners     []string        `json:"owners,omitempty"`
	Phase      rotator.Phase   `json:"phase"`
	LastActive rotator.Phase   `json:"last_active,omitempty"` // last phase before rollback/terminal
	Hold       rotator.Hold    `json:"hold,omitempty"`
	HoldDetail string          `json:"hold_detail,omitempty"`
	Outcome    string          `json:"outcome,omitempty"`
	// Lifecycle is the table the rotation runs on; NoStartGate: the key
	// has no start gate, so the message shows no approval step.
	Lifecycle   string `json:"lifecycle,omitempty"`
	NoStartGate bool   `json:"no_start_gate,omitempty"`
	// Mentions are who the rotation pages, shown in the message itself.
	Mentions string `json:"mentions,omitempty"`
	Problem  string `json:"problem,omitempty"` // last retry / alert line
	// Gate is what the rotation's drain gate proves (and cannot see);
	// GateWarning is set when slow consumers would get 401s.
	Gate        string `json:"gate,omitempty"`
	GateWarning bool   `json:"gate_warning,omitempty"`
	// Waiting is what the rotation waited for at the last event.
	Waiting *rotator.Waiting `json:"waiting,omitempty"`
	// DecidedGate hides the buttons of a gate someone decided from Slack,
	// until the engine holds again (e.g. a second approval is needed).
	DecidedGate rotator.Gate `json:"decided_gate,omitempty"`
	Decisions   []decision   `json:"decisions,omitempty"`
	UpdatedAt   time.Time    `json:"updated_at"`
	// Events are the ids already delivered for this rotation.
	Events []string `json:"events,omitempty"`
}

type decision struct {
	Gate    rotator.Gate    `json:"gate"`
	Verdict rotator.Verdict `json:"verdict"`
	By      string          `json:"by"`
	SlackID string          `json:"slack_id,omitempty"`
	At      time.Time       `json:"at"`
}

func (s *messageState) posted() bool { return s.TS != "" }

func (s *messageState) delivered(id string) bool { return id != "" && slices.Contains(s.Events, id) }

func (s *messageState) markDelivered(id string) {
	if id == "" || s.delivered(id) {
		return
	}
	s.Events = append(s.Events, id)
	if len(s.Events) > maxEventIDs {
		s.Events = s.Events[len(s.Events)-maxEventIDs:]
	}
}

// addDecision records a decision once (the Slack click and the engine's
// approval event both report it).
func (s *messageState) addDecision(d decision) {
	for i, x := range s.Decisions {
		if x.Gate == d.Gate && x.Verdict == d.Verdict && (x.By == d.By || (d.SlackID != "" && x.SlackID == d.SlackID)) {
			if s.Decisions[i].SlackID == "" {
				s.Decisions[i].SlackID = d.SlackID
			}
			return
		}
	}
	s.Decisions = append(s.Decisions, d)
}

// pendingGate is the gate the message offers buttons for, if any: the
// rotation is held for approval (start or revoke gate) or held after a drain
// timeout, and nobody decided that gate from Slack since it was held.
func (s *messageState) pendingGate() (rotator.Gate, bool) {
	var g rotator.Gate
	switch {
	case s.Hold == rotator.HoldApproval && s.Phase == rotator.PhaseAwaitingApproval:
		g = rotator.GateStart
	case s.Hold == rotator.HoldApproval && s.Phase == rotator.PhaseRevoking:
		g = rotator.GateRevoke
	case s.Hold == rotator.HoldDrainTimeout && s.Phase == rotator.PhaseDraining:
		g = rotator.GateDrain
	default:
		return "", false
	}
	if g == s.DecidedGate {
		return "", false
	}
	return g, true
}

func (n *Notifier) loadRotation(ctx context.Context, id string) (*messageState, error) {
	v, ok, err := n.state.GetState(ctx, n.name, rotationPrefix+id)
	if err != nil {
		return nil, stateError("read rotation "+id, err)
	}
	st := &messageState{}
	if !ok {
		return st, nil
	}
	if err := json.Unmarshal([]byte(v), st); err != nil {
		// A corrupt record must not wedge delivery: start afresh (a new
		// parent message) rather than fail forever.
		n.logger.Error("slack: unreadable message state; posting a new message", "rotation", id, "err", err)
		return &messageState{}, nil
	}
	return st, nil
}

func (n *Notifier) saveRotation(ctx context.Context, id string, st *messageState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInternal, stateError("encode rotation "+id, err))
	}
	if err := n.state.PutState(ctx, n.name, rotationPrefix+id, string(b)); err != nil {
		return stateError("write rotation "+id, err)
	}
	return nil
}

// keyedMutex serialises read-modify-write of one rotation's message state
// between Notify and click handling.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
