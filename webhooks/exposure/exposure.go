// Package exposure is the generic inbound exposure webhook,
// POST /v1/events/exposure: any scanner, SIEM or person holding the shared
// secret reports that a token was seen where it must not be, signed the
// Standard Webhooks way. The handler authenticates the raw body before
// parsing it, hashes a reported token at once (only its fingerprint goes
// further), hands the report to the engine, and answers 202 only once the
// engine has durably recorded it.
//
// Body (exactly one of token and sha256):
//
//	{"token": "ka_live_…", "sha256": "<hex>", "source": "splunk",
//	 "url": "https://…", "key": "optional rekey key name", "type": "kubeadapt_api_key"}
//
// Answers: 202 {"accepted":true,"known":bool,"duplicate":bool}; 400
// malformed body; 401 bad signature or timestamp; 405; 409 an exact replay
// of an already received signed message; 413 body over 1 MiB; 415 not JSON;
// 503 the engine could not record it (retry). An exposure of a token rekey
// does not know is not an error: 202 with known=false.
package exposure

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/redact"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Route is where the app mounts the handler.
const Route = "POST /v1/events/exposure"

// Via is the ExposureReport.Via of reports from this webhook.
const Via = "generic"

// ReplayNamespace is the ReplayGuard namespace of signed attempts.
const ReplayNamespace = "exposure"

// Limits on the descriptive fields.
const (
	maxURLLen   = 4096
	maxLabelLen = 200
)

// Handler serves the generic exposure webhook.
type Handler struct {
	auth    inbound.Signed
	sources []source
	keys    []stdwebhooks.Key // keys[i] signs for sources[i]
	intake  rotator.Intake
	log     *slog.Logger
	now     func() time.Time // seam for tests
}

// source is one sender: its name (the reports' Via), trust and budget.
type source struct {
	name  string
	trust SourceTrust
	limit *rate.Limiter
}

