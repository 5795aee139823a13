package app

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/webhooks/scanners"
)

// decommission revokes every live credential of a key and removes it from
// its sinks, without a replacement: the responder's, like
// POST /v1/keys/{key}/rotate {"trigger": "decommission"}.
func (a *admin) decommission(w http.ResponseWriter, r *http.Request) {
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
	name := r.PathValue("key")
	if !a.allow(w, p, auth.ActDecommission, name) { // scope first: no key enumeration
		return
	}
	if _, ok := a.d.Engine.Key(name); !ok {
		writeError(w, http.StatusNotFound, "unknown key "+strconv.Quote(name))
		return
	}
	req, err := TriggerFor(name, "emergency", "decommission", b.Reason, actor, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Behind = a.chain(p)
	rot, err := a.d.Engine.Trigger(r.Context(), req)
	if err != nil {
		a.triggerFailed(w, r, p, rot, err)
		return
	}
	writeJSON(w, http.StatusCreated, ViewRotation(rot))
}

// ReportResult is one finding of a scanner report and what it matched.
type ReportResult struct {
	Source     string `json:"source"`
	URL        string `json:"url"`
	Known      bool   `json:"known"`
	Key        string `json:"key,omitempty"`
	Generation int    `json:"generation,omitempty"`
	RotationID string `json:"rotation_id,omitempty"`
	Duplicate  bool   `json:"duplicate,omitempty"`
	// Live: the matched credential is still not revoked (a finding
	// reported before may match one its emergency has revoked since).
	Live bool `json:"live"`
}

// report takes a leak scanner's output (POST /v1/report?format=gitleaks,
// the scanner's file as the body): every token is fingerprinted on
// reading and matched against live credentials; a match starts an
// emergency rotation. The responder's, for every key (a finding may match
// any key). The body is never logged or stored.
func (a *admin) report(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, principalOf(r), auth.ActReport, "") {
		return
	}
	reports, err := scanners.Parse(r.URL.Query().Get("format"), r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "report too large")
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []ReportResult{}
	known, live := 0, 0
	for _, rep := range reports {
		rep.Via, rep.Reporter = "cli", principalOf(r).ID // via: what breaker.exempt names
		res, err := a.d.Engine.ReportExposure(r.Context(), rep)
		if err != nil {
			a.d.fail(w, r, "report "+rep.URL+": ", err)
			return
		}
		if res.Known {
			known++
		}
		if res.Live {
			live++
		}
		out = append(out, ReportResult{rep.Source, rep.URL, res.Known, res.Key, res.Generation, res.RotationID, res.Duplicate, res.Live})
	}
	writeJSON(w, http.StatusOK, map[string]any{"findings": len(reports), "known": known, "live": live, "results": out})
}
