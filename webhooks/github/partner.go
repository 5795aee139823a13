package github

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/redact"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Labels of GitHub's false-positive feedback.
const (
	labelTrue  = "true_positive"
	labelFalse = "false_positive"
)

// match is one element of a partner-program POST.
type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// feedback is one element of the answer, in the format GitHub documents
// for partners' false-positive feedback: the token only as its SHA-256
// (token_hash, the same hex SHA-256 rekey calls a fingerprint).
type feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// servePartner handles a partner-program POST: authenticate (key lookup,
// ECDSA over the raw body), parse, record each match with the engine, then
// answer 200 with the feedback array. A match is labelled true_positive
// when it is a live credential rekey manages, false_positive otherwise.
//
// Statuses: 200; 400 malformed body; 401 missing or invalid signature or
// unknown key identifier; 405; 413; 415; 503 GitHub's key list could not be
// fetched, or the engine could not record a match (GitHub retries; matches
// recorded before de-duplicate by report ID).
func (h *Handler) servePartner(w http.ResponseWriter, r *http.Request) {
	if !httpx.AllowMethod(w, r, http.MethodPost) {
		return
	}
	if h.keys == nil {
		httpx.WriteError(w, http.StatusNotFound, "the partner-program format is not enabled")
		return
	}
	if !httpx.RequireMediaType(w, r, "application/json") {
		return
	}
	now := h.now()
	body, ok := httpx.ReadBodyOrFail(w, r, httpx.MaxBody)
	if !ok {
		return
	}
	keyID, sig := r.Header.Get(headerKeyID), r.Header.Get(headerKeySignature)
	if keyID == "" || sig == "" {
		h.unauthorized(w, r, "missing "+headerKeyID+" or "+headerKeySignature)
		return
	}
	if !validKeyID(keyID) {
		h.unauthorized(w, r, "malformed "+headerKeyID)
		return
	}
	pub, err := h.keys.lookup(r.Context(), keyID)
	switch {
	case errors.Is(err, errUnknownKey):
		h.unauthorized(w, r, "unknown "+headerKeyID)
		return
	case err != nil:
		httpx.WriteError(w, http.StatusServiceUnavailable, "cannot verify the signature now; retry later")
		return
	}
	if !verifySignature(pub, body, sig) {
		h.unauthorized(w, r, "invalid "+headerKeySignature)
		return
	}
	matches, err := parsePartner(body)
	if err != nil {
		h.log.WarnContext(r.Context(), "refused a malformed partner report", "err", err)
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := inbound.Detach(r)
	defer cancel()
	bodySum := sha256.Sum256(body)
	out := make([]feedback, 0, len(matches))
	for i, m := range matches {
		fp := rotator.Fingerprint(m.Token)
		rep := rotator.ExposureReport{
			ID:          partnerReportID(bodySum, i, fp),
			Via:         ViaPartner,
			Source:      Source,
			URL:         m.URL,
			Fingerprint: fp,
			Type:        m.Type,
			ReceivedAt:  now,
		}
		res, err := h.intake.ReportExposure(ctx, rep)
		if err != nil {
			h.log.ErrorContext(ctx, "engine could not record a partner report", "id", rep.ID,
				"fingerprint", rotator.ShortFingerprint(fp), "err", err)
			httpx.WriteError(w, http.StatusServiceUnavailable, "the report could not be recorded; retry later")
			return
		}
		h.log.InfoContext(ctx, "partner report accepted", "id", rep.ID, "fingerprint", rotator.ShortFingerprint(fp),
			"known", res.Known, "key", res.Key, "rotation", res.RotationID, "duplicate", res.Duplicate,
			"type", m.Type, "source", m.Source, "url", m.URL)
		label := labelFalse
		if res.Known {
			label = labelTrue
		}
		out = append(out, feedback{TokenHash: fp, TokenType: m.Type, Label: label})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, reason string) {
	h.log.WarnContext(r.Context(), "refused an unauthenticated request", "remote", r.RemoteAddr, "reason", reason)
	httpx.WriteError(w, http.StatusUnauthorized, reason)
}

// partnerReportID derives a report ID from the signed body and the match's
// position and fingerprint: a retried delivery of the same body gets the
// same IDs — whether GitHub re-sends the signature or signs again (ECDSA
// signatures differ each time) — so the engine de-duplicates it.
func partnerReportID(bodySum [32]byte, index int, fingerprint string) string {
	h := sha256.New()
	h.Write([]byte("github-partner\x00"))
	h.Write(bodySum[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(index))
	h.Write(n[:])
	h.Write([]byte(fingerprint))
	return ViaPartner + ":" + hex.EncodeToString(h.Sum(nil))
}

// parsePartner decodes the match array. Unknown members are ignored (GitHub
// may add some); a match without a token is an error. Errors never quote a
// token.
func parsePartner(body []byte) ([]match, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, errors.New("body must be a JSON array of matches")
	}
	out := make([]match, 0, len(raw))
	for i, e := range raw {
		var m match
		if err := json.Unmarshal(e, &m); err != nil {
			return nil, fmt.Errorf("[%d]: must be an object with string token, type, url and source", i)
		}
		if m.Token == "" {
			return nil, fmt.Errorf("[%d].token: required", i)
		}
		// A location quoting the token must not carry it further.
		m.URL, m.Type, m.Source = redact.Token(m.URL, m.Token), redact.Token(m.Type, m.Token), redact.Token(m.Source, m.Token)
		at := "[" + strconv.Itoa(i) + "]."
		if err := textcheck.CheckText(textcheck.Field{Name: at + "url", Value: m.URL, Max: 4096},
			textcheck.Field{Name: at + "type", Value: m.Type, Max: 200}, textcheck.Field{Name: at + "source", Value: m.Source, Max: 200}); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
