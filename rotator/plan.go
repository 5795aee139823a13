package rotator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// PlanItem says what would happen to one key now, and why.
type PlanItem struct {
	Key      string    `json:"key"`
	Action   string    `json:"action"` // none, warn, rotate, emergency, bootstrap, wait (outside window), busy (active rotation)
	Policy   string    `json:"policy,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Due      time.Time `json:"due,omitzero"`
	Age      string    `json:"age,omitempty"`
	Current  int       `json:"current_generation,omitempty"`
	Active   string    `json:"active_rotation,omitempty"`
	Phase    Phase     `json:"phase,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	// Lingering are generations still live beside the current one (a
	// revoke gate that expired, a rotation that ended before its revoke),
	// each with what would revoke it.
	Lingering []Lingering `json:"lingering,omitempty"`
}

// Lingering is a live generation that is not the current one.
type Lingering struct {
	Generation int       `json:"generation"`
	Name       string    `json:"name"`
	Since      time.Time `json:"since,omitzero"`
	// RevokedBy says what would revoke it, or that nothing would.
	RevokedBy string `json:"revoked_by"`
}

// Plan evaluates every key's policies against the store as of now, with no
// side effects. It is `rekey plan` and the scheduler's first half.
func (e *Engine) Plan(ctx context.Context, now time.Time) ([]PlanItem, error) {
	states, err := e.store.KeyStates(ctx)
	if err != nil {
		return nil, err
	}
	return e.PlanFrom(ctx, states, now), nil
}

// PlanFrom is Plan over key states the caller already read.
func (e *Engine) PlanFrom(ctx context.Context, states map[string]KeyState, now time.Time) []PlanItem {
	decom := e.decommissionedSet(ctx)
	out := make([]PlanItem, 0, len(e.keyOrder))
	for _, name := range e.keyOrder {
		k, st := e.keys[name], states[name] // looked up once: 100,000 keys
		it := e.planKey(k, st, now, decom[name])
		if st.Active == nil {
			flagLingering(k, st.Previous, &it)
		}
		out = append(out, it)
	}
	return out
}

// PlanKey is PlanFrom for one key, over its state as the caller read it
// (describe: O(1) in the number of keys).
func (e *Engine) PlanKey(ctx context.Context, name string, st KeyState, now time.Time) (PlanItem, bool) {
	k, ok := e.keys[name]
	if !ok {
		return PlanItem{}, false
	}
	it := e.planKey(k, st, now, e.Decommissioned(ctx, name))
	if st.Active == nil {
		flagLingering(k, st.Previous, &it)
	}
	return it, true
}

// flagLingering adds the key's live previous generations to its plan item,
// each with what would revoke it.
func flagLingering(k *Key, previous []*Credential, it *PlanItem) {
	by := "nothing revokes it on its own: report it as exposed, decommission the key, or configure policies.unauthorized to revoke it once it is used"
	if w := k.Unauthorized; w != nil {
		by = fmt.Sprintf("policies.unauthorized revokes it at once when %s shows it in use (query %q)", w.SourceName, w.Query)
	}
	for _, c := range previous {
		it.Lingering = append(it.Lingering, Lingering{Generation: c.Generation, Name: c.Name, Since: c.CreatedAt, RevokedBy: by})
		it.Warnings = append(it.Warnings, fmt.Sprintf("generation %d (%s) is still live beside the current one; %s", c.Generation, c.Name, by))
	}
}

func (e *Engine) planKey(k *Key, st KeyState, now time.Time, decommissioned bool) PlanItem {
	it := PlanItem{Key: k.Name}
	if decommissioned && st.Active == nil {
		it.Action, it.Reason, it.Detail = "none", "decommissioned", "decommissioned: remove the key from the configuration"
		return it
	}
	if len(k.Owners) == 0 {
		it.Warnings = append(it.Warnings, "no owners on file: a departure cannot be routed and approvals have no one to page")
	}
	if st.Current != nil {
		it.Current = st.Current.Generation
		it.Age = formatAge(now.Sub(st.Current.CreatedAt))
	}
	if st.Active != nil {
		it.Action, it.Active, it.Phase = "busy", st.Active.ID, st.Active.Phase
		it.Detail = fmt.Sprintf("rotation %s in %s", st.Active.ID, st.Active.Phase)
		return it
	}
	if st.Current == nil {
		if k.Bootstrap {
			it.Action, it.Reason, it.Detail = "bootstrap", "no_credential", "no credential yet: generation 1 would be minted"
		} else {
			it.Action, it.Reason, it.Detail = "none", "no_credential", "no credential yet and bootstrap is off"
		}
		return it
	}
	d := Evaluate(k.Policies, PolicyInput{Key: k, Now: now, Current: st.Current})
	it.Action, it.Policy, it.Reason, it.Detail, it.Due = string(d.Action), d.Policy, d.Reason, d.Detail, d.Due
	if d.Action == ActionRotate && !k.InWindow(now) {
		it.Action = "wait"
		it.Detail += "; outside every rotation window"
	}
	return it
}

func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days := int(d / (24 * time.Hour))
	if days > 0 {
		return strconv.Itoa(days) + "d" + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h" // no fmt: 100,000 keys per plan
	}
	return d.Round(time.Second).String()
}

