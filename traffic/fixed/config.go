package fixed

// Config of the fixed source: it has no settings. The quiet period it waits
// is the key's drain.quiet_period.
type Config struct{}

// DefaultConfig returns the (empty) defaults.
func DefaultConfig() Config { return Config{} }

// Validate always succeeds.
func (Config) Validate() error { return nil }
