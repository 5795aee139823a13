package app

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rekeyhq/rekey/rotator"
)

// Fixed client texts for errors that the store produces (its text names
// the store, SQL statements, rows): the full error goes to the log only.
const (
	msgNotFound = "not found"
	msgDecided  = "already decided: each person decides a gate once"
	msgActive   = "the key already has an active rotation"
	msgConflict = "the rotation changed meanwhile: read it again and retry"
	msgInternal = "internal error (the daemon's log has the details)"
)

// clientError is what the admin API answers for err, about subject (e.g.
// `rotation "rot_…"`, may be empty): its status, and a text that never
// carries the store's internals — a fixed one for not found, conflicts,
// an active rotation and a decision already made, the engine's own words
// for its refusals (self-approval, not an approver, not in this state).
func (d *Daemon) clientError(r *http.Request, subject string, err error) (int, string) {
	st := statusOf(err)
	var msg string
	switch {
	case errors.Is(err, rotator.ErrNotFound):
		msg = msgNotFound
	case errors.Is(err, rotator.ErrDecided):
		msg = msgDecided
	case errors.Is(err, rotator.ErrActiveRotation):
		msg = msgActive
	case errors.Is(err, rotator.ErrConflict):
		msg = msgConflict
	case st == http.StatusInternalServerError:
		return st, msgInternal
	default:
		return st, prefixed(subject, err.Error())
	}
	d.Logger.Info("admin api: refused", "path", r.URL.Path, "status", st, "err", err)
	return st, prefixed(subject, msg)
}

func prefixed(subject, msg string) string {
	if subject == "" {
		return msg
	}
	return subject + ": " + msg
}

// rotationNotFound answers 404 for rotation id exactly as for a rotation
// that does not exist: a principal scoped to other keys learns neither
// that it exists nor its key.
func rotationNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, prefixed(rotationSubject(id), msgNotFound))
}

func rotationSubject(id string) string { return "rotation " + strconv.Quote(id) }
