// Package webapi holds what rekey's HTTP-speaking issuers share: an HTTP
// client that never follows redirects (so credentials never travel to
// another URL), a bounded response reader, status code sets as configured in
// YAML, the classification of upstream answers into rotator reasons (with
// Retry-After carried on the error), a dotted-path JSON extractor and a
// helper that prefixes validation errors with their field path. Errors
// built here name the request and the status, never a header or a body.
package webapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/rekeyhq/rekey/internal/httpx"
	"github.com/rekeyhq/rekey/rotator"
)

// MaxBody is the largest response body read; larger answers are an error.
const MaxBody = 1 << 20

// NewClient returns an HTTP client with the given timeout that trusts the
// system roots, or only the PEM certificates in caFile when it is set, and
// never follows redirects (a 3xx is returned as the answer).
func NewClient(timeout time.Duration, caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("ca_file: read %s: %v", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// Response is an upstream answer, body read in full (at most MaxBody).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send performs req with c. what names the adapter and the reference
// ("http: revoke key_123"); a transport failure comes back as a transient
// error naming the method and URL (user info redacted) and the cause, never
// a header. The caller decides what the status means.
func Send(c *http.Client, req *http.Request, what string) (Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		if ctxErr := req.Context().Err(); ctxErr != nil && errors.Is(cause, ctxErr) {
			cause = ctxErr
		}
		return Response{}, rotator.WithReason(rotator.ReasonTransient,
			fmt.Errorf("%s: %s %s: %w", what, req.Method, Redact(req.URL), cause))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return Response{}, rotator.WithReason(rotator.ReasonTransient,
			fmt.Errorf("%s: %s %s: HTTP %d: read body: %w", what, req.Method, Redact(req.URL), resp.StatusCode, plainCause(err)))
	}
	if len(body) > MaxBody {
		return Response{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: %s %s: HTTP %d: response body larger than %d bytes", what, req.Method, Redact(req.URL), resp.StatusCode, MaxBody))
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// plainCause drops the request context from a read error.
func plainCause(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errors.New(err.Error())
}

// Redact prints u without its user info password.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}

// StatusError is an upstream answer with an unexpected status. Its text is
// "<what>: <method> <url>: HTTP <status> <text>[: <hint>][ (retry after 1s)]".
type StatusError struct {
	What   string
	Method string
	URL    string
	Status int
	Hint   string
	// After is the upstream's Retry-After, zero when it sent none.
	After time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %s %s: HTTP %d", e.What, e.Method, e.URL, e.Status)
	if t := http.StatusText(e.Status); t != "" {
		msg += " " + t
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	if e.After > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.After)
	}
	return msg
}

// RetryAfter is the delay the upstream asked for, zero when none; the
// engine owns backoff and may honour it.
func (e *StatusError) RetryAfter() time.Duration { return e.After }

// Classify turns an unexpected status into a classified error: a status in
// retry is retryable (rate_limited for 429, transient otherwise); 401 and
// 403 are permanent with reason auth; anything else is permanent with reason
// invalid. Retry-After is parsed from h into the error.
func Classify(e *StatusError, h http.Header, retry StatusSet, now time.Time) error {
	e.After = RetryAfter(h, now)
	switch {
	case retry.Has(e.Status) && e.Status == http.StatusTooManyRequests:
		return rotator.WithReason(rotator.ReasonRateLimited, e)
	case retry.Has(e.Status):
		return rotator.WithReason(rotator.ReasonTransient, e)
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return rotator.PermanentReason(rotator.ReasonAuth, e)
	}
	return rotator.PermanentReason(rotator.ReasonInvalid, e)
}

// AdminHint is the hint of an admin API answer: what a status usually means.
func AdminHint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "the admin credentials were rejected"
	case http.StatusForbidden:
		return "the admin credentials lack a permission"
	case http.StatusNotFound:
		return "check the configured path"
	}
	return ""
}

// DefaultRetry is the retry set unless configured: 429 and every 5xx.
var DefaultRetry = MustParse(429, "5xx")

// RetryAfter parses a Retry-After header (delay-seconds or an HTTP date) into
// a delay from now; zero when absent, unparsable or in the past. It is
// internal/httpx.RetryAfter, the one parser every adapter shares.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	return httpx.RetryAfter(h, now)
}
