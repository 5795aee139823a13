package app

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// admin serves the admin API. Every mutation is validated before it reaches
// the engine, so bad input gets a 4xx and changes nothing.
type admin struct{ d *Daemon }

func (a *admin) listKeys(w http.ResponseWriter, r *http.Request) {
	views, err := a.d.ReadableKeyViews(r.Context(), principalOf(r))
	if err != nil {
		a.d.fail(w, r, "list keys: ", err)
		return
	}
	writeJSONList(w, "keys", views)
}

func (a *admin) plan(w http.ResponseWriter, r *http.Request) {
	items, ages, err := a.d.plan(r.Context(), timeNow())
	if err != nil {
		a.d.fail(w, r, "plan: ", err)
		return
	}
	p := principalOf(r)
	n := 0
	for i, it := range items {
		if p.Can(auth.ActRead, a.key(it.Key)) {
			items[n], ages[n] = it, ages[i]
			n++
		}
	}
	// Each view is made as it is encoded: 100,000 of them are never held.
	writeJSONListOf(w, "plan", n, func(i int) PlanView { return planView(items[i], ages[i]) })
}

type rotateBody struct {
	Mode      string `json:"mode"`
	Reason    string `json:"reason"`
	Actor     string `json:"actor"`
	Bootstrap bool   `json:"bootstrap"`
	Trigger   string `json:"trigger"`
	// Recommission allows minting a key that was decommissioned.
	Recommission bool `json:"recommission"`
}

func (a *admin) rotate(w http.ResponseWriter, r *http.Request) {
	var b rotateBody
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
	req, err := TriggerFor(r.PathValue("key"), b.Mode, b.Trigger, b.Reason, actor, b.Bootstrap)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Recommission = b.Recommission
	req.Behind = a.chain(p)
	if !a.allow(w, p, TriggerAction(req), req.Key) { // scope first: no key enumeration
		return
	}
	if _, ok := a.d.Engine.Key(req.Key); !ok {
		writeError(w, http.StatusNotFound, "unknown key "+strconv.Quote(req.Key))
		return
	}
	rot, err := a.d.Engine.Trigger(r.Context(), req)
	if err != nil {
		a.triggerFailed(w, r, p, rot, err)
		return
	}
	writeJSON(w, http.StatusCreated, ViewRotation(rot))
}

// triggerFailed answers a trigger the engine refused; a key that already
// has an active rotation gets 409 with that rotation (if p may read it).
func (a *admin) triggerFailed(w http.ResponseWriter, r *http.Request, p *auth.Principal, rot *rotator.Rotation, err error) {
	if errors.Is(err, rotator.ErrActiveRotation) && rot != nil && p.Can(auth.ActRead, a.key(rot.Key)) {
		a.d.Logger.Info("admin api: refused", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusConflict, map[string]any{"error": msgActive, "rotation": ViewRotation(rot)})
		return
	}
	a.d.fail(w, r, "", err)
}

// TriggerAction is the permission a trigger request needs: decommission
// and emergency rotations (explicit, or implied by an exposure or
// unauthorized-use trigger) and reports (a departure) are the responder's;
// a staged rotation the operator's.
func TriggerAction(req rotator.TriggerRequest) auth.Action {
	switch {
	// Re-minting a decommissioned key undoes a decommission: the same role.
	case req.Trigger == rotator.TriggerDecommission, req.Recommission:
		return auth.ActDecommission
	case req.Mode == rotator.ModeEmergency, req.Trigger == rotator.TriggerExposure, req.Trigger == rotator.TriggerUnauthorized:
		return auth.ActEmergency
	case req.Trigger == rotator.TriggerDeparture:
		return auth.ActReport
	}
	return auth.ActRotate
}

// key is what scopes are checked against for a key name.
func (a *admin) key(name string) auth.Key { return a.d.authKey(name) }

// allow answers 403 unless p may take action on key.
func (a *admin) allow(w http.ResponseWriter, p *auth.Principal, action auth.Action, key string) bool {
	if p.Can(action, a.key(key)) {
		return true
	}
	what := "key " + strconv.Quote(key)
	if key == "" {
		what = "this daemon"
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("%s (roles: %s) may not %s on %s", p.ID, strings.Join(p.RoleNames(), ", "), action, what))
	return false
}