// New resolves every source's signing secret (so a missing or weak one
// fails at start) and builds the handler. A nil logger discards.
func New(cfg Config, intake rotator.Intake, guard rotator.ReplayGuard, logger *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("exposure webhook: %w", err)
	}
	if intake == nil || guard == nil {
		return nil, errors.New("exposure webhook: intake and replay guard are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("webhook", ReplayNamespace)
	h := &Handler{intake: intake, log: logger, now: time.Now,
		auth: inbound.Signed{Tolerance: cfg.Tolerance, Guard: guard, Namespace: ReplayNamespace, Log: logger}}
	add := func(name string, ref secretref.Ref, field string, t SourceTrust) error {
		k, err := inbound.Key(ref, field)
		if err != nil {
			return fmt.Errorf("exposure webhook: %w", err)
		}
		if t.RatePerMinute == 0 {
			t.RatePerMinute = DefaultRate
		}
		if t.OnMatch == "" {
			t.OnMatch = "revoke"
		}
		h.keys = append(h.keys, k)
		h.sources = append(h.sources, source{name: name, trust: t,
			limit: rate.NewLimiter(rate.Every(time.Minute/time.Duration(t.RatePerMinute)), t.RatePerMinute)})
		return nil
	}
	if cfg.SecretEnv != "" || cfg.SecretFile != "" {
		if err := add(Via, cfg.Secret(), "secret", cfg.SourceTrust); err != nil {
			return nil, err
		}
	}
	for i, s := range cfg.Sources {
		if err := add(s.Name, secretref.Ref{Env: s.SecretEnv, File: s.SecretFile}, fmt.Sprintf("sources[%d].secret", i), s.SourceTrust); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// response is the 202 answer. It names no key: the sender learns only
// whether its report matched a live credential.
type response struct {
	Accepted  bool `json:"accepted"`
	Known     bool `json:"known"`
	Duplicate bool `json:"duplicate"`
}

// ServeHTTP authenticates, parses, claims the signed attempt, records the
// report with the engine, then answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	msg, body, signer, ok := h.auth.AuthenticateAny(w, r, now, h.keys)
	if !ok {
		return
	}
	src := h.sources[signer]
	if res := src.limit.ReserveN(now, 1); !res.OK() || res.DelayFrom(now) > 0 {
		delay := res.DelayFrom(now)
		res.CancelAt(now)
		h.log.WarnContext(r.Context(), "refused a report over its source's rate", "source", src.name, "rate_per_minute", src.trust.RatePerMinute)
		w.Header().Set("Retry-After", strconv.Itoa(int(delay.Seconds())+1))
		httpx.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("source %s sends more than %d reports a minute; retry later", src.name, src.trust.RatePerMinute))
		return
	}
	rep, err := parseReport(body)
	if err != nil {
		h.log.WarnContext(r.Context(), "refused a malformed exposure report", "webhook_id", msg.ID, "source", src.name, "err", err)
		httpx.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !rep.Proof && !src.trust.Fingerprints {
		h.log.WarnContext(r.Context(), "refused a fingerprint-only report from a source not trusted for them", "webhook_id", msg.ID, "source", src.name)
		httpx.WriteError(w, http.StatusForbidden, fmt.Sprintf("source %s must send the token itself (proof of possession); sha256-only reports need fingerprints: true on the source", src.name))
		return
	}
	rep.Via = src.name
	rep.ContainOnly = src.trust.OnMatch == "contain"
	ctx, cancel := inbound.Detach(r)
	defer cancel()
	if !h.auth.Claim(ctx, w, msg, now) {
		return
	}
	rep.ID = msg.ID
	rep.ReceivedAt = now
	res, err := h.intake.ReportExposure(ctx, rep)
	if err != nil {
		h.log.ErrorContext(ctx, "engine could not record an exposure report", "webhook_id", msg.ID,
			"fingerprint", rotator.ShortFingerprint(rep.Fingerprint), "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "the report could not be recorded; retry later")
		return
	}
	h.log.InfoContext(ctx, "exposure report accepted", "webhook_id", msg.ID,
		"fingerprint", rotator.ShortFingerprint(rep.Fingerprint), "known", res.Known, "key", res.Key,
		"rotation", res.RotationID, "duplicate", res.Duplicate, "source", rep.Source, "url", rep.URL)
	httpx.WriteJSON(w, http.StatusAccepted, response{Accepted: true, Known: res.Known, Duplicate: res.Duplicate})
}

// request is the JSON body.
type request struct {
	Token  string `json:"token"`
	SHA256 string `json:"sha256"`
	Source string `json:"source"`
	URL    string `json:"url"`
	Key    string `json:"key"`
	Type   string `json:"type"`
}

// parseReport decodes and checks an authenticated body. The token, if any,
// is hashed here and goes no further; errors never quote it.
func parseReport(body []byte) (rotator.ExposureReport, error) {
	var req request
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return rotator.ExposureReport{}, err
	}
	rep := rotator.ExposureReport{Via: Via, Source: req.Source, URL: req.URL, Type: req.Type, KeyHint: req.Key}
	switch {
	case req.Token != "" && req.SHA256 != "":
		return rotator.ExposureReport{}, errors.New("set only one of token and sha256")
	case req.Token != "":
		rep.Fingerprint = rotator.Fingerprint(req.Token)
		rep.Proof = true
	case req.SHA256 != "":
		fp := strings.ToLower(req.SHA256)
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
			return rotator.ExposureReport{}, errors.New("sha256: must be 64 hex characters")
		}
		rep.Fingerprint = fp
	default:
		return rotator.ExposureReport{}, errors.New("token or sha256: one is required")
	}
	if req.Token != "" {
		// A location that quotes the token (a log query, a URL with the
		// token in it) must not carry it into logs and the store.
		// Also URL-encoded or base64: internal/redact.
		for _, f := range []*string{&rep.Source, &rep.URL, &rep.Type, &rep.KeyHint} {
			*f = redact.Token(*f, req.Token)
		}
	}
	// Shown by rekey show and in notifications: no terminal escapes.
	if err := textcheck.CheckText(textcheck.Field{Name: "source", Value: rep.Source, Max: maxLabelLen},
		textcheck.Field{Name: "url", Value: rep.URL, Max: maxURLLen}, textcheck.Field{Name: "key", Value: rep.KeyHint, Max: maxLabelLen},
		textcheck.Field{Name: "type", Value: rep.Type, Max: maxLabelLen}); err != nil {
		return rotator.ExposureReport{}, err
	}
	return rep, nil
}

var _ http.Handler = (*Handler)(nil)
