package fixed

import "github.com/rekeyhq/rekey/rotator"

// Config of the fixed source: it has no settings. The quiet period it waits
// is the key's drain.quiet_period.
type Config struct{}

// DefaultConfig returns the (empty) defaults.
func DefaultConfig() Config { return Config{} }

// Validate always succeeds.
func (Config) Validate() error { return nil }

// Answers: the fixed source observes nothing, so it answers no question of
// the drain gate.
func (Config) Answers(map[rotator.Question]string) []rotator.Question { return nil }
