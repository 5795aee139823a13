package departure

import (
	"errors"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

// Bounds of Config.Tolerance.
const (
	minTolerance = time.Second
	maxTolerance = time.Hour
)

// Config of the departure webhook.
//
//	webhooks:
//	  - name: hr
//	    type: departure
//	    secret_env: REKEY_DEPARTURE_SECRET   # or secret_file; required
//	    tolerance: 5m                       # default: accepted clock skew, both ways
type Config struct {
	// SecretEnv / SecretFile name the shared signing secret (exactly one):
	// "whsec_<base64>" as Standard Webhooks issues them, or any other value
	// used as the raw HMAC key; at least 16 bytes either way.
	SecretEnv  string `koanf:"secret_env"`
	SecretFile string `koanf:"secret_file"`
	// Tolerance is how far webhook-timestamp may be from the receiver's
	// clock, in the past or the future (1s..1h).
	Tolerance time.Duration `koanf:"tolerance"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{Tolerance: stdwebhooks.DefaultTolerance}
}

// Secret is the reference to the signing secret.
func (c Config) Secret() secretref.Ref {
	return secretref.Ref{Env: c.SecretEnv, File: c.SecretFile}
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if err := c.Secret().Validate("secret", true); err != nil {
		errs = append(errs, err)
	}
	if c.Tolerance < minTolerance || c.Tolerance > maxTolerance {
		errs = append(errs, fmt.Errorf("tolerance: must be between %s and %s", minTolerance, maxTolerance))
	}
	return errors.Join(errs...)
}
