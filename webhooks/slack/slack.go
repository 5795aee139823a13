// Package slack is the Slack interactivity webhook: it receives clicks on
// the Approve / Deny buttons the Slack notifier posts, signed over HTTP
// (POST /v1/slack/interactions, ServeHTTP) or over Socket Mode (Start),
// checks the clicker against the configured approvers and hands the
// decision to the engine's Decider; the notifier then shows it on the
// rotation's message. Requests are authenticated with Slack's v0 signature
// over the raw body before anything is parsed, replay protected and size
// limited; Slack is answered at once and the click handled in the
// background, every refusal being an ephemeral reply to the clicker.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// Route is where the app mounts the handler.
const Route = "POST /v1/slack/interactions"

// Limits of inbound interaction requests.
const (
	MaxBodyBytes = 1 << 20 // 1 MiB
	// replayWindow is how long a request id is remembered: Slack's
	// signatures are accepted up to 5 minutes either side of now.
	replayWindow = 10 * time.Minute
	// ReplayNamespace is the ReplayGuard namespace of Slack requests.
	ReplayNamespace = "slack"
)

// API is the part of Slack's Web API a click needs, called with the bot
// token of the notifier that posted the buttons (slack-go's *slack.Client
// implements it).
type API interface {
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slackgo.GetUserGroupMembersOption) ([]string, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slackgo.GetUserInfoOption) (*slackgo.User, error)
	SendMessageContext(ctx context.Context, channelID string, options ...slackgo.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slackgo.MsgOption) (string, error)
}

// Messages shows a decision the engine recorded on the rotation's message,
// in place of its buttons (the Slack notifier implements it). at is the
// message that was clicked, used when the notifier lost track of it.
// MessageOf locates the message the notifier posted for a rotation: a click
// counts only from there (see bound).
type Messages interface {
	ShowDecision(ctx context.Context, r *rotator.Rotation, at slackapproval.Message, d slackapproval.Decision) error
	MessageOf(ctx context.Context, rotationID string) (slackapproval.Message, bool, error)
}

// Handler receives Slack clicks.
type Handler struct {
	cfg       Config
	api       API
	messages  Messages
	decider   rotator.Decider
	rotations rotator.RotationReader
	guard     rotator.ReplayGuard
	log       *slog.Logger

	signingSecret rotator.Secret
	appToken      rotator.Secret

	// background click handling and the Socket Mode loop
	wg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
	closing   chan struct{}
	closeOnce sync.Once
	started   bool
}

// New checks cfg, reads the signing secret (mode http) or the app-level
// token (mode socket) once, and builds the handler. api and messages come
// from the Slack notifier, decider is the engine, rotations and guard the
// store; all are required. A nil logger discards.
func New(cfg Config, api API, messages Messages, decider rotator.Decider, rotations rotator.RotationReader,
	guard rotator.ReplayGuard, logger *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack webhook: %w", err)
	}
	if api == nil || messages == nil || decider == nil || rotations == nil || guard == nil {
		return nil, errors.New("slack webhook: the Slack client, the notifier's messages, the decider, the rotation reader and the replay guard are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, api: api, messages: messages, decider: decider, rotations: rotations, guard: guard,
		log: logger.With("webhook", "slack"), closing: make(chan struct{})}
	var err error
	switch cfg.Mode {
	case ModeHTTP:
		if h.signingSecret, err = cfg.SigningSecret().Resolve(); err != nil {
			return nil, fmt.Errorf("slack webhook: signing_secret: %w", err)
		}
	case ModeSocket:
		if h.appToken, err = cfg.AppToken().Resolve(); err != nil {
			return nil, fmt.Errorf("slack webhook: app_token: %w", err)
		}
	}
	return h, nil
}

// ServeHTTP serves POST /v1/slack/interactions: it checks Slack's v0
// signature over the raw body before parsing anything (401 for a bad,
// missing or stale signature, or a replayed request), limits the body to
// 1 MiB, answers 200 at once and handles the click in the background. In
// mode socket it answers 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Mode != ModeHTTP {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	sv, err := slackgo.NewSecretsVerifier(r.Header, h.signingSecret.Reveal())
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		reason := "bad signature"
		if errors.Is(err, slackgo.ErrExpiredTimestamp) {
			reason = "stale timestamp"
		}
		h.log.Warn("slack: interaction rejected", "reason", reason, "remote", r.RemoteAddr)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	ts := r.Header.Get("X-Slack-Request-Timestamp")
	sig := r.Header.Get("X-Slack-Signature")
	until := time.Now().Add(replayWindow)
	if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
		until = time.Unix(sec, 0).Add(replayWindow)
	}
	replay, err := h.guard.Seen(r.Context(), ReplayNamespace, ts+":"+sig, until)
	if err != nil {
		h.log.Error("slack: replay guard unavailable; interaction refused", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if replay {
		h.log.Warn("slack: replayed interaction rejected", "remote", r.RemoteAddr)
		http.Error(w, "request already seen", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "payload missing", http.StatusBadRequest)
		return
	}
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "payload is not valid JSON", http.StatusBadRequest)
		return
	}
	if !h.dispatchClick(cb) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Close stops the Socket Mode connection, refuses new clicks and waits for
// the clicks being handled (each bounded by twice the configured timeout).
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		close(h.closing)
		h.mu.Unlock()
	})
	h.wg.Wait()
	return nil
}

// goAsync runs f in the background, tracked by the WaitGroup; false once
// closed.
func (h *Handler) goAsync(f func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		f()
	}()
	return true
}

var (
	_ http.Handler = (*Handler)(nil)
	_ API          = (*slackgo.Client)(nil)
)
