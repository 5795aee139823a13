package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// stateDeparturePlan keeps, per departure event, which key generations it
// targets and what became of each: a departure acts on each key at most
// once, however often the event is retried.
const stateDeparturePlan = "rekey.departure"

// departureTarget is one key a departure affects, fixed at receipt.
type departureTarget struct {
	Key        string `json:"key"`
	Generation int    `json:"generation"` // the current generation at receipt
	Mode       Mode   `json:"mode"`
	Rotation   string `json:"rotation,omitempty"`
	Done       bool   `json:"done,omitempty"`
	Why        string `json:"why,omitempty"`
}

type departurePlan struct {
	Targets  []departureTarget `json:"targets"`
	First    time.Time         `json:"first"`
	Attempts int               `json:"attempts"`
	Held     bool              `json:"held,omitempty"` // the one notification that it waits was sent
	// Already: everyone it names had departed before this event (the
	// same departure sent again under a new id); it acts on no key.
	Already bool `json:"already,omitempty"`
}

// departureHoldAfter bounds how long a departure retries quietly before it
// tells a person what it waits for.
const departureHoldAfter = 10 * time.Minute

func (e *Engine) processDeparture(ctx context.Context, eventID string, r DepartureReport) (DepartureResult, error) {
	var res DepartureResult
	who := []string{}
	for _, x := range []string{r.Email, r.UserID} {
		if x = strings.ToLower(strings.TrimSpace(x)); x != "" {
			who = append(who, x)
		}
	}
	actor := departureActor(r.Via)
	plan, err := e.departurePlan(ctx, eventID, who, r.Via, r.Actor)
	if err != nil {
		return res, err
	}
	res.Duplicate = plan.Already
	pending := []string{}
	for i := range plan.Targets {
		tg := &plan.Targets[i]
		if tg.Mode == ModeStaged {
			res.Staged = append(res.Staged, tg.Key)
		} else {
			res.Emergency = append(res.Emergency, tg.Key)
		}
		if !tg.Done {
			e.departOne(ctx, tg, who, actor)
		}
		if tg.Rotation != "" {
			res.Rotations = append(res.Rotations, tg.Rotation)
		}
		if !tg.Done {
			pending = append(pending, tg.Key)
		}
	}
	plan.Attempts++
	var note []Event
	if len(pending) > 0 && !plan.Held && e.clock.Now().Sub(plan.First) >= departureHoldAfter {
		plan.Held = true
		note = append(note, Event{Kind: EventHeld, Severity: SeverityCritical,
			Message: fmt.Sprintf("departure of %s still waits after %s: key(s) %s have a rotation that cannot step aside yet; finish or cancel it and the departure goes on (nothing else is re-triggered)",
				strings.Join(who, "/"), departureHoldAfter, strings.Join(pending, ", ")),
			Fields: map[string]string{"keys": strings.Join(pending, ",")}})
	}
	if err := e.saveDeparturePlan(ctx, eventID, plan); err != nil {
		return res, err
	}
	if len(note) > 0 {
		if err := e.record(ctx, nil, []AuditEvent{{At: e.clock.Now(), Actor: "rekey", Action: "departure.waiting",
			Detail: map[string]string{"event": eventID, "keys": strings.Join(pending, ",")}}}, note...); err != nil {
			return res, err
		}
	}
	if len(pending) > 0 {
		return res, errPending
	}
	return res, nil
}

// departOne acts on one target: an emergency or staged rotation of the
// generation the departure found current — unless that generation is no
// longer current (replaced or revoked since), which settles it.
func (e *Engine) departOne(ctx context.Context, tg *departureTarget, who []string, actor string) {
	creds, err := e.store.Credentials(ctx, tg.Key)
	if err != nil {
		return
	}
	var target *Credential
	for _, c := range creds {
		if c.Generation == tg.Generation {
			target = c
		}
	}
	switch {
	case target == nil || target.State == CredRevoked:
		tg.Done, tg.Why = true, "generation already revoked"
		return
	case tg.Mode == ModeStaged && target.State != CredCurrent:
		tg.Done, tg.Why = true, "generation already replaced"
		return
	}
	others := 0
	if k, ok := e.keys[tg.Key]; ok {
		others = len(e.owners(ctx, k))
	}
	rot, err := e.Trigger(ctx, TriggerRequest{Key: tg.Key, Trigger: TriggerDeparture, Mode: tg.Mode, TargetGeneration: tg.Generation,
		Actor: actor, Reason: fmt.Sprintf("owner %s left; %d other owner(s) on file", strings.Join(who, "/"), others)})
	switch {
	case err == nil:
		tg.Rotation, tg.Done = rot.ID, true
	case errors.Is(err, ErrActiveRotation) && rot != nil && tg.Mode == ModeStaged:
		tg.Rotation, tg.Done, tg.Why = rot.ID, true, "a staged rotation was already replacing the key"
	case errors.Is(err, ErrActiveRotation) && rot != nil:
		tg.Rotation = rot.ID
		if e.preempt(ctx, rot, target, "owner left") == nil {
			tg.Done = true
		}
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadState):
		tg.Done, tg.Why = true, err.Error()
	}
}

