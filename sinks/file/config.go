package file

import (
	"errors"
	"fmt"

	"github.com/rekeyhq/rekey/internal/pathseg"
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

// ValidateTarget checks a key's binding: its path (default the key's name)
// names a file under dir, relative, with no "..", "." or empty segment.
func (c Config) ValidateTarget(path string, _ map[string]string) error {
	if path == "" {
		return nil // the key's name, checked by the config package
	}
	if err := pathseg.Check(path); err != nil {
		return fmt.Errorf("path: %w: a file sink path is relative to the sink's dir and stays inside it", err)
	}
	return nil
}
