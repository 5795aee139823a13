package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// DeliveryNamespace is the ReplayGuard namespace of processed alert
// events, keyed by alertKey (not by the unsigned X-GitHub-Delivery id).
const DeliveryNamespace = "github-delivery"

// Media types GitHub webhooks are sent as.
const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// alertEvent is the part of a secret_scanning_alert payload rekey reads.
type alertEvent struct {
	Action string `json:"action"`
	Alert  struct {
		Number     int64  `json:"number"`
		HTMLURL    string `json:"html_url"`
		SecretType string `json:"secret_type"`
	} `json:"alert"`
	Repository struct {
		Name     string `json:"name"`
		FullName string `json:"full_name"`
		Owner    struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
}

// alertAnswer is the 202 answer to an alert.
type alertAnswer struct {
	Accepted  bool `json:"accepted"`
	Known     bool `json:"known"`
	Duplicate bool `json:"duplicate"`
}

// serveAlert handles a secret_scanning_alert webhook delivery:
// authenticate (HMAC over the raw body), filter by event and action, read
// the alert's secret from the REST API, record the report with the engine
// (its ID is alertKey, derived from the signed body, so a redelivery — or
// a replay under a new, unsigned X-GitHub-Delivery header — de-duplicates
// there), then remember the event in the ReplayGuard.
//
// Statuses: 202 recorded; 200 ping; 204 another event or action, ignored;
// 400 malformed payload or delivery id; 401 missing or invalid signature;
// 404 not enabled; 405; 413; 415; 503 the alert could not be read from
// GitHub or the engine could not record it (redeliver once fixed).
func (h *Handler) serveAlert(w http.ResponseWriter, r *http.Request) {
	if !httpx.AllowMethod(w, r, http.MethodPost) {
		return
	}
	if !h.alertOn {
		httpx.WriteError(w, http.StatusNotFound, "the secret_scanning_alert webhook is not enabled")
		return
	}
	if !httpx.RequireMediaType(w, r, mediaJSON, mediaForm) {
		return
	}
	now := h.now()
	body, ok := httpx.ReadBodyOrFail(w, r, httpx.MaxBody)
	if !ok {
		return
	}
	if !verifyHubSignature(h.hubKey, body, r.Header.Get(headerHubSignature)) {
		h.unauthorized(w, r, "missing or invalid "+headerHubSignature)
		return
	}
	switch ev := r.Header.Get(headerEvent); ev {
	case "secret_scanning_alert":
	case "ping":
		httpx.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	default:
		h.log.DebugContext(r.Context(), "ignored an event", "event", ev)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	delivery := r.Header.Get(headerDelivery)
	if !validKeyID(delivery) || len(delivery) > 128 {
		httpx.WriteError(w, http.StatusBadRequest, "missing or malformed "+headerDelivery)
		return
	}
	ev, err := parseAlertEvent(body, httpx.MediaType(r))
	if err != nil {
		h.log.WarnContext(r.Context(), "refused a malformed alert", "delivery", delivery, "err", err)
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !h.actions[ev.Action] {
		h.log.DebugContext(r.Context(), "ignored an alert action", "delivery", delivery, "action", ev.Action)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	owner, repo, _ := ev.repo() // checked by parseAlertEvent
	key := alertKey(owner, repo, ev.Alert.Number, ev.Action)
	ctx, cancel := inbound.Detach(r)
	defer cancel()
	log := h.log.With("delivery", delivery, "repository", owner+"/"+repo, "alert", ev.Alert.Number)
	details, secret, err := h.fetchAlert(ctx, owner, repo, ev.Alert.Number)
	if err != nil {
		log.ErrorContext(ctx, "could not read the alert's secret from GitHub", "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "could not read the alert from GitHub's API; redeliver later")
		return
	}
	rep := rotator.ExposureReport{
		ID:          ViaAlert + ":" + key,
		Via:         ViaAlert,
		Source:      Source,
		URL:         firstNonEmpty(details.HTMLURL, ev.Alert.HTMLURL),
		Fingerprint: secret.Fingerprint(),
		Type:        firstNonEmpty(details.SecretType, ev.Alert.SecretType),
		ReceivedAt:  now,
	}
	res, err := h.intake.ReportExposure(ctx, rep)
	if err != nil {
		log.ErrorContext(ctx, "engine could not record an alert", "fingerprint", rotator.ShortFingerprint(rep.Fingerprint), "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the report could not be recorded; redeliver later")
		return
	}
	// Remembered only now that the engine holds the report: a delivery that
	// failed above must be processed when GitHub redelivers it.
	seen, err := h.guard.Seen(ctx, DeliveryNamespace, key, now.Add(h.deliveries))
	if err != nil {
		log.WarnContext(ctx, "could not remember the delivery (the report is recorded)", "err", err)
	}
	log.InfoContext(ctx, "alert accepted", "action", ev.Action, "fingerprint", rotator.ShortFingerprint(rep.Fingerprint),
		"known", res.Known, "key", res.Key, "rotation", res.RotationID, "duplicate", res.Duplicate || seen, "url", rep.URL)
	httpx.WriteJSON(w, http.StatusAccepted, alertAnswer{Accepted: true, Known: res.Known, Duplicate: res.Duplicate || seen})
}

// alertKey names one alert event from what the signature covers: the
// repository (case-folded, as GitHub names are), the alert number and the
// action. The X-GitHub-Delivery header is not signed: keyed on it, a
// captured body replayed with a fresh header id counted as a new report.
func alertKey(owner, repo string, number int64, action string) string {
	return fmt.Sprintf("%s/%s#%d:%s", strings.ToLower(owner), strings.ToLower(repo), number, action)
}

// verifyHubSignature checks X-Hub-Signature-256: "sha256=" + the hex
// HMAC-SHA256 of the raw body with the webhook secret.
func verifyHubSignature(key, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// parseAlertEvent decodes an authenticated payload, sent as JSON or as a
// form with the JSON in its payload field.
func parseAlertEvent(body []byte, mediaType string) (alertEvent, error) {
	if mediaType == mediaForm {
		q, err := url.ParseQuery(string(body))
		if err != nil || q.Get("payload") == "" {
			return alertEvent{}, errors.New("form body without a payload field")
		}
		body = []byte(q.Get("payload"))
	}
	var ev alertEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return alertEvent{}, errors.New("payload is not a secret_scanning_alert JSON object")
	}
	if ev.Action == "" {
		return alertEvent{}, errors.New("action: required")
	}
	if ev.Alert.Number <= 0 {
		return alertEvent{}, errors.New("alert.number: must be a positive integer")
	}
	if _, _, err := ev.repo(); err != nil {
		return alertEvent{}, err
	}
	// Shown by rekey show and in notifications: no terminal escapes.
	if err := textcheck.CheckText(textcheck.Field{Name: "alert.html_url", Value: ev.Alert.HTMLURL, Max: 4096},
		textcheck.Field{Name: "alert.secret_type", Value: ev.Alert.SecretType, Max: 200}); err != nil {
		return alertEvent{}, err
	}
	return ev, nil
}

// repo returns the repository's owner and name, checked to be GitHub
// names (they become path segments of an API URL).
func (ev alertEvent) repo() (owner, name string, err error) {
	owner, name = ev.Repository.Owner.Login, ev.Repository.Name
	if o, n, ok := strings.Cut(ev.Repository.FullName, "/"); ok && (owner == "" || name == "") {
		owner, name = o, n
	}
	if !validName(owner) || !validName(name) || name == "." || name == ".." {
		return "", "", fmt.Errorf("repository: owner and name must be GitHub names")
	}
	return owner, name, nil
}

// validName: 1 to 100 letters, digits, '-', '_' or '.', as GitHub (and
// Enterprise Managed Users' "_shortcode" logins) allow.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
