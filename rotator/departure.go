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
	// Known is the highest generation the store held at receipt, minted
	// or only intended (a mint intent is a pending credential, written
	// before the issuer is called): a higher one was minted after the
	// departure. 0 in plans saved before it was kept: their credentials'
	// CreatedAt is compared with First instead.
	Known    int    `json:"known,omitempty"`
	Mode     Mode   `json:"mode"`
	Rotation string `json:"rotation,omitempty"`
	// After is the rotation in flight it waits for: one whose new
	// generation was minted before the departure.
	After string `json:"after,omitempty"`
	// Preempted is the rotation in flight an emergency target made yield
	// and now waits for (asked once).
	Preempted string `json:"preempted,omitempty"`
	Done      bool   `json:"done,omitempty"`
	Why       string `json:"why,omitempty"`
}

type departurePlan struct {
	Targets  []departureTarget `json:"targets"`
	First    time.Time         `json:"first"`
	Attempts int               `json:"attempts"`
	Held     bool              `json:"held,omitempty"` // the one notification that it waits was sent
	// Already: everyone it names had departed before this event (the
	// same departure sent again under a new id); it acts on no key.
	Already bool `json:"already,omitempty"`
	// AccessTaken: Options.OnDeparted succeeded for everyone it names.
	AccessTaken bool `json:"access_taken,omitempty"`
	// Marked: everyone it names was recorded as departed.
	Marked bool `json:"marked,omitempty"`
}

// departureHoldAfter bounds how long a departure retries quietly before it
// tells a person what it waits for.
const departureHoldAfter = 10 * time.Minute

