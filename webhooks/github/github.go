// Package github receives GitHub secret scanning reports in both of the
// formats GitHub sends them:
//
//   - the partner program: GitHub POSTs a JSON array of {token, type, url,
//     source} matches, signed with ECDSA P-256 (Github-Public-Key-Identifier
//     and Github-Public-Key-Signature headers) by a key it publishes at
//     keys_url; the answer is GitHub's false-positive feedback format, a
//     JSON array of {token_hash, token_type, label};
//   - the secret_scanning_alert repository or organization webhook,
//     HMAC-signed (X-Hub-Signature-256) with a shared secret; its payload
//     does not carry the secret, so the handler reads it from the alert's
//     REST endpoint with a token.
//
// Both authenticate the raw body before parsing it, hash a token at once
// (only its fingerprint goes further) and hand reports to the engine,
// answering 2xx only once the engine has durably recorded them.
//
// Routes: Route serves both formats, telling them apart by their signature
// headers, as DESIGN.md lists a single GitHub endpoint; AlertRoute serves
// only the alert webhook, for operators who prefer a dedicated URL.
package github

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
)

// Routes where the app mounts the handler.
const (
	Route      = "POST /v1/events/exposure/github" // ServeHTTP: both formats
	AlertRoute = "POST /v1/events/github/alert"    // Alert(): the webhook only
)

// Via values of the reports.
const (
	ViaPartner = "github-partner"
	ViaAlert   = "github-alert"
)

// Source of every report.
const Source = "github"

// Request headers.
const (
	headerKeyID        = "Github-Public-Key-Identifier"
	headerKeySignature = "Github-Public-Key-Signature"
	headerEvent        = "X-GitHub-Event"
	headerDelivery     = "X-GitHub-Delivery"
	headerHubSignature = "X-Hub-Signature-256"
)

const userAgent = "rekey"

// Handler serves GitHub's secret scanning formats.
type Handler struct {
	intake rotator.Intake
	guard  rotator.ReplayGuard
	log    *slog.Logger
	now    func() time.Time // seam for tests

	keys *keyRing // nil unless the partner format is enabled

	// The alert webhook; zero unless enabled.
	alertOn    bool
	hubKey     []byte
	apiBase    string
	token      rotator.Secret
	actions    map[string]bool
	client     *http.Client
	deliveries time.Duration // how long a processed delivery id is remembered
}

// deliveryMemory is how long the ReplayGuard remembers a processed
// X-GitHub-Delivery; GitHub lets a delivery be redelivered for 3 days.
const deliveryMemory = 7 * 24 * time.Hour

// New resolves the secret and token (so a missing one fails at start) and
// builds the handler; it does not contact GitHub. A nil logger discards.
func New(cfg Config, intake rotator.Intake, guard rotator.ReplayGuard, logger *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("github webhook: %w", err)
	}
	if intake == nil || guard == nil {
		return nil, errors.New("github webhook: intake and replay guard are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("webhook", "github")
	token, err := cfg.Token().Resolve()
	if err != nil {
		return nil, fmt.Errorf("github webhook: token: %w", err)
	}
	client := &http.Client{Timeout: cfg.Timeout}
	h := &Handler{intake: intake, guard: guard, log: logger, now: time.Now, client: client, deliveries: deliveryMemory}
	if cfg.Partner {
		h.keys = &keyRing{
			url: cfg.KeysURL, token: token, client: client,
			interval: cfg.KeysRefreshInterval, maxAge: cfg.KeysMaxAge,
			now: func() time.Time { return h.now() }, log: logger,
		}
	}
	if cfg.Alert {
		// GitHub signs with the secret exactly as typed in its settings.
		secret, err := cfg.Secret().Resolve()
		if err != nil {
			return nil, fmt.Errorf("github webhook: secret: %w", err)
		}
		if n := len(secret.Reveal()); n < stdwebhooks.MinKeyLen {
			return nil, fmt.Errorf("github webhook: secret: the secret is %d bytes; use at least %d random characters", n, stdwebhooks.MinKeyLen)
		}
		h.alertOn = true
		h.hubKey = []byte(secret.Reveal())
		h.apiBase = strings.TrimRight(cfg.APIBaseURL, "/")
		h.token = token
		h.actions = map[string]bool{}
		for _, a := range cfg.Actions {
			h.actions[a] = true
		}
	}
	return h, nil
}

// ServeHTTP serves both formats at Route, choosing by signature headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Header.Get(headerHubSignature) != "" || r.Header.Get(headerEvent) != "":
		h.serveAlert(w, r)
	case r.Header.Get(headerKeySignature) != "" || r.Header.Get(headerKeyID) != "":
		h.servePartner(w, r)
	default:
		if !httpx.AllowMethod(w, r, http.MethodPost) {
			return
		}
		h.log.WarnContext(r.Context(), "refused an unsigned request", "remote", r.RemoteAddr)
		httpx.WriteError(w, http.StatusUnauthorized, "missing GitHub signature headers")
	}
}

// Partner serves the partner-program format only.
func (h *Handler) Partner() http.Handler { return http.HandlerFunc(h.servePartner) }

// Alert serves the secret_scanning_alert webhook only.
func (h *Handler) Alert() http.Handler { return http.HandlerFunc(h.serveAlert) }

var _ http.Handler = (*Handler)(nil)
