package app

import "net/http"

// breaker shows the emergency breaker: open or not, the automatic
// emergencies counted in its window, the contained rotations.
func (a *admin) breaker(w http.ResponseWriter, r *http.Request) {
	bs, err := a.d.Engine.Breaker(r.Context())
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, bs)
}

// releaseBreaker is a responder's decision: every contained emergency
// revokes, and counting starts over.
func (a *admin) releaseBreaker(w http.ResponseWriter, r *http.Request) {
	b, ok := a.actor(w, r)
	if !ok {
		return
	}
	released, err := a.d.Engine.ReleaseBreaker(r.Context(), b.Actor, "api")
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	if released == nil {
		released = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": released})
}
