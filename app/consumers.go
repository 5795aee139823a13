package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// ConsumerView is one consumer of a key as GET /v1/keys/{key}/consumers
// shows it: which generation it last attested holding, and when.
type ConsumerView struct {
	Name           string `json:"name"`
	Generation     int    `json:"generation"`
	GenerationName string `json:"generation_name"`
	// State: current (holds the current generation), behind (an older
	// one: it holds the drain gate), stale (not heard from within the
	// horizon: it no longer holds the gate).
	State     string `json:"state"`
	LastSeen  string `json:"last_seen"`
	FirstSeen string `json:"first_seen"`
	Via       string `json:"via,omitempty"`
}

// ConsumersView is the answer of GET /v1/keys/{key}/consumers.
type ConsumersView struct {
	Key       string         `json:"key"`
	Current   int            `json:"current_generation,omitempty"`
	Horizon   float64        `json:"horizon,omitempty"` // seconds
	Consumers []ConsumerView `json:"consumers"`
}

// horizoned is the consumers traffic source's horizon.
type horizoned interface{ Horizon() time.Duration }

// ConsumerViews lists the consumers seen for key, with where each stands
// against the current generation and the horizon of the key's consumers
// source (none: every consumer remembered counts).
func (d *Daemon) ConsumerViews(ctx context.Context, key string, now time.Time) (ConsumersView, error) {
	k, ok := d.Engine.Key(key)
	if !ok {
		return ConsumersView{}, fmt.Errorf("key %q: %w", key, rotator.ErrNotFound)
	}
	v := ConsumersView{Key: key, Consumers: []ConsumerView{}}
	var horizon time.Duration
	for _, c := range k.Drain.Checks {
		if h, ok := c.Source.(horizoned); ok {
			horizon = h.Horizon()
			v.Horizon = horizon.Seconds()
		}
	}
	states, err := d.Store.KeyStates(ctx)
	if err != nil {
		return v, err
	}
	if c := states[key].Current; c != nil {
		v.Current = c.Generation
	}
	list, err := d.Store.Consumers(ctx, key)
	if err != nil {
		return v, err
	}
	for _, c := range list {
		cv := ConsumerView{Name: c.Name, Generation: c.Generation, GenerationName: rotator.CredentialName(key, c.Generation),
			LastSeen: rfc3339(c.LastSeen), FirstSeen: rfc3339(c.FirstSeen), Via: c.Via, State: "current"}
		switch {
		case horizon > 0 && now.Sub(c.LastSeen) > horizon:
			cv.State = "stale"
		case c.Generation < v.Current:
			cv.State = "behind"
		}
		v.Consumers = append(v.Consumers, cv)
	}
	return v, nil
}

func (a *admin) listConsumers(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !a.allow(w, principalOf(r), auth.ActRead, key) {
		return
	}
	v, err := a.d.ConsumerViews(r.Context(), key, timeNow())
	if err != nil {
		a.d.fail(w, r, "consumers of "+strconv.Quote(key)+": ", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