// departureActor is the principal a departure acts as: the authenticated
// webhook that received it (departure:<name>), never the actor its body
// claims — that one is only audit detail.
func departureActor(via string) string {
	if via == "" {
		return "departure"
	}
	return "departure:" + via
}

// departurePlan loads the plan of a departure event, or makes it: every key
// the person owns is listed with the generation current now and the mode
// (emergency when nobody else owns it), then the person is marked departed.
//
// A key owned through an identity (email or user id) already recorded as
// departed before this event is not listed: it was acted on when that
// departure was first received, and the generations minted since were
// never the person's. So a departure sent again under a new webhook id
// acts on nothing.
func (e *Engine) departurePlan(ctx context.Context, eventID string, who []string, via, claimed string) (*departurePlan, error) {
	actor := departureActor(via)
	if e.state != nil {
		if v, ok, err := e.state.GetState(ctx, stateDeparturePlan, eventID); err != nil {
			return nil, err
		} else if ok {
			var p departurePlan
			if err := json.Unmarshal([]byte(v), &p); err != nil {
				return nil, fmt.Errorf("departure %s: decode plan: %w", eventID, err)
			}
			// Marking may not have happened if the process stopped right
			// after the plan was saved.
			return &p, e.markDeparted(ctx, who, p.First, via)
		}
	} else if p, ok := e.plans[eventID]; ok {
		return p, nil
	}
	gone, err := e.departedAmong(ctx, who)
	if err != nil {
		return nil, err
	}
	states, err := e.store.KeyStates(ctx)
	if err != nil {
		return nil, err
	}
	p := &departurePlan{First: e.clock.Now(), Targets: []departureTarget{}, Already: len(gone) == len(who)}
	skipped := []string{}
	for _, name := range e.keyOrder {
		k := e.keys[name]
		ids := []string{}
		for _, o := range k.Owners {
			if id := CanonicalIdentity(o); slices.Contains(who, id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		if slices.ContainsFunc(ids, func(id string) bool { return gone[id] }) {
			skipped = append(skipped, name)
			continue
		}
		cur := states[name].Current
		if cur == nil {
			continue // nothing to rotate
		}
		mode := ModeEmergency
		if slices.ContainsFunc(e.owners(ctx, k), func(o string) bool { return !slices.Contains(who, CanonicalIdentity(o)) }) {
			mode = ModeStaged
		}
		p.Targets = append(p.Targets, departureTarget{Key: name, Generation: cur.Generation, Mode: mode})
	}
	sort.SliceStable(p.Targets, func(i, j int) bool { return p.Targets[i].Mode == ModeEmergency && p.Targets[j].Mode != ModeEmergency })
	detail := map[string]string{"event": eventID, "person": strings.Join(who, "/"), "keys": fmt.Sprint(len(p.Targets))}
	if claimed != "" {
		detail["claimed_actor"] = claimed
	}
	if len(skipped) > 0 {
		detail["already_departed"] = strings.Join(skipped, ",")
	}
	if err := e.record(ctx, nil, []AuditEvent{{At: e.clock.Now(), Actor: actor, Action: "departure.received", Detail: detail}}); err != nil {
		return nil, err
	}
	// The plan first: marked departed without a plan, a retry of this very
	// event would find the person gone and act on nothing.
	if err := e.saveDeparturePlan(ctx, eventID, p); err != nil {
		return nil, err
	}
	return p, e.markDeparted(ctx, who, p.First, via)
}

func (e *Engine) saveDeparturePlan(ctx context.Context, eventID string, p *departurePlan) error {
	if e.state == nil {
		e.mu.Lock()
		e.plans[eventID] = p
		e.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return e.state.PutState(ctx, stateDeparturePlan, eventID, string(b))
}
