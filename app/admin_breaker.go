package app

import (
	"net/http"

	"github.com/rekeyhq/rekey/auth"
)

// breaker shows the emergency breaker: open or not, the automatic
// emergencies counted in its window, the contained rotations.
func (a *admin) breaker(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, principalOf(r), auth.ActRead, "") {
		return
	}
	bs, err := a.d.Engine.Breaker(r.Context())
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, ViewBreaker(bs))
}

// releaseBreaker is a responder's decision: every contained emergency
// revokes, and counting starts over. The responder must be allowed
// emergencies on every key a contained rotation belongs to.
func (a *admin) releaseBreaker(w http.ResponseWriter, r *http.Request) {
	var b actorBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p := principalOf(r)
	actor, ok := a.actor(w, p, b.Actor)
	if !ok {
		return
	}
	bs, err := a.d.Engine.Breaker(r.Context())
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	if len(bs.Contained) == 0 && !a.allow(w, p, auth.ActEmergency, "") {
		return
	}
	for _, id := range bs.Contained {
		rot, err := a.d.Store.GetRotation(r.Context(), id)
		if err != nil {
			a.d.fail(w, r, "", err)
			return
		}
		if !a.allow(w, p, auth.ActEmergency, rot.Key) {
			return
		}
	}
	released, err := a.d.Engine.ReleaseBreaker(r.Context(), actor, via(p))
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	if released == nil {
		released = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": released})
}
