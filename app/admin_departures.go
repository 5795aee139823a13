package app

import (
	"net/http"
	"strconv"

	"github.com/rekeyhq/rekey/auth"
)

// undoDeparture is POST /v1/departures/{who}/undo: an admin forgets that
// the person named who left (a departure HR sent by mistake), under every
// name auth.identities knows them by, audited departure.undone by the
// admin. Nothing the departure took is given back: revoked API tokens stay
// revoked (create new ones), and rotated keys stay rotated. 404 when the
// person is not recorded as having left.
func (a *admin) undoDeparture(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	if !a.allow(w, p, auth.ActManageTokens, "") { // who may act at all: admins
		return
	}
	who := r.PathValue("who")
	if err := PrintableText("who", who); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cleared, err := a.d.Engine.UndoDeparture(r.Context(), who, p.ID)
	if err != nil {
		a.d.fail(w, r, "undo the departure of "+strconv.Quote(who)+": ", err)
		return
	}
	a.d.Logger.Info("admin api: departure undone", "person", cleared, "by", p.ID)
	writeJSON(w, http.StatusOK, map[string]any{"undone": cleared,
		"note": "their revoked API tokens stay revoked and rotated keys stay rotated: create new tokens if they need them"})
}
