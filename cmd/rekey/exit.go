package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// Exit codes scripts can rely on: the one table, documented in README.md
// ("Exit codes"), used by every verb in both modes.
const (
	exitOK       = 0
	exitError    = 1 // operational failure (daemon unreachable, store, network…), or no store where the configuration says
	exitUsage    = 2 // bad flags or arguments, bad or missing configuration, missing credential
	exitRefused  = 3 // refused: not allowed (401/403), wrong state, active rotation, self-approval
	exitNotFound = 4 // unknown key or rotation
	exitAudit    = 5 // audit verification found tampering
	exitOutcome  = 6 // rotate --wait: the rotation ended failed, denied, cancelled (rolled back) or expired
	exitExposed  = 7 // report: a finding matched a live credential
)

// usageError marks bad flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// configError marks a configuration that cannot be used (missing file,
// unreadable, invalid).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// apiError is an error answer of the admin API (remote, or in process in
// break-glass mode).
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var (
	errAuditTampered = errors.New("audit trail verification failed")
	// errUnsuccessful: rotate --wait saw the rotation end in a terminal
	// phase other than done.
	errUnsuccessful = errors.New("the rotation did not complete")
	// errLiveMatch: report found at least one live credential among the
	// findings (the rotations are started; CI should fail the build).
	errLiveMatch = errors.New("a finding matched a live credential")
	errRefused   = errors.New("refused")
)

// classify maps an error to its exit code and a stable kind for -o json.
func classify(err error) (int, string) {
	var ue usageError
	var ce config.Errors
	var cfe configError
	var ae *apiError
	switch {
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.As(err, &ce), errors.As(err, &cfe):
		return exitUsage, "configuration"
	case errors.As(err, &ae):
		return classifyStatus(ae.status)
	case errors.Is(err, errAuditTampered):
		return exitAudit, "audit_tampered"
	case errors.Is(err, errUnsuccessful):
		return exitOutcome, "unsuccessful"
	case errors.Is(err, errLiveMatch):
		return exitExposed, "live_match"
	case errors.Is(err, rotator.ErrNotFound):
		return exitNotFound, "not_found"
	case errors.Is(err, errRefused):
		return exitRefused, "refused"
	}
	return exitError, "error"
}

func classifyStatus(status int) (int, string) {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return exitUsage, "usage"
	case http.StatusUnauthorized:
		return exitRefused, "unauthenticated"
	case http.StatusForbidden:
		return exitRefused, "forbidden"
	case http.StatusNotFound:
		return exitNotFound, "not_found"
	case http.StatusConflict, http.StatusUnprocessableEntity:
		return exitRefused, "refused"
	}
	return exitError, "error"
}

// fail prints err (a JSON object on stderr under -o json) and returns its
// exit code.
func (c *cli) fail(err error) int {
	code, kind := classify(err)
	if c.output == "json" {
		b, _ := json.Marshal(map[string]any{"error": err.Error(), "code": code, "kind": kind})
		fmt.Fprintln(c.stderr, string(b))
		return code
	}
	fmt.Fprintln(c.stderr, "rekey: "+err.Error())
	return code
}
