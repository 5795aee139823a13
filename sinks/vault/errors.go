package vault

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
)

// classify turns a failed Vault request into an error the engine can act
// on. It never wraps the client's error: its text is rebuilt from the
// status and Vault's messages, which are dropped if they contain any of the
// values sent in the request.
func classify(what string, err error, sent ...string) error {
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		return rotator.HTTPStatusError(what, re.StatusCode, safeDetail(re.Errors, sent))
	case errors.Is(err, context.DeadlineExceeded):
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, context.DeadlineExceeded))
	case errors.Is(err, context.Canceled):
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, context.Canceled))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Transport failures (refused, reset, timed out): the inner error
		// names addresses and syscalls, never a body.
		return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %s", what, redact(ue.Err.Error(), sent)))
	}
	return rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: request failed: %s", what, redact(err.Error(), sent)))
}

// safeDetail joins Vault's error messages for an error text.
func safeDetail(msgs []string, sent []string) string {
	var parts []string
	for _, m := range msgs {
		m = strings.Join(strings.Fields(strings.ReplaceAll(m, "*", " ")), " ")
		if m != "" && m != "1 error occurred:" {
			parts = append(parts, strings.TrimPrefix(m, "1 error occurred: "))
		}
	}
	return redact(strings.Join(parts, "; "), sent)
}

// redact withholds text that contains a value we sent, and shortens it.
func redact(text string, sent []string) string {
	for _, v := range sent {
		if v != "" && strings.Contains(text, v) {
			return "(detail withheld: it echoes the request)"
		}
	}
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return text
}

// errCAS is a lost check-and-set: the caller re-reads and redoes its step.
var errCAS = errors.New("check-and-set did not match the current version")

// isCASMismatch reports Vault's check-and-set refusal: someone wrote a new
// version since we read.
func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 {
		return false
	}
	for _, m := range re.Errors {
		if strings.Contains(m, "check-and-set") {
			return true
		}
	}
	return false
}

// isStatus reports an HTTP status from Vault.
func isStatus(err error, status int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// notManaged refuses a secret rekey does not own.
func notManaged(ref string) error {
	return rotator.PermanentReason(rotator.ReasonNotManaged,
		fmt.Errorf("vault: %s: %w (no custom metadata %s=%s; set adopt: true to take it over)", ref, rotator.ErrNotManaged, markerKey, markerValue))
}
