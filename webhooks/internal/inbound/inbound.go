// Package inbound is the part the Standard-Webhooks-signed endpoints
// (webhooks/exposure, webhooks/departure) share: it authenticates a request
// — POST, JSON, at most 1 MiB, a valid signature over the raw body within
// the timestamp tolerance — before the handler parses anything, and claims
// the signed attempt in the ReplayGuard so that a replayed message is
// refused. Every failure is answered here, with a message that never quotes
// the request.
package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
)

// IntakeTimeout bounds the engine calls of one request. They run detached
// from the request's context: once a report is authenticated, recording it
// is worth finishing even if the sender hangs up.
const IntakeTimeout = 15 * time.Second

// Detach returns a context for the engine calls of r.
func Detach(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), IntakeTimeout)
}

// Key resolves a signing secret and derives its key, refusing keys shorter
// than stdwebhooks.MinKeyLen. field is the config field's base name.
func Key(ref secretref.Ref, field string) (stdwebhooks.Key, error) {
	s, err := ref.Resolve()
	if err != nil {
		return stdwebhooks.Key{}, fmt.Errorf("%s: %w", field, err)
	}
	k, err := stdwebhooks.ParseKey(s.Reveal())
	if err != nil {
		return stdwebhooks.Key{}, fmt.Errorf("%s: %w", field, err)
	}
	if k.Len() < stdwebhooks.MinKeyLen {
		return stdwebhooks.Key{}, fmt.Errorf("%s: the secret is %d bytes; use at least %d random bytes (whsec_ + base64 of 24 to 64 bytes is best)",
			field, k.Len(), stdwebhooks.MinKeyLen)
	}
	return k, nil
}

// Signed authenticates the requests of one Standard-Webhooks endpoint.
type Signed struct {
	Key       stdwebhooks.Key
	Tolerance time.Duration
	Guard     rotator.ReplayGuard
	Namespace string // ReplayGuard namespace
	Log       *slog.Logger
}

// Authenticate checks method, media type, size and signature, in that
// order, and returns the verified message and raw body. On failure it has
// answered (405, 415, 413, 400 or 401) and returns ok=false; nothing was
// parsed or recorded.
func (s *Signed) Authenticate(w http.ResponseWriter, r *http.Request, now time.Time) (msg stdwebhooks.Message, body []byte, ok bool) {
	msg, body, _, ok = s.AuthenticateAny(w, r, now, []stdwebhooks.Key{s.Key})
	return msg, body, ok
}

// AuthenticateAny is Authenticate for an endpoint with several senders,
// each with its own key: it reports which of keys signed the request.
func (s *Signed) AuthenticateAny(w http.ResponseWriter, r *http.Request, now time.Time, keys []stdwebhooks.Key) (msg stdwebhooks.Message, body []byte, signer int, ok bool) {
	if !httpx.AllowMethod(w, r, http.MethodPost) || !httpx.RequireMediaType(w, r, "application/json") {
		return msg, nil, -1, false
	}
	body, ok = httpx.ReadBodyOrFail(w, r, httpx.MaxBody)
	if !ok {
		s.Log.WarnContext(r.Context(), "refused a request body", "remote", r.RemoteAddr, "content_length", r.ContentLength)
		return msg, nil, -1, false
	}
	var err error
	for i, k := range keys {
		if msg, err = stdwebhooks.VerifyRequest(r.Header, body, now, s.Tolerance, k); err == nil {
			return msg, body, i, true
		}
		if errors.Is(err, stdwebhooks.ErrTimestamp) {
			break
		}
	}
	if err == nil {
		err = errors.New("no key configured")
	}
	reason := "invalid signature"
	if errors.Is(err, stdwebhooks.ErrTimestamp) {
		reason = "webhook-timestamp outside the tolerance"
	}
	s.Log.WarnContext(r.Context(), "refused an unauthenticated request", "remote", r.RemoteAddr, "reason", err.Error())
	w.Header().Set("WWW-Authenticate", `Standard-Webhooks`)
	httpx.WriteError(w, http.StatusUnauthorized, reason)
	return stdwebhooks.Message{}, nil, -1, false
}

// Claim records msg's signed attempt (webhook-id + webhook-timestamp) in
// the ReplayGuard until now + 2×tolerance — past that the timestamp check
// refuses it anyway. A compliant sender signs every attempt afresh, so an
// attempt seen before is a replay: 409, and the caller must stop. A guard
// failure answers 503. Retries of a message (same webhook-id, new
// timestamp) pass: the engine de-duplicates them by report ID.
func (s *Signed) Claim(ctx context.Context, w http.ResponseWriter, msg stdwebhooks.Message, now time.Time) bool {
	seen, err := s.Guard.Seen(ctx, s.Namespace, msg.AttemptID(), now.Add(2*s.Tolerance))
	switch {
	case err != nil:
		s.Log.ErrorContext(ctx, "replay guard failed", "webhook_id", msg.ID, "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, "cannot record the message now; retry later")
		return false
	case seen:
		s.Log.WarnContext(ctx, "refused a replayed message", "webhook_id", msg.ID, "webhook_timestamp", msg.RawTimestamp)
		httpx.WriteError(w, http.StatusConflict,
			"this signed message was already received; a retry must carry a fresh webhook-timestamp and signature")
		return false
	}
	return true
}
