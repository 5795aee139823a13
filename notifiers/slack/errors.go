package slack

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/rotator"
)

// RateLimitError is Slack's answer to a call made too often (HTTP 429 or the
// API error "ratelimited"). Classified errors wrap it with
// rotator.ReasonRateLimited; RetryAfter tells the dispatcher how long Slack
// asked to wait (zero when Slack did not say).
type RateLimitError struct {
	Method string
	Delay  time.Duration
}

func (e *RateLimitError) Error() string {
	if e.Delay > 0 {
		return fmt.Sprintf("slack: %s: rate limited, retry after %s", e.Method, e.Delay)
	}
	return fmt.Sprintf("slack: %s: rate limited", e.Method)
}

// RetryAfter is the delay Slack asked for.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Delay }

// permanentAPIErrors are Slack API error codes that no retry can fix: the
// token, the app's scopes or the channel must change first.
var permanentAPIErrors = map[string]rotator.Reason{
	"invalid_auth":           rotator.ReasonAuth,
	"not_authed":             rotator.ReasonAuth,
	"account_inactive":       rotator.ReasonAuth,
	"token_revoked":          rotator.ReasonAuth,
	"token_expired":          rotator.ReasonAuth,
	"no_permission":          rotator.ReasonAuth,
	"missing_scope":          rotator.ReasonAuth,
	"not_allowed_token_type": rotator.ReasonAuth,
	"ekm_access_denied":      rotator.ReasonAuth,
	"channel_not_found":      rotator.ReasonInvalid,
	"not_in_channel":         rotator.ReasonInvalid,
	"is_archived":            rotator.ReasonInvalid,
	"restricted_action":      rotator.ReasonInvalid,
	"msg_too_long":           rotator.ReasonInvalid,
	"invalid_blocks":         rotator.ReasonInvalid,
	"invalid_arguments":      rotator.ReasonInvalid,
	"cant_update_message":    rotator.ReasonInvalid,
	"edit_window_closed":     rotator.ReasonInvalid,
	"no_text":                rotator.ReasonInvalid,
}

// transientAPIErrors are Slack API error codes worth retrying.
var transientAPIErrors = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"team_added_to_org":   true,
}

// classify turns a slack-go error into a rekey error: rate limits and
// network/5xx failures are retryable (rate limits carry RetryAfter), auth,
// scope and channel errors permanent. what names the call ("chat.update
// C0123"); the text never holds a token (slack-go errors carry none, and a
// *url.Error shows only the API URL).
func classify(method, what string, err error) error {
	if err == nil {
		return nil
	}
	if rl, ok := errors.AsType[*slackgo.RateLimitedError](err); ok {
		return rotator.WithReason(rotator.ReasonRateLimited, fmt.Errorf("slack: %s: %w", what, &RateLimitError{Method: method, Delay: rl.RetryAfter}))
	}
	if sc, ok := errors.AsType[slackgo.StatusCodeError](err); ok {
		if sc.Code == http.StatusTooManyRequests {
			return rotator.WithReason(rotator.ReasonRateLimited, fmt.Errorf("slack: %s: %w", what, &RateLimitError{Method: method}))
		}
		return rotator.HTTPStatusError("slack: "+what, sc.Code, http.StatusText(sc.Code))
	}
	if api, ok := errors.AsType[slackgo.SlackErrorResponse](err); ok {
		code := api.Err
		switch {
		case code == "ratelimited" || code == "rate_limited":
			return rotator.WithReason(rotator.ReasonRateLimited, fmt.Errorf("slack: %s: %w", what, &RateLimitError{Method: method}))
		case transientAPIErrors[code]:
			return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("slack: %s: %s", what, code))
		}
		reason, ok := permanentAPIErrors[code]
		if !ok {
			reason = rotator.ReasonInvalid
		}
		msg := fmt.Errorf("slack: %s: %w", what, apiError(code))
		if code == "missing_scope" && api.Needed != "" {
			msg = fmt.Errorf("slack: %s: %w (needed %s)", what, apiError(code), api.Needed)
		}
		return rotator.PermanentReason(reason, msg)
	}
	// Transport failures: refused, reset, timeouts, a cancelled context.
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("slack: %s: %w", what, err))
}

// apiError is a Slack API error code ("channel_not_found").
type apiError string

func (e apiError) Error() string { return string(e) }

// stateError classifies a StateStore failure: the store may come back.
func stateError(what string, err error) error {
	return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("slack: state %s: %w", what, err))
}
