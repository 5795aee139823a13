package log

import (
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// DefaultLevel is the default minimum severity.
const DefaultLevel = string(rotator.SeverityInfo)

// Config of the log notifier.
//
//	notifiers:
//	  - name: log
//	    type: log
//	    level: info     # default; info | warning | critical
type Config struct {
	// Level is the minimum severity written; lower events are dropped.
	Level string `koanf:"level"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config { return Config{Level: DefaultLevel} }

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	if _, ok := severityRank[rotator.Severity(c.Level)]; !ok {
		return fmt.Errorf("level: must be info, warning or critical, not %q", c.Level)
	}
	return nil
}

// severityRank orders severities.
var severityRank = map[rotator.Severity]int{
	rotator.SeverityInfo:     0,
	rotator.SeverityWarning:  1,
	rotator.SeverityCritical: 2,
}
