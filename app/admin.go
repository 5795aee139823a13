package app

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rekeyhq/rekey/rotator"
)

// admin serves the admin API. Every mutation is validated before it reaches
// the engine, so bad input gets a 4xx and changes nothing.
type admin struct{ d *Daemon }

func (a *admin) listKeys(w http.ResponseWriter, r *http.Request) {
	views, err := a.d.KeyViews(r.Context(), timeNow())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "list keys: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": views})
}

func (a *admin) plan(w http.ResponseWriter, r *http.Request) {
	items, err := a.d.Engine.Plan(r.Context(), timeNow())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "plan: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"plan": items})
}

type rotateBody struct {
	Mode      string `json:"mode"`
	Reason    string `json:"reason"`
	Actor     string `json:"actor"`
	Bootstrap bool   `json:"bootstrap"`
	Trigger   string `json:"trigger"`
}

func (a *admin) rotate(w http.ResponseWriter, r *http.Request) {
	var b rotateBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := TriggerFor(r.PathValue("key"), b.Mode, b.Trigger, b.Reason, b.Actor, b.Bootstrap)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, ok := a.d.Engine.Key(req.Key); !ok {
		writeError(w, http.StatusNotFound, "unknown key "+strconv.Quote(req.Key))
		return
	}
	rot, err := a.d.Engine.Trigger(r.Context(), req)
	if err != nil {
		if errors.Is(err, rotator.ErrActiveRotation) && rot != nil {
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "rotation": ViewRotation(rot)})
			return
		}
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, ViewRotation(rot))
}

// TriggerFor validates a manual trigger request (CLI and admin API).
func TriggerFor(key, mode, trigger, reason, actor string, bootstrap bool) (rotator.TriggerRequest, error) {
	req := rotator.TriggerRequest{Key: key, Reason: reason, Actor: actor, Trigger: rotator.TriggerManual}
	if actor == "" {
		return req, errors.New("actor is required (who asks for this rotation)")
	}
	switch trigger {
	case "", "manual":
	case "exposure", "departure", "unauthorized", "decommission":
		req.Trigger = rotator.Trigger(trigger)
	default:
		return req, errors.New("trigger must be manual, exposure, departure, unauthorized or decommission")
	}
	if bootstrap {
		req.Trigger = rotator.TriggerBootstrap
	}
	switch mode {
	case "":
	case "staged", "emergency":
		req.Mode = rotator.Mode(mode)
	default:
		return req, errors.New("mode must be staged or emergency")
	}
	if req.Trigger == rotator.TriggerDecommission {
		req.Mode = rotator.ModeEmergency
	}
	if req.Reason == "" {
		req.Reason = "requested by " + actor
	}
	return req, nil
}

func (a *admin) listRotations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := rotator.RotationFilter{Key: q.Get("key"), ActiveOnly: q.Get("active") == "true"}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 10000")
			return
		}
		f.Limit = n
	}
	rots, err := a.d.Store.ListRotations(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "list rotations: "+err.Error())
		return
	}
	views := make([]RotationView, 0, len(rots))
	for _, rot := range rots {
		views = append(views, ViewRotation(rot))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rotations": views})
}

func (a *admin) getRotation(w http.ResponseWriter, r *http.Request) {
	rot, err := a.d.Store.GetRotation(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, statusOf(err), "rotation "+strconv.Quote(r.PathValue("id"))+": "+err.Error())
		return
	}
	approvals, err := a.d.Store.Approvals(r.Context(), rot.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	type approvalView struct {
		Gate, Approver, Verdict, Via, At string
	}
	av := []approvalView{}
	for _, ap := range approvals {
		av = append(av, approvalView{string(ap.Gate), ap.Approver, string(ap.Verdict), ap.Via, rfc3339(ap.At)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rotation": ViewRotation(rot), "approvals": av})
}

type actorBody struct {
	Actor   string `json:"actor"`
	Comment string `json:"comment"`
	Reason  string `json:"reason"`
}

func (a *admin) actor(w http.ResponseWriter, r *http.Request) (actorBody, bool) {
	var b actorBody
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return b, false
	}
	if strings.TrimSpace(b.Actor) == "" {
		writeError(w, http.StatusBadRequest, "actor is required")
		return b, false
	}
	return b, true
}

func (a *admin) decide(v rotator.Verdict) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := a.actor(w, r)
		if !ok {
			return
		}
		rot, err := a.d.Engine.Decide(r.Context(), rotator.ApproveRequest{RotationID: r.PathValue("id"), Approver: b.Actor, Verdict: v, Via: "api", Comment: b.Comment})
		a.answer(w, rot, err)
	}
}

func (a *admin) cancel(w http.ResponseWriter, r *http.Request) {
	b, ok := a.actor(w, r)
	if !ok {
		return
	}
	rot, err := a.d.Engine.Cancel(r.Context(), r.PathValue("id"), b.Actor, b.Reason)
	a.answer(w, rot, err)
}

func (a *admin) retry(w http.ResponseWriter, r *http.Request) {
	b, ok := a.actor(w, r)
	if !ok {
		return
	}
	rot, err := a.d.Engine.Retry(r.Context(), r.PathValue("id"), b.Actor)
	a.answer(w, rot, err)
}

func (a *admin) confirm(w http.ResponseWriter, r *http.Request) {
	b, ok := a.actor(w, r)
	if !ok {
		return
	}
	rot, err := a.d.Engine.Confirm(r.Context(), r.PathValue("id"), b.Actor)
	a.answer(w, rot, err)
}

func (a *admin) submit(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Actor  string         `json:"actor"`
		Secret rotator.Secret `json:"-"`
		Value  string         `json:"secret"`
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, "invalid body (expected {\"actor\": …, \"secret\": …})")
		return
	}
	sec := rotator.NewSecret(b.Value)
	b.Value = ""
	if b.Actor == "" || sec.IsZero() {
		writeError(w, http.StatusBadRequest, "actor and secret are required")
		return
	}
	rot, err := a.d.Engine.Submit(r.Context(), r.PathValue("id"), b.Actor, sec)
	if err != nil && statusOf(err) == http.StatusInternalServerError && rot != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	a.answer(w, rot, err)
}

func (a *admin) answer(w http.ResponseWriter, rot *rotator.Rotation, err error) {
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ViewRotation(rot))
}

func (a *admin) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := rotator.AuditFilter{Key: q.Get("key"), RotationID: q.Get("rotation")}
	for name, dst := range map[string]*int64{"after": &f.AfterSeq} {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, name+" must be a non-negative integer")
				return
			}
			*dst = n
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 10000")
			return
		}
		f.Limit = n
	}
	evs, err := a.d.Store.Audit(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "audit: "+err.Error())
		return
	}
	views := make([]AuditView, 0, len(evs))
	for _, e := range evs {
		views = append(views, ViewAudit(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": views})
}

func (a *admin) verifyAudit(w http.ResponseWriter, r *http.Request) {
	problems, err := a.d.Store.VerifyAudit(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "verify audit: "+err.Error())
		return
	}
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusConflict
	}
	if problems == nil {
		problems = []rotator.AuditProblem{}
	}
	writeJSON(w, status, map[string]any{"ok": len(problems) == 0, "problems": problems})
}
