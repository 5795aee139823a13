package slack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	slackgo "github.com/slack-go/slack"
)

// InteractionsRoute is where app mounts Interactions on the daemon's listener.
const InteractionsRoute = "POST /v1/slack/interactions"

// Limits of inbound interaction requests.
const (
	MaxBodyBytes = 1 << 20 // 1 MiB
	// replayWindow is how long a request id is remembered: Slack's
	// signatures are accepted up to 5 minutes either side of now.
	replayWindow = 10 * time.Minute
	// ReplayNamespace is the ReplayGuard namespace of Slack requests.
	ReplayNamespace = "slack"
)

// Interactions is the http.Handler for POST /v1/slack/interactions. It
// checks Slack's v0 signature over the raw body before parsing anything
// (401 for a bad, missing or stale signature, or a replayed request),
// limits the body to 1 MiB, answers 200 at once and handles the click in
// the background. Without a signing secret (or in mode socket) it answers
// 404.
func (n *Notifier) Interactions() http.Handler {
	return http.HandlerFunc(n.serveInteraction)
}

func (n *Notifier) serveInteraction(w http.ResponseWriter, r *http.Request) {
	if n.cfg.Mode != ModeHTTP || n.signingSecret.IsZero() {
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
	sv, err := slackgo.NewSecretsVerifier(r.Header, n.signingSecret.Reveal())
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		reason := "bad signature"
		if errors.Is(err, slackgo.ErrExpiredTimestamp) {
			reason = "stale timestamp"
		}
		n.logger.Warn("slack: interaction rejected", "reason", reason, "remote", r.RemoteAddr)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	ts := r.Header.Get("X-Slack-Request-Timestamp")
	sig := r.Header.Get("X-Slack-Signature")
	until := time.Now().Add(replayWindow)
	if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
		until = time.Unix(sec, 0).Add(replayWindow)
	}
	replay, err := n.guard.Seen(r.Context(), ReplayNamespace, ts+":"+sig, until)
	if err != nil {
		n.logger.Error("slack: replay guard unavailable; interaction refused", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if replay {
		n.logger.Warn("slack: replayed interaction rejected", "remote", r.RemoteAddr)
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
	if !n.dispatchClick(cb) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}
