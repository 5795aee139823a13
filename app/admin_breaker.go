package app

import (
	"net/http"
	"slices"
	"strconv"

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

// ReleaseView is one contained rotation's part in a breaker release.
type ReleaseView struct {
	Rotation string `json:"rotation"`
	Key      string `json:"key"`
	Released bool   `json:"released"`
	Error    string `json:"error,omitempty"`
}

// releaseBreaker is a responder's decision: every contained emergency of
// a key the responder may take emergencies on revokes — each on its own,
// whatever the key's approval.approvers; one that cannot be released is
// reported and does not stop the others. Counting starts over only for a
// responder who may act on every key (a fleet-wide decision).
func (a *admin) releaseBreaker(w http.ResponseWriter, r *http.Request) {
	var b actorBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.printable(w, b) {
		return
	}
	p := principalOf(r)
	actor, ok := a.actor(w, p, b.Actor)
	if !ok {
		return
	}
	may := func(key string) bool { return p.Can(auth.ActEmergency, a.key(key)) }
	fleet := p.Can(auth.ActEmergency, auth.Key{})
	bs, err := a.d.Engine.Breaker(r.Context())
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	if !fleet && !slices.ContainsFunc(bs.Contained, func(id string) bool {
		rot, err := a.d.Store.GetRotation(r.Context(), id)
		return err == nil && may(rot.Key)
	}) {
		a.allow(w, p, auth.ActEmergency, "") // nothing in scope: 403
		return
	}
	rels, err := a.d.Engine.ReleaseBreaker(r.Context(), a.decision(r, actor, ""), may, fleet)
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	released, results := []string{}, []ReleaseView{}
	for _, rel := range rels {
		if !p.Can(auth.ActRead, a.key(rel.Key)) {
			continue // out of scope: not even its key's name
		}
		v := ReleaseView{Rotation: rel.RotationID, Key: rel.Key, Released: rel.Err == nil}
		if rel.Err != nil {
			_, v.Error = a.d.clientError(r, "rotation "+strconv.Quote(rel.RotationID), rel.Err)
		} else {
			released = append(released, rel.RotationID)
		}
		results = append(results, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": released, "results": results, "counting_restarted": fleet})
}
