package consumers

import (
	"errors"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Config of the consumers source.
//
//	traffic:
//	  - name: attested
//	    type: consumers
//	    horizon: 1h        # a consumer not heard from for longer no longer holds the gate
//	    min_consumers: 1   # fewer attesting consumers is "cannot tell", never zero
type Config struct {
	// Horizon: consumers whose last attestation is older are not counted
	// (a decommissioned consumer must not hold every rotation forever).
	// Consumers should attest on every reload and at least every
	// horizon/2. Default 1h.
	Horizon time.Duration `koanf:"horizon"`
	// MinConsumers is how many consumers must have attested within the
	// horizon for a reading to count; fewer is an error, so a gate never
	// passes because nobody attests. Default 1.
	MinConsumers int `koanf:"min_consumers"`
}

// Defaults.
const (
	DefaultHorizon      = time.Hour
	DefaultMinConsumers = 1
)

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	return Config{Horizon: DefaultHorizon, MinConsumers: DefaultMinConsumers}
}

// Validate reports every configuration error, each starting with its field.
func (c Config) Validate() error {
	var errs []error
	if c.Horizon < time.Second {
		errs = append(errs, errors.New("horizon: must be at least 1s"))
	}
	if c.MinConsumers < 1 {
		errs = append(errs, errors.New("min_consumers: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Answers: attestations say which generation each consumer holds, so the
// source answers "is the old key still used?"; it sees no failed request.
func (Config) Answers(map[rotator.Question]string) []rotator.Question {
	return []rotator.Question{rotator.OldKeyUse}
}
