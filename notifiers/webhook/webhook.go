// Package webhook is the notifier that POSTs each rotation event as JSON
// (the stable schema of Payload) to a URL, signed the way Standard Webhooks
// specifies (webhook-id, webhook-timestamp and webhook-signature headers,
// HMAC-SHA256 over "id.timestamp.body"); receivers check requests with
// Verify. One Notify call is one delivery attempt: retries belong to the
// engine's notification dispatcher (durable outbox, backoff), so the
// notifier only classifies what went wrong — 429, 5xx and network failures
// are retryable (a Retry-After on 429/503 is carried on the error for the
// dispatcher to honour), redirects, other statuses and certificate
// failures permanent. Errors and logs never show the secret nor the URL's
// path, query or userinfo, which may carry tokens.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
)

// userAgent identifies rekey to receivers.
const userAgent = "rekey-webhook/1"

// Notifier POSTs events to one URL.
type Notifier struct {
	url     string
	display string // the URL as errors and logs may show it
	secret  secretref.Ref
	headers http.Header
	client  *http.Client
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time // seam for tests
}

// New checks cfg, reads the signing secret once to fail early, and builds
// the HTTP client (redirects are not followed: a signed event goes only
// where it is configured to go). A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(cfg.URL) // validated
	display := redactURL(u)
	if cfg.MaxAttempts != 0 {
		logger.Warn("webhook: max_attempts is deprecated and ignored: retries are owned by rekey's notification outbox "+
			"(backoff, up to 100 attempts, Retry-After honoured); remove it from the configuration",
			"url", display, "max_attempts", cfg.MaxAttempts)
	}
	secret, err := cfg.Secret().Resolve()
	if err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", display, err)
	}
	if _, err := stdwebhooks.ParseKey(secret.Reveal()); err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", display, err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhook: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhook: tls.ca_file: no PEM certificate in %s", cfg.TLS.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	headers := make(http.Header, len(cfg.Headers)+6)
	for k, v := range cfg.Headers {
		headers.Set(k, v)
	}
	headers.Set("Content-Type", "application/json")
	headers.Set("User-Agent", userAgent)
	return &Notifier{
		url:     cfg.URL,
		display: display,
		secret:  cfg.Secret(),
		headers: headers,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		timeout: cfg.Timeout,
		logger:  logger,
		now:     time.Now,
	}, nil
}

// Notify makes one signed POST of ev. It returns nil on a 2xx answer and
// otherwise a classified error (rotator.IsPermanent / rotator.ReasonOf) that
// tells the engine's dispatcher whether a later attempt may help; when the
// receiver sent Retry-After with a 429 or 503, the error's RetryAfter()
// says how long it asked to wait. The notifier never retries by itself:
// the dispatcher's durable outbox does, in order and across restarts.
func (n *Notifier) Notify(ctx context.Context, ev rotator.Event) error {
	// The secret is read on every call so that a rotated secret file takes
	// effect without a restart.
	secret, err := n.secret.Resolve()
	if err != nil {
		return fmt.Errorf("webhook %s: secret: %w", n.display, err)
	}
	id := ev.ID
	if id == "" {
		id = "msg_" + randomHex(12)
		n.logger.Warn("webhook: event without id; generated one", "kind", ev.Kind, "webhook_id", id)
	}
	p := NewPayload(ev)
	p.ID = id
	body, err := json.Marshal(p)
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInternal, fmt.Errorf("webhook %s: encode event %s: %w", n.display, id, err))
	}
	what := fmt.Sprintf("webhook: POST %s: event %s", n.display, id)
	ts := strconv.FormatInt(n.now().Unix(), 10)
	sig, err := Sign(secret.Reveal(), id, ts, body)
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, errors.Unwrap(err)))
	}
	actx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: build request", what))
	}
	req.Header = n.headers.Clone()
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	resp, err := n.client.Do(req)
	if err != nil {
		return classifyTransportError(what, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: HTTP %d: redirects are not followed", what, resp.StatusCode))
	}
	err = rotator.HTTPStatusError(what, resp.StatusCode, http.StatusText(resp.StatusCode))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		err = httpx.WithRetryAfter(err, httpx.RetryAfter(resp.Header, n.now()))
	}
	return err
}

// classifyTransportError strips the *url.Error (whose text holds the full
// URL) and classifies: certificate failures are permanent, anything else
// (refused, reset, timeout) transient.
func classifyTransportError(what string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
	}
	return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, err))
}

// redactURL keeps the scheme and host: path, query and userinfo may carry
// tokens (e.g. chat incoming-webhook URLs).
func redactURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		s += "/<redacted>"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var _ rotator.Notifier = (*Notifier)(nil)
