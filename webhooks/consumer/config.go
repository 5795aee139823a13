package consumer

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Config of the consumer attestation webhook.
//
//	webhooks:
//	  - name: consumers
//	    type: consumer
//	    secret_env: REKEY_CONSUMER_SECRET   # or secret_file; shared by the consumers
//	    tolerance: 5m                       # accepted clock skew, both ways
//	    rate_per_minute: 600                # attestations accepted per minute; 429 past it
//	    retention: 720h                     # consumers not heard from for longer are forgotten
//	    max_consumers_per_key: 1000         # a new consumer past it is refused (409)
//	    keys: "*"                           # the keys the shared secret may attest for
//	    senders:                            # optional: a secret per team, each for its keys
//	      - {name: payments, secret_env: REKEY_CONSUMER_SECRET_PAYMENTS, keys: "payments-*"}
type Config struct {
	inbound.SignedConfig `koanf:",squash"`
	RatePerMinute        int           `koanf:"rate_per_minute"`
	Retention            time.Duration `koanf:"retention"`
	MaxConsumersPerKey   int           `koanf:"max_consumers_per_key"`
	// Keys is the keys the top-level secret may attest for (path.Match
	// syntax; empty: every key).
	Keys string `koanf:"keys"`
	// Senders give each group of consumers its own secret, good for the
	// keys that match its pattern only: a consumer of one team's key can
	// neither attest for nor learn the names of another team's keys. With
	// senders the top-level secret is optional.
	Senders []Sender `koanf:"senders"`
}

// Sender is one group of consumers with its own signing secret.
type Sender struct {
	Name       string `koanf:"name"`
	SecretEnv  string `koanf:"secret_env"`
	SecretFile string `koanf:"secret_file"`
	// Keys is the keys it may attest for (path.Match syntax), required.
	Keys string `koanf:"keys"`
}

var senderName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// hasShared reports whether the top-level secret is configured.
func (c Config) hasShared() bool { return c.SecretEnv != "" || c.SecretFile != "" }

// Defaults.
const (
	DefaultRate         = 600
	DefaultRetention    = 30 * 24 * time.Hour
	DefaultMaxConsumers = 1000
)

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{SignedConfig: inbound.DefaultSignedConfig(), RatePerMinute: DefaultRate, Retention: DefaultRetention, MaxConsumersPerKey: DefaultMaxConsumers}
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if c.hasShared() || len(c.Senders) == 0 {
		errs = append(errs, c.SignedConfig.Validate())
	} else {
		t := c.SignedConfig
		t.SecretEnv = "placeholder" // the tolerance is still checked
		errs = append(errs, t.Validate())
	}
	if err := validPattern(c.Keys); err != nil {
		errs = append(errs, fmt.Errorf("keys: %w", err))
	}
	seen := map[string]bool{}
	for i, s := range c.Senders {
		p := fmt.Sprintf("senders[%d].", i)
		switch {
		case !senderName.MatchString(s.Name):
			errs = append(errs, fmt.Errorf("%sname: %q must be 1 to 63 lower-case letters, digits, - or _", p, s.Name))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("%sname: %q is used twice", p, s.Name))
		}
		seen[s.Name] = true
		if err := (secretref.Ref{Env: s.SecretEnv, File: s.SecretFile}).Validate(p+"secret", true); err != nil {
			errs = append(errs, err)
		}
		if s.Keys == "" {
			errs = append(errs, fmt.Errorf("%skeys: required (a pattern such as \"payments-*\"; \"*\" for every key)", p))
		} else if err := validPattern(s.Keys); err != nil {
			errs = append(errs, fmt.Errorf("%skeys: %w", p, err))
		}
	}
	if c.RatePerMinute < 1 || c.RatePerMinute > 100000 {
		errs = append(errs, fmt.Errorf("rate_per_minute: must be between 1 and 100000"))
	}
	if c.Retention < time.Minute {
		errs = append(errs, errors.New("retention: must be at least 1m"))
	}
	if c.MaxConsumersPerKey < 1 || c.MaxConsumersPerKey > 100000 {
		errs = append(errs, errors.New("max_consumers_per_key: must be between 1 and 100000"))
	}
	return errors.Join(errs...)
}

func validPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern (path.Match syntax, e.g. \"payments-*\")", p)
	}
	return nil
}

// allows reports whether pattern (empty: every key) covers key.
func allows(pattern, key string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, key)
	return ok
}