// Evaluate runs the plan for the given keys (all when names is empty) and
// acts on it: starts due rotations inside their windows, bootstraps keys
// without a credential, emits age warnings (once per credential generation
// per process), and updates the key-age metric.
func (e *Engine) Evaluate(ctx context.Context, names ...string) error {
	now := e.clock.Now()
	states, err := e.store.KeyStates(ctx)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		names = e.keyOrder
	}
	decom := e.decommissionedSet(ctx)
	var errs []error
	for _, name := range names {
		k, ok := e.keys[name]
		if !ok {
			continue
		}
		st := states[name]
		if st.Current != nil {
			e.metrics.KeyAge(name, now.Sub(st.Current.CreatedAt))
		}
		if k.MaxAge > 0 {
			e.metrics.KeyMaxAge(name, k.MaxAge)
		}
		it := e.planKey(k, st, now, decom[name])
		var req *TriggerRequest
		if k.Unauthorized != nil && st.Active == nil && !decom[name] {
			if d, ok := e.unexplained(ctx, k, st, now); ok {
				req = &TriggerRequest{Key: name, Trigger: TriggerUnauthorized, Mode: ModeEmergency, TargetGeneration: d.Generation,
					Actor: ActorScheduler, Reason: d.Policy + ": " + d.Reason + " (" + d.Detail + ")"}
				it.Action = "" // handled
			}
		}
		if it.Action == "bootstrap" || it.Action == string(ActionRotate) {
			if why, blocked := e.automaticBlocked(ctx, k, now); blocked {
				e.log.Info("automatic rotation not started", "key", name, "why", why)
				continue
			}
		}
		switch it.Action {
		case "bootstrap":
			req = &TriggerRequest{Key: name, Trigger: TriggerBootstrap, Actor: ActorScheduler, Reason: "no credential yet"}
		case string(ActionRotate), string(ActionEmergency):
			d := Evaluate(k.Policies, PolicyInput{Key: k, Now: now, Current: st.Current})
			t := d.Trigger
			if t == "" {
				t = TriggerAge
			}
			req = &TriggerRequest{Key: name, Trigger: t, Actor: ActorScheduler, Reason: d.Policy + ": " + d.Reason + " (" + d.Detail + ")"}
			if d.Action == ActionEmergency {
				req.Mode = ModeEmergency
			}
		case string(ActionWarn):
			e.warnOnce(ctx, k, st.Current, it)
		}
		if req == nil {
			continue
		}
		if _, err := e.Trigger(ctx, *req); err != nil && !errors.Is(err, ErrActiveRotation) {
			errs = append(errs, fmt.Errorf("key %s: %w", name, err))
		}
	}
	e.metrics.evaluated(now)
	return errors.Join(errs...)
}

// warnOnce sends a key's age warning once per generation, across
// restarts and daemons: the warning is remembered in the state store after
// it is queued (a crash in between may repeat it; never lose it), and its
// event id is the key's and generation's, so that two daemons evaluating
// the same tick queue it once.
func (e *Engine) warnOnce(ctx context.Context, k *Key, cur *Credential, it PlanItem) {
	tag := k.Name + "#" + fmt.Sprint(cur.Generation)
	e.mu.Lock()
	if e.warned == nil {
		e.warned = map[string]bool{}
	}
	seen := e.warned[tag]
	e.warned[tag] = true
	e.mu.Unlock()
	if seen {
		return
	}
	if e.state != nil {
		if _, done, err := e.state.GetState(ctx, stateAgeWarned, tag); err == nil && done {
			return
		}
	}
	// One id per key and generation: the outbox keeps the first of two
	// daemons that warn on the same tick.
	e.Notify(k, Event{ID: "age-" + k.Name + "-v" + fmt.Sprint(cur.Generation), Kind: EventWarnAge, Severity: SeverityWarning, Key: k.Name, Owners: k.Owners,
		Message: fmt.Sprintf("%s will be rotated soon: %s (due %s)", k.Name, it.Detail, it.Due.Format(time.RFC3339)),
		Fields:  map[string]string{"policy": it.Policy, "reason": it.Reason, "due": it.Due.Format(time.RFC3339)}})
	if e.state != nil {
		if err := e.state.PutState(ctx, stateAgeWarned, tag, e.clock.Now().UTC().Format(time.RFC3339)); err != nil {
			e.log.Warn("remember an age warning", "key", k.Name, "generation", cur.Generation, "err", err)
		}
	}
}

// unexplained asks the key's unauthorized-traffic source about its
// lingering credentials (live, not current) and runs the policies on the
// readings. It reports an emergency decision, if any.
func (e *Engine) unexplained(ctx context.Context, k *Key, st KeyState, now time.Time) (Decision, bool) {
	creds, err := e.store.Credentials(ctx, k.Name)
	if err != nil {
		e.log.Warn("unauthorized check: load credentials", "key", k.Name, "err", err)
		return Decision{}, false
	}
	in := PolicyInput{Key: k, Now: now, Current: st.Current, Traffic: map[int]Reading{}}
	for _, c := range creds {
		if c.State == CredPrevious && c.Minted() {
			in.Lingering = append(in.Lingering, c)
		}
	}
	if len(in.Lingering) == 0 {
		return Decision{}, false
	}
	for _, c := range in.Lingering {
		r, err := k.Unauthorized.Source.Unauthorized(ctx, TrafficQuery{Key: k.Name, Query: k.Unauthorized.Query, OldID: c.IssuerID, OldName: c.Name, Since: c.CreatedAt})
		if err != nil {
			e.log.Warn("unauthorized check: traffic source did not answer", "key", k.Name, "source", k.Unauthorized.SourceName, "err", err)
			continue
		}
		in.Traffic[c.Generation] = r
	}
	d := Evaluate(k.Policies, in)
	return d, d.Action == ActionEmergency && d.Trigger == TriggerUnauthorized
}
