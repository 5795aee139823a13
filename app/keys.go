package app

import (
	"context"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// ReadableKeyViews is what GET /v1/keys answers p: the views of the keys
// it may read. The CLI's status calls it in process (break-glass) rather
// than encode 10,000 views to JSON and decode them again.
func (d *Daemon) ReadableKeyViews(ctx context.Context, p *auth.Principal) ([]KeyView, error) {
	views, err := d.KeyViews(ctx, timeNow())
	if err != nil {
		return nil, err
	}
	out := views[:0]
	for _, v := range views {
		if p.Can(auth.ActRead, d.authKey(v.Name)) {
			out = append(out, v)
		}
	}
	return out, nil
}

// authKey is key name as authorization sees it: with its owner team.
func (d *Daemon) authKey(name string) auth.Key { return auth.Key{Name: name, Team: d.teams[name]} }

// KeyViews lists every configured key with its state and plan.
func (d *Daemon) KeyViews(ctx context.Context, now time.Time) ([]KeyView, error) {
	states, err := d.Store.KeyStates(ctx)
	if err != nil {
		return nil, err
	}
	plan := d.Engine.PlanFrom(ctx, states, now)
	out := make([]KeyView, 0, len(plan))
	for i, k := range d.Engine.Keys() {
		out = append(out, d.keyView(ctx, k, states[k.Name], plan[i], now))
	}
	return out, nil
}

// keyView is one key as status and describe show it, from its state and
// plan item.
func (d *Daemon) keyView(ctx context.Context, k *rotator.Key, st rotator.KeyState, it rotator.PlanItem, now time.Time) KeyView {
	owners, departed := d.Engine.Owners(ctx, k.Name)
	v := KeyView{Name: k.Name, Issuer: k.IssuerName, Owners: owners, DepartedOwners: departed, Plan: it.Action, Reason: it.Reason,
		State: "no credential", Lingering: it.Lingering}
	gate := rotator.ProveGate(k.Drain.Gate(k.Name))
	v.Gate = &gate
	for _, b := range k.Sinks {
		v.Sinks = append(v.Sinks, b.SinkName+":"+b.Target.Path)
	}
	if c := st.Current; c != nil {
		v.Generation, v.IssuerID, v.State = c.Generation, c.IssuerID, "current"
		v.Age = ageSeconds(now, c.CreatedAt)
	}
	if !it.Due.IsZero() {
		v.NextDue = rfc3339(it.Due)
	}
	if it.Reason == "decommissioned" {
		v.State = "decommissioned"
	}
	if a := st.Active; a != nil {
		v.Active, v.State = a.ID, "rotating ("+string(a.Phase)+")"
		if a.Hold != rotator.HoldNone {
			v.State = "waiting (" + string(a.Phase) + ": " + string(a.Hold) + ")"
		}
		live := append([]*rotator.Credential{st.Current}, st.Previous...)
		for _, c := range live {
			if alert := exposedAlert(a, c); alert != "" {
				v.Exposed = &ExposedView{Generation: c.Generation, Name: c.Name, Alert: alert, RotationID: a.ID}
				v.State = c.Name + " " + alert + "; " + v.State
			}
		}
	}
	return v
}

// ExposedView is a live credential an emergency is about (exposed, used by
// an unknown caller, held by a person who left): it still authenticates
// until revoked, so status and describe never show it as an ordinary key.
type ExposedView struct {
	Generation int    `json:"generation"`
	Name       string `json:"name"`
	Alert      string `json:"alert"` // "LEAKED: exposed, still live until revoked"
	RotationID string `json:"rotation_id"`
}

// exposedAlert says what is wrong with c while emergency a is about it and
// it is not revoked yet ("" otherwise).
func exposedAlert(a *rotator.Rotation, c *rotator.Credential) string {
	if a == nil || c == nil || a.Mode != rotator.ModeEmergency || a.Trigger == rotator.TriggerDecommission ||
		c.Generation != a.TargetGeneration || c.State == rotator.CredRevoked || a.Phase.Terminal() {
		return ""
	}
	headline, why := rotator.EmergencyWhy(a.Trigger)
	return headline + ": " + strings.TrimPrefix(strings.TrimPrefix(why, "is "), "was ") + ", still live until revoked"
}
