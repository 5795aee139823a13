package consumer

import (
	"errors"
	"fmt"
	"time"

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
type Config struct {
	inbound.SignedConfig `koanf:",squash"`
	RatePerMinute        int           `koanf:"rate_per_minute"`
	Retention            time.Duration `koanf:"retention"`
	MaxConsumersPerKey   int           `koanf:"max_consumers_per_key"`
}

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
	errs := []error{c.SignedConfig.Validate()}
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
