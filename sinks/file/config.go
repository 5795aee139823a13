package file

import (
	"errors"
)

// Config configures the file sink.
//
//	sinks:
//	  - name: local
//	    type: file
//	    dir: ./data/secrets
//	    adopt: false
type Config struct {
	// Dir holds one JSON document per key, <dir>/<path or key>.json. It is
	// created with mode 0700 when missing.
	Dir string `koanf:"dir"`
	// Adopt lets the sink take over files that exist without the
	// "managed_by": "rekey" marker (their content is replaced by rekey's
	// document, keeping a readable current value throughout).
	Adopt bool `koanf:"adopt"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{Dir: "./data/secrets"}
}

// Validate checks the configuration; every error starts with its field name.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	return errors.Join(errs...)
}
