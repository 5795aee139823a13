package random

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults of Config.
const (
	DefaultFormat = "ka_live_{base62:32}"
	DefaultLedger = "./data/random-issuer.json"
)

// Config of the random issuer.
//
//	issuers:
//	  - name: demo
//	    type: random
//	    format: "ka_live_{base62:32}"          # default
//	    ledger: ./data/random-issuer.json     # default
type Config struct {
	// Format is the template of minted secrets: literal text and
	// placeholders {base62:N}, {hex:N}, {alnum:N} with N in 1..512.
	// "{{" is a literal "{".
	Format string `koanf:"format"`
	// Ledger is the path of the JSON ledger of minted credentials (ids,
	// names, fingerprints and times; never the secret values).
	Ledger string `koanf:"ledger"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{Format: DefaultFormat, Ledger: DefaultLedger}
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseTemplate(c.Format); err != nil {
		errs = append(errs, fmt.Errorf("format: %w", err))
	}
	if strings.TrimSpace(c.Ledger) == "" {
		errs = append(errs, errors.New("ledger: required"))
	}
	return errors.Join(errs...)
}