func (e *Engine) processDeparture(ctx context.Context, eventID string, r DepartureReport) (DepartureResult, error) {
	var res DepartureResult
	who := e.departedNames(r)
	actor := departureActor(r.Via)
	plan, err := e.departurePlan(ctx, eventID, who, r.Via, r.Actor)
	if err != nil {
		return res, err
	}
	res.Duplicate = plan.Already
	accessErr := e.takeAccess(ctx, eventID, plan, who, r.Via)
	pending, why := []string{}, []string{}
	for i := range plan.Targets {
		tg := &plan.Targets[i]
		if tg.Mode == ModeStaged {
			res.Staged = append(res.Staged, tg.Key)
		} else {
			res.Emergency = append(res.Emergency, tg.Key)
		}
		if !tg.Done {
			e.departOne(ctx, tg, who, actor, plan.First)
		}
		if tg.Rotation != "" {
			res.Rotations = append(res.Rotations, tg.Rotation)
		}
		if !tg.Done {
			pending = append(pending, tg.Key)
			if tg.After == tg.Rotation && tg.After != "" {
				why = append(why, tg.Key+": "+tg.Why)
			}
		}
		if !tg.Done && tg.After != "" && tg.After != tg.Rotation { // not an adopted rotation
			res.Waiting = append(res.Waiting, tg.Key)
			why = append(why, tg.Key+": "+tg.Why)
		}
	}
	plan.Attempts++
	var note []Event
	if len(pending) > 0 && !plan.Held && e.clock.Now().Sub(plan.First) >= departureHoldAfter {
		plan.Held = true
		note = append(note, Event{Kind: EventHeld, Severity: SeverityCritical,
			Message: fmt.Sprintf("departure of %s still waits after %s: key(s) %s have a rotation that cannot step aside yet%s; finish or cancel it and the departure goes on (nothing else is re-triggered)",
				strings.Join(who, "/"), departureHoldAfter, strings.Join(pending, ", "), whyText(why)),
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
	return res, accessErr
}

// departedNames resolves, once, whom a departure names: each identity it
// reports (email, user id), canonical, with every other name the person
// is known by (Options.Identities: their canonical identity and aliases),
// so that the person is recorded as departed under all of them and their
// approvals, requests and keys are found whichever name HR used. A name
// rekey acts under itself (ownActor) is never a person and is left out.
func (e *Engine) departedNames(r DepartureReport) []string {
	who := []string{}
	for _, x := range []string{r.Email, r.UserID} {
		names := []string{x}
		if e.identities != nil && CanonicalIdentity(x) != "" {
			names = append(e.identities(x), x) // canonical first
		}
		for _, n := range names {
			if n = CanonicalIdentity(n); n != "" && !ownActor(n) && !slices.Contains(who, n) {
				who = append(who, n)
			}
		}
	}
	return who
}

// takeAccess calls Options.OnDeparted for everyone a departure names,
// once per departure: a person who left keeps no way to act (their API
// tokens are revoked), whether or not they owned a key. What it reports
// left working (tokens the person created for others or for robots, the
// shared secrets they may know) is not revoked — that would lock out
// everyone they made tokens for — but notified and audited, so that a
// person decides. An error leaves the departure to be retried.
func (e *Engine) takeAccess(ctx context.Context, eventID string, plan *departurePlan, who []string, via string) error {
	if e.onDeparted == nil || plan.AccessTaken {
		return nil
	}
	var remaining []string
	for _, w := range who {
		rest, err := e.onDeparted(ctx, Departure{Who: w, At: plan.First, Via: via})
		if err != nil {
			e.log.Warn("departure: take the access of a person who left; will retry", "person", w, "err", err)
			return fmt.Errorf("departure of %s: take access: %w", w, err)
		}
		for _, r := range rest {
			if !slices.Contains(remaining, r) {
				remaining = append(remaining, r)
			}
		}
	}
	if len(remaining) > 0 {
		person, actor := strings.Join(who, "/"), departureActor(via)
		if err := e.record(ctx, nil, []AuditEvent{{At: e.clock.Now(), Actor: actor, Action: "departure.remaining",
			Detail: map[string]string{"event": eventID, "person": person, "remaining": strings.Join(remaining, "; ")}}},
			Event{Kind: EventDeparture, Severity: SeverityCritical, Actor: actor, Fields: map[string]string{"person": person},
				Message: fmt.Sprintf("%s left: their own API tokens are revoked, but what follows still works and they may hold a copy: %s",
					person, strings.Join(remaining, "; "))}); err != nil {
			return fmt.Errorf("departure of %s: record what stays live: %w", person, err)
		}
	}
	plan.AccessTaken = true
	return nil
}

// departOne acts on one target: an emergency or staged rotation of the
// generation the departure found current. The target is settled only by
// a generation minted after the departure (since), a credential the
// person never saw:
//   - the generation found at receipt replaced or revoked since settles it
//     only if what is current now was minted after the departure; a
//     generation minted before it (a rotation in flight at receipt cut
//     over) is rotated in turn;
//   - a staged target adopts a rotation already in flight only while it
//     has not minted yet (or minted after the departure); one whose new
//     generation was minted before the departure, or that cannot tell, is
//     waited for, and the key is rotated again once it ends;
//   - an emergency target makes a rotation in flight yield (preempt), or
//     adopts an emergency of the target already in flight;
//   - an adopted or pre-empted rotation never settles the target by
//     itself (it may be denied, cancelled, expire or roll back): the event
//     stays pending, is retried, and settles by the first rule once the
//     rotation ends, or starts the departure's own rotation.
func (e *Engine) departOne(ctx context.Context, tg *departureTarget, who []string, actor string, since time.Time) {
	creds, err := e.store.Credentials(ctx, tg.Key)
	if err != nil {
		return
	}
	byGen := map[int]*Credential{}
	var target, cur *Credential
	for _, c := range creds {
		byGen[c.Generation] = c
		if c.Generation == tg.Generation {
			target = c
		}
		if c.State == CredCurrent {
			cur = c
		}
	}
	if target == nil || target.State == CredRevoked || tg.Mode == ModeStaged && target.State != CredCurrent {
		switch {
		case cur == nil:
			tg.Done, tg.Why, tg.After = true, "generation already revoked", ""
			return
		case tg.mintedAfter(cur, since):
			tg.Done, tg.Why, tg.After = true, fmt.Sprintf("generation already replaced by generation %d, minted after the departure", cur.Generation), ""
			return
		}
		target = cur // minted before the departure: the person may have seen it
	}
	others := 0
	if k, ok := e.keys[tg.Key]; ok {
		others = len(e.owners(ctx, k))
	}
	rot, err := e.Trigger(ctx, TriggerRequest{Key: tg.Key, Trigger: TriggerDeparture, Mode: tg.Mode, TargetGeneration: target.Generation,
		Actor: actor, Reason: fmt.Sprintf("owner %s left; %d other owner(s) on file", strings.Join(who, "/"), others)})
	switch {
	case err == nil:
		tg.Rotation, tg.Done, tg.After = rot.ID, true, ""
	case errors.Is(err, ErrActiveRotation) && rot != nil && tg.Mode == ModeStaged && tg.mintsAfter(rot, byGen, since):
		// Adopted, not settled: a rotation someone else started may be
		// denied, cancelled, expire or roll back. The target settles when
		// a generation minted after the departure is current; if the
		// rotation ends without one, the key is rotated again.
		tg.Rotation, tg.After = rot.ID, rot.ID
		tg.Why = fmt.Sprintf("adopted rotation %s, which mints after the departure; if it ends without replacing the key, the key rotates again", rot.ID)
	case errors.Is(err, ErrActiveRotation) && rot != nil && tg.Mode == ModeStaged:
		tg.After = rot.ID
		tg.Why = fmt.Sprintf("rotation %s minted generation %d before the departure; the key rotates again once it ends", rot.ID, rot.NewGeneration)
	case errors.Is(err, ErrActiveRotation) && rot != nil && tg.Preempted == rot.ID:
		// Made to yield already: wait for it to end.
	case errors.Is(err, ErrActiveRotation) && rot != nil:
		tg.Rotation = rot.ID
		// The rotation now revokes the target (or rolls back), or is an
		// emergency of the target already: wait for it to end. It settles
		// the target only if what is current then was minted after the
		// departure; denied, rolled back, or cut over to a generation
		// minted before it, the key gets its emergency once it ends.
		// Emergency: the key's only owner left, and saw every generation
		// minted before the departure; a rollback does not wait for
		// consumers to move back to one of them.
		if e.preemptBy(ctx, rot, target, "owner left", actor, true) == nil {
			tg.Preempted = rot.ID
		}
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadState):
		tg.Done, tg.Why, tg.After = true, err.Error(), ""
	}
}

// mintsAfter reports whether rotation a's new generation is, for sure,
// minted after the departure: a has not recorded its mint intent yet, or
// recorded it after the departure (the intent is written before the
// issuer is called, or a person asked). An intent from before it may have
// been minted and delivered already: the person who left may have seen it.
func (tg *departureTarget) mintsAfter(a *Rotation, byGen map[int]*Credential, since time.Time) bool {
	if a.NewGeneration == 0 {
		return true
	}
	c := byGen[a.NewGeneration]
	return c != nil && tg.mintedAfter(c, since)
}

// mintedAfter reports whether credential c was minted (its intent
// recorded) after the departure. It is decided by the store's order, not
// by clocks: c's generation is higher than every generation the store
// held when the departure was received (Known). A credential's CreatedAt
// is the clock of the daemon that minted it, and the departure's time the
// clock of the one that received it; with daemons on skewed hosts, those
// two cannot be compared. Plans saved before Known was kept fall back to
// them.
func (tg *departureTarget) mintedAfter(c *Credential, since time.Time) bool {
	if tg.Known > 0 {
		return c.Generation > tg.Known
	}
	return !c.CreatedAt.IsZero() && !c.CreatedAt.Before(since)
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
			// after the plan was saved. Once it has, a retry never marks
			// again: a departure an admin undid stays undone.
			if p.Marked {
				return &p, nil
			}
			return &p, e.marked(ctx, eventID, &p, who, via)
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
		known, err := e.knownGeneration(ctx, name)
		if err != nil {
			return nil, err
		}
		p.Targets = append(p.Targets, departureTarget{Key: name, Generation: cur.Generation, Mode: mode, Known: known})
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
	return p, e.marked(ctx, eventID, p, who, via)
}

// marked marks the people a departure names as departed, then records in
// its plan that it did.
func (e *Engine) marked(ctx context.Context, eventID string, p *departurePlan, who []string, via string) error {
	if err := e.markDeparted(ctx, who, p.First, via); err != nil {
		return err
	}
	p.Marked = true
	return e.saveDeparturePlan(ctx, eventID, p)
}

// knownGeneration is the highest generation of key the store holds,
// whatever its state (a pending one is a mint intent).
func (e *Engine) knownGeneration(ctx context.Context, key string) (int, error) {
	creds, err := e.store.Credentials(ctx, key)
	if err != nil {
		return 0, err
	}
	known := 0
	for _, c := range creds {
		known = max(known, c.Generation)
	}
	return known, nil
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

func whyText(why []string) string {
	if len(why) == 0 {
		return ""
	}
	return " (" + strings.Join(why, "; ") + ")"
}
