// Package manual is the issuer of keys that only a person can mint or
// revoke, in a dashboard with no admin API (Kubeadapt documents none). The
// engine holds such a rotation and notifies the rendered instructions; the
// person mints the key named in them and submits its secret, which Accept
// checks against a pattern and, when configured, a verify probe before rekey
// delivers it; revocation likewise waits for the person's confirmation.
// Accept never repeats a refused value in its error.
package manual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
	"github.com/rekeyhq/rekey/rotator"
)

// ErrHumanRequired is wrapped by Mint and Revoke: only a person can do it.
var ErrHumanRequired = errors.New("a person must do this in the dashboard")

// Issuer is a manual issuer.
type Issuer struct {
	log       *slog.Logger
	pattern   *regexp.Regexp // nil: any non-empty value
	mint      *template.Template
	revoke    *template.Template
	emergency *template.Template
	dashboard *template.Template // nil: no deep link configured
	idFrom    string
	probe     *probe.Probe // nil: none configured
}

// New checks cfg and builds the issuer.
func New(cfg Config, logger *slog.Logger) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	is := &Issuer{log: logger.With("issuer", "manual"), idFrom: cfg.IDFrom}
	if is.idFrom == "" {
		is.idFrom = IDFromName
	}
	if cfg.Pattern != "" {
		is.pattern = regexp.MustCompile(cfg.Pattern) // validated
	}
	is.mint, _ = tmpl.Parse("mint_instructions", or(cfg.MintInstructions, DefaultMintInstructions))
	is.revoke, _ = tmpl.Parse("revoke_instructions", or(cfg.RevokeInstructions, DefaultRevokeInstructions))
	is.emergency, _ = tmpl.Parse("emergency_instructions", or(cfg.EmergencyInstructions, DefaultEmergencyInstructions))
	if cfg.DashboardURL != "" {
		is.dashboard, _ = tmpl.Parse("dashboard_url", cfg.DashboardURL)
	}
	if cfg.Verify != nil {
		p, err := probe.New(*cfg.Verify, "manual", nil)
		if err != nil {
			return nil, err
		}
		is.probe = p
	}
	return is, nil
}

// Mint refuses: the engine calls MintInstructions and Accept instead.
func (is *Issuer) Mint(_ context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("manual: mint %s: %w: the key must be minted by a person and submitted", req.Name, ErrHumanRequired))
}

// Revoke refuses: the engine notifies RevokeInstructions and holds the
// rotation until a person confirms.
func (is *Issuer) Revoke(_ context.Context, ref rotator.CredentialRef) error {
	return rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("manual: revoke %s: %w: a person must revoke the key and confirm", ref.Name, ErrHumanRequired))
}

// Accept checks a submitted secret: surrounding white space is dropped, the
// rest must match the pattern and pass the probe when one is configured. The
// issuer id is the name asked for (or the fingerprint, per id_from). A
// refusal is permanent and never quotes the value.
func (is *Issuer) Accept(ctx context.Context, req rotator.MintRequest, secret rotator.Secret) (rotator.Minted, error) {
	v := strings.TrimSpace(secret.Reveal())
	what := "manual: submitted secret for " + req.Name
	switch {
	case v == "":
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, errors.New(what+" is empty"))
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s contains control characters or invalid UTF-8 (length %d)", what, len(v)))
	case is.pattern != nil && !is.pattern.MatchString(v):
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s does not match the pattern %s (length %d)", what, is.pattern, utf8.RuneCountInString(v)))
	}
	s := rotator.NewSecret(v)
	if is.probe != nil {
		if err := is.probe.Check(ctx, req.Key, s, req.Params); err != nil {
			return rotator.Minted{}, fmt.Errorf("%s refused by the verify probe: %w", what, err)
		}
	}
	id := req.Name
	if is.idFrom == IDFromFingerprint {
		id = "sha256:" + rotator.ShortFingerprint(s.Fingerprint())
	}
	is.log.InfoContext(ctx, "accepted submitted credential", "key", req.Key, "name", req.Name, "id", id,
		"fingerprint", rotator.ShortFingerprint(s.Fingerprint()))
	return rotator.Minted{ID: id, Secret: s}, nil
}

// Verify probes secret with the configured verify request. Without one it
// returns a permanent error: a key with verify: true needs a probe.
func (is *Issuer) Verify(ctx context.Context, key string, secret rotator.Secret, params map[string]any) error {
	if is.probe == nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, errors.New("manual: verify "+key+": no verify probe configured for this issuer"))
	}
	return is.probe.Check(ctx, key, secret, params)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// VerifyConfigured reports whether a verify probe is configured; the engine
// skips verification (with an audit note) when it is not.
func (is *Issuer) VerifyConfigured() bool { return is.probe != nil }

// CheckRevoked probes a credential a person says they revoked: revoked
// only when the probe was refused with 401 (unknown or invalid key); a
// probe that passes means it still authenticates; anything else (403, 5xx,
// no answer) cannot tell. Without a probe it cannot tell either.
func (is *Issuer) CheckRevoked(ctx context.Context, key string, old rotator.Secret, params map[string]any) (bool, error) {
	if is.probe == nil {
		return false, errors.New("manual: no verify probe configured")
	}
	err := is.probe.Check(ctx, key, old, params)
	if err == nil {
		return false, nil
	}
	var se *webapi.StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		return true, nil
	}
	return false, err
}

// invalidProbeKey is what CheckProbe presents: no issuer accepts it.
const invalidProbeKey = "rekey-doctor-not-a-key-0000000000000000"

// CheckProbe is a read-only pre-flight call (rekey doctor): the verify
// probe with an obviously invalid key must answer 401 — the endpoint is
// reachable and tells a revoked or unknown key apart, which submit and
// confirm rely on. No real key is used. Without a probe there is nothing
// to call (configured false).
func (is *Issuer) CheckProbe(ctx context.Context, key string, params map[string]any) (configured bool, err error) {
	if is.probe == nil {
		return false, nil
	}
	err = is.probe.Check(ctx, key, rotator.NewSecret(invalidProbeKey), params)
	var se *webapi.StatusError
	switch {
	case err == nil:
		return true, errors.New("manual: the verify probe accepted an obviously invalid key: it cannot tell a revoked key from a live one, so confirm would be refused or wrongly verified")
	case errors.As(err, &se) && se.Status == http.StatusUnauthorized:
		return true, nil
	}
	return true, fmt.Errorf("manual: the verify probe did not answer 401 to an invalid key: %w", err)
}

var (
	_ rotator.Issuer              = (*Issuer)(nil)
	_ rotator.HumanIssuer         = (*Issuer)(nil)
	_ rotator.Verifier            = (*Issuer)(nil)
	_ rotator.EmergencyInstructor = (*Issuer)(nil)
	_ rotator.RevokeChecker       = (*Issuer)(nil)
)
