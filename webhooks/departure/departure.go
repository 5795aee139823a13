// Package departure is the inbound departure webhook,
// POST /v1/events/departure: an HR system (or an admin's script) holding the
// shared secret reports that a person left, signed the Standard Webhooks
// way. The handler authenticates the raw body before parsing it, hands the
// departure to the engine — which rotates the keys the person owned, staged
// when another owner remains and at once otherwise — and answers 202 with
// the keys it affected only once the engine has durably recorded it.
//
// Body (at least one of email and user_id):
//
//	{"email": "ana@example.com", "user_id": "U024BE7LH", "actor": "workday"}
//
// The rotations a departure starts are requested by the authenticated
// sender, departure:<webhook name>; "actor" is what the sender claims and is
// kept only as audit detail (it is not authenticated, so it can neither
// request a rotation nor keep a person from approving one).
//
// Answers: 202 {"accepted":true,"duplicate":bool,"staged":[…],"emergency":[…],
// "rotations":[…]}; 400 malformed body, or a user_id or email that names
// one of rekey's own actors (scheduler, rekey, admin, a kind:name form such
// as exposure:github, or what reads as one: internal/reserved); 401 bad signature or timestamp; 405;
// 409 an exact replay of an already received signed message; 413 body over
// 1 MiB; 415 not JSON; 503 the engine could not record it (retry).
// "duplicate" is true for a retry of the same webhook id, and for a
// departure of someone already reported departed (which acts on no key).
package departure

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/reserved"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Route is where the app mounts the handler.
const Route = "POST /v1/events/departure"

// ReplayNamespace is the ReplayGuard namespace of signed attempts.
const ReplayNamespace = "departure"

// Limits on the fields.
const (
	maxEmailLen = 254 // RFC 5321 path limit
	maxFieldLen = 200
)

// Handler serves the departure webhook.
type Handler struct {
	name   string // the webhook's name: departures are by departure:<name>
	auth   inbound.Signed
	intake rotator.Intake
	log    *slog.Logger
	now    func() time.Time // seam for tests
}

// New resolves the signing secret (so a missing or weak one fails at start)
// and builds the handler. name is the webhook's configured name, which the
// departures it receives act under. A nil logger discards.
func New(cfg Config, name string, intake rotator.Intake, guard rotator.ReplayGuard, logger *slog.Logger) (*Handler, error) {
	auth, logger, err := inbound.NewSigned(ReplayNamespace, cfg, intake, guard, logger)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("departure webhook: a name is required (departures act as departure:<name>)")
	}
	return &Handler{name: name, auth: auth, intake: intake, log: logger, now: time.Now}, nil
}

// response is the 202 answer. The sender is an authenticated HR system,
// which may learn the names of the keys the departure affects.
type response struct {
	Accepted  bool     `json:"accepted"`
	Duplicate bool     `json:"duplicate"`
	Staged    []string `json:"staged"`
	Emergency []string `json:"emergency"`
	Rotations []string `json:"rotations"`
	// Waiting: keys whose rotation in flight minted before the departure;
	// each rotates again once that one ends.
	Waiting []string `json:"waiting"`
}

// ServeHTTP authenticates, parses, claims the signed attempt, records the
// departure with the engine, then answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	msg, body, ok := h.auth.Authenticate(w, r, now)
	if !ok {
		return
	}
	rep, err := parseReport(body)
	if err != nil {
		h.log.WarnContext(r.Context(), "refused a malformed departure report", "webhook_id", msg.ID, "err", err)
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := inbound.Detach(r)
	defer cancel()
	if !h.auth.Claim(ctx, w, msg, now) {
		return
	}
	rep.ID = msg.ID
	rep.Via = h.name
	rep.ReceivedAt = now
	res, err := h.intake.ReportDeparture(ctx, rep)
	if err != nil {
		h.log.ErrorContext(ctx, "engine could not record a departure", "webhook_id", msg.ID, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the departure could not be recorded; retry later")
		return
	}
	h.log.InfoContext(ctx, "departure accepted", "webhook_id", msg.ID, "email", rep.Email, "user_id", rep.UserID,
		"claimed_actor", rep.Actor, "staged", res.Staged, "emergency", res.Emergency, "duplicate", res.Duplicate)
	httpx.WriteJSON(w, http.StatusAccepted, response{
		Accepted:  true,
		Duplicate: res.Duplicate,
		Staged:    nonNil(res.Staged),
		Emergency: nonNil(res.Emergency),
		Rotations: nonNil(res.Rotations),
		Waiting:   nonNil(res.Waiting),
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// request is the JSON body.
type request struct {
	Email  string `json:"email"`
	UserID string `json:"user_id"`
	Actor  string `json:"actor"`
}

// parseReport decodes and checks an authenticated body.
func parseReport(body []byte) (rotator.DepartureReport, error) {
	var req request
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return rotator.DepartureReport{}, err
	}
	rep := rotator.DepartureReport{
		Email:  strings.TrimSpace(req.Email),
		UserID: strings.TrimSpace(req.UserID),
		Actor:  strings.TrimSpace(req.Actor),
	}
	var errs []error
	if rep.Email == "" && rep.UserID == "" {
		errs = append(errs, errors.New("email or user_id: at least one is required"))
	}
	if rep.Email != "" {
		local, domain, ok := strings.Cut(rep.Email, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(rep.Email, " \t\r\n<>,;") || len(rep.Email) > maxEmailLen {
			errs = append(errs, errors.New("email: not an email address"))
		}
	}
	// A departure names a person, never one of rekey's own actors: one
	// naming "scheduler", "admin" or "exposure:github" would make rekey
	// refuse its own scheduled rotations, bootstrap token or leak response.
	for _, f := range []struct{ name, value string }{{"email", rep.Email}, {"user_id", rep.UserID}} {
		if f.value == "" {
			continue
		}
		if err := reserved.Check(f.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	errs = append(errs, textcheck.CheckText(textcheck.Field{Name: "email", Value: rep.Email},
		textcheck.Field{Name: "user_id", Value: rep.UserID, Max: maxFieldLen}, textcheck.Field{Name: "actor", Value: rep.Actor, Max: maxFieldLen}))
	if err := errors.Join(errs...); err != nil {
		return rotator.DepartureReport{}, err
	}
	return rep, nil
}

var _ http.Handler = (*Handler)(nil)