// actor is who acts: the authenticated principal's canonical identity. A
// request that names someone else is refused (403), so that neither a
// case or whitespace variant nor another person's name can be recorded.
func (a *admin) actor(w http.ResponseWriter, p *auth.Principal, named string) (string, bool) {
	if strings.TrimSpace(named) != "" && a.d.Directory.Canonical(named) != p.ID {
		writeError(w, http.StatusForbidden, fmt.Sprintf("actor %q is not the authenticated principal %q: the actor is whoever the credential names; leave \"actor\" out",
			named, p.ID))
		return "", false
	}
	return p.ID, true
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
	if _, ok := a.d.Engine.Key(f.Key); f.Key != "" && (!ok || !principalOf(r).Can(auth.ActRead, a.key(f.Key))) {
		writeError(w, http.StatusNotFound, "unknown key "+strconv.Quote(f.Key))
		return
	}
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
		a.d.fail(w, r, "list rotations: ", err)
		return
	}
	views := make([]RotationView, 0, len(rots))
	p := principalOf(r)
	for _, rot := range rots {
		if p.Can(auth.ActRead, a.key(rot.Key)) {
			views = append(views, ViewRotation(rot))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rotations": views})
}

func (a *admin) getRotation(w http.ResponseWriter, r *http.Request) {
	rot, ok := a.rotation(w, r, principalOf(r))
	if !ok {
		return
	}
	approvals, err := a.d.Store.Approvals(r.Context(), rot.ID)
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	type approvalView struct {
		Gate     string `json:"gate"`
		Approver string `json:"approver"`
		Verdict  string `json:"verdict"`
		Via      string `json:"via"`
		At       string `json:"at"`
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

// command reads a command's body and checks that its principal may take
// action on the rotation's key; it returns the rotation id and the actor.
func (a *admin) command(w http.ResponseWriter, r *http.Request, action auth.Action, body any, named func() string) (string, string, bool) {
	rot, actor, ok := a.commandFor(w, r, func(*rotator.Rotation) auth.Action { return action }, body, named)
	if !ok {
		return "", "", false
	}
	return rot.ID, actor, true
}

// commandFor is command with the action depending on the rotation, which
// it returns.
func (a *admin) commandFor(w http.ResponseWriter, r *http.Request, actionOf func(*rotator.Rotation) auth.Action, body any, named func() string) (*rotator.Rotation, string, bool) {
	if err := decodeBody(r, body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, "", false
	}
	if !a.printable(w, body) {
		return nil, "", false
	}
	p := principalOf(r)
	actor, ok := a.actor(w, p, named())
	if !ok {
		return nil, "", false
	}
	rot, ok := a.rotation(w, r, p)
	if !ok || !a.allow(w, p, actionOf(rot), rot.Key) {
		return nil, "", false
	}
	return rot, actor, true
}

// rotation reads the rotation the path names. One of a key p may not read
// is answered 404 exactly like one that does not exist: the answer reveals
// neither its existence nor its key.
func (a *admin) rotation(w http.ResponseWriter, r *http.Request, p *auth.Principal) (*rotator.Rotation, bool) {
	id := r.PathValue("id")
	rot, err := a.d.Store.GetRotation(r.Context(), id)
	if err != nil {
		a.d.fail(w, r, rotationSubject(id), err)
		return nil, false
	}
	if !p.Can(auth.ActRead, a.key(rot.Key)) {
		a.d.Logger.Info("admin api: rotation out of the principal's scope", "path", r.URL.Path, "principal", p.ID, "key", rot.Key)
		rotationNotFound(w, id)
		return nil, false
	}
	return rot, true
}

func (a *admin) decide(v rotator.Verdict) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b actorBody
		rot, actor, ok := a.commandFor(w, r, decideAction, &b, func() string { return b.Actor })
		if !ok {
			return
		}
		req := a.decision(r, actor, b.Comment)
		req.RotationID, req.Verdict = rot.ID, v
		req.Responder = principalOf(r).Can(auth.ActEmergency, a.key(rot.Key))
		rot, err := a.d.Engine.Decide(r.Context(), req)
		a.answer(w, r, rot, err)
	}
}

// decideAction is the permission a decision on rot needs: the containment
// gate of a contained emergency is a responder's (docs/CONFIGURATION.md,
// breaker), every other gate an approver's.
func decideAction(rot *rotator.Rotation) auth.Action {
	if g, ok := rotator.PendingGate(rot); ok && rotator.Containment(rot, g) {
		return auth.ActEmergency
	}
	return auth.ActDecide
}

// decision is who decides, through which channel and with which token
// (and the people behind it: the engine counts a token's decisions as
// theirs too, and audits them).
func (a *admin) decision(r *http.Request, actor, comment string) rotator.ApproveRequest {
	p := principalOf(r)
	return rotator.ApproveRequest{Approver: actor, Via: via(p), Comment: comment, TokenID: p.TokenID, TokenCreator: a.d.Directory.Canonical(p.TokenCreator),
		TokenChain: a.chain(p)}
}

// chain is the people behind p's token, by the names the directory knows
// them by today.
func (a *admin) chain(p *auth.Principal) []string {
	out := make([]string, 0, len(p.TokenChain))
	for _, c := range p.TokenChain {
		out = append(out, a.d.Directory.Canonical(c))
	}
	return out
}

func (a *admin) cancel(w http.ResponseWriter, r *http.Request) {
	var b actorBody
	id, actor, ok := a.command(w, r, auth.ActCancel, &b, func() string { return b.Actor })
	if !ok {
		return
	}
	rot, err := a.d.Engine.Cancel(r.Context(), id, actor, b.Reason)
	a.answer(w, r, rot, err)
}

func (a *admin) retry(w http.ResponseWriter, r *http.Request) {
	var b actorBody
	id, actor, ok := a.command(w, r, auth.ActRetry, &b, func() string { return b.Actor })
	if !ok {
		return
	}
	rot, err := a.d.Engine.Retry(r.Context(), id, actor)
	a.answer(w, r, rot, err)
}

func (a *admin) confirm(w http.ResponseWriter, r *http.Request) {
	var b struct {
		actorBody
		// Force takes the confirmation although the probe says the old
		// credential still authenticates (audited as verified: forced).
		Force bool `json:"force"`
	}
	id, actor, ok := a.command(w, r, auth.ActConfirm, &b, func() string { return b.Actor })
	if !ok {
		return
	}
	rot, err := a.d.Engine.ConfirmRevoked(r.Context(), rotator.ConfirmRequest{RotationID: id, Actor: actor, Force: b.Force})
	a.answer(w, r, rot, err)
}

func (a *admin) submit(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Actor string `json:"actor"`
		Value string `json:"secret"`
	}
	id, actor, ok := a.command(w, r, auth.ActSubmit, &b, func() string { return b.Actor })
	if !ok {
		return
	}
	sec := rotator.NewSecret(b.Value)
	b.Value = ""
	if sec.IsZero() {
		writeError(w, http.StatusBadRequest, "secret is required")
		return
	}
	rot, err := a.d.Engine.Submit(r.Context(), id, actor, sec)
	if err != nil && statusOf(err) == http.StatusInternalServerError && rot != nil {
		// The store's text stays in the log.
		a.d.Logger.Error("admin api: submit", "rotation", rot.ID, "err", err)
		writeError(w, http.StatusUnprocessableEntity, "the secret was not taken (the daemon's log has the details); submit it again")
		return
	}
	a.answer(w, r, rot, err)
}

func (a *admin) answer(w http.ResponseWriter, r *http.Request, rot *rotator.Rotation, err error) {
	if err != nil {
		a.d.fail(w, r, "", err)
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
		a.d.fail(w, r, "audit: ", err)
		return
	}
	views := make([]AuditView, 0, len(evs))
	p := principalOf(r)
	for _, e := range evs {
		if p.Can(auth.ActRead, a.key(e.Key)) {
			views = append(views, ViewAudit(e))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": views})
}

func (a *admin) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, principalOf(r), auth.ActRead, "") {
		return
	}
	problems, err := a.d.Store.VerifyAudit(r.Context())
	if err != nil {
		a.d.fail(w, r, "verify audit: ", err)
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
