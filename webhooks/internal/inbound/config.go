package inbound

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
)

// Bounds of SignedConfig.Tolerance.
const (
	minTolerance = time.Second
	maxTolerance = time.Hour
)

// SignedConfig configures a Standard-Webhooks-signed endpoint (the generic
// exposure and the departure webhooks share it).
type SignedConfig struct {
	// SecretEnv / SecretFile name the shared signing secret (exactly one):
	// "whsec_<base64>" as Standard Webhooks issues them, or any other value
	// used as the raw HMAC key; at least 16 bytes either way.
	SecretEnv  string `koanf:"secret_env"`
	SecretFile string `koanf:"secret_file"`
	// Tolerance is how far webhook-timestamp may be from the receiver's
	// clock, in the past or the future (1s..1h).
	Tolerance time.Duration `koanf:"tolerance"`
}

// DefaultSignedConfig returns the defaults, applied before the user's YAML.
func DefaultSignedConfig() SignedConfig {
	return SignedConfig{Tolerance: stdwebhooks.DefaultTolerance}
}

// Secret is the reference to the signing secret.
func (c SignedConfig) Secret() secretref.Ref {
	return secretref.Ref{Env: c.SecretEnv, File: c.SecretFile}
}

// Validate reports every problem, each prefixed with its field name.
func (c SignedConfig) Validate() error {
	var errs []error
	if err := c.Secret().Validate("secret", true); err != nil {
		errs = append(errs, err)
	}
	if c.Tolerance < minTolerance || c.Tolerance > maxTolerance {
		errs = append(errs, fmt.Errorf("tolerance: must be between %s and %s", minTolerance, maxTolerance))
	}
	return errors.Join(errs...)
}

// NewSigned checks cfg, resolves its signing secret (so a missing or weak
// one fails at start) and returns the authenticator and the logger of a
// Standard-Webhooks-signed endpoint named name (also its replay namespace).
// A nil logger discards.
func NewSigned(name string, cfg SignedConfig, intake rotator.Intake, guard rotator.ReplayGuard, logger *slog.Logger) (Signed, *slog.Logger, error) {
	if err := cfg.Validate(); err != nil {
		return Signed{}, nil, fmt.Errorf("%s webhook: %w", name, err)
	}
	if intake == nil || guard == nil {
		return Signed{}, nil, fmt.Errorf("%s webhook: intake and replay guard are required", name)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("webhook", name)
	key, err := Key(cfg.Secret(), "secret")
	if err != nil {
		return Signed{}, nil, fmt.Errorf("%s webhook: %w", name, err)
	}
	return Signed{Key: key, Tolerance: cfg.Tolerance, Guard: guard, Namespace: name, Log: logger}, logger, nil
}
