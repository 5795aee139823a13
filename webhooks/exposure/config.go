package exposure

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
)

// Config of the generic exposure webhook. Every sender is a source with its
// own signing secret and its own trust: the top-level secret is the source
// named "generic"; `sources` adds more.
//
//	webhooks:
//	  - name: exposure
//	    type: exposure
//	    secret_env: REKEY_EXPOSURE_SECRET   # the "generic" source (optional when sources are listed)
//	    tolerance: 5m                       # accepted clock skew, both ways
//	    sources:
//	      - name: splunk
//	        secret_env: SPLUNK_EXPOSURE_SECRET
//	        fingerprints: false             # accept sha256-only reports (default: the token is required)
//	        on_match: revoke                # revoke (default) | contain (the revoke waits for a responder)
//	        rate_per_minute: 60             # reports accepted per minute; 429 past it
type Config struct {
	inbound.SignedConfig `koanf:",squash"`
	SourceTrust          `koanf:",squash"` // of the "generic" source
	Sources              []Source          `koanf:"sources"`
}

// SourceTrust is what a source's reports may do.
type SourceTrust struct {
	// Fingerprints: the source may report a SHA-256 alone. Without it, a
	// report must carry the token itself (proof of possession): anyone who
	// can read fingerprints (the database, a ledger) could otherwise revoke
	// every key.
	Fingerprints bool `koanf:"fingerprints"`
	// OnMatch: revoke (default) revokes a matched key at once; contain
	// starts the emergency at once but holds its revoke for a responder.
	OnMatch string `koanf:"on_match"`
	// RatePerMinute bounds accepted reports (429 with Retry-After past it).
	RatePerMinute int `koanf:"rate_per_minute"`
}

// Source is one more sender with its own secret and trust.
type Source struct {
	Name        string `koanf:"name"`
	SecretEnv   string `koanf:"secret_env"`
	SecretFile  string `koanf:"secret_file"`
	SourceTrust `koanf:",squash"`
}

// DefaultRate is the default reports per minute per source.
const DefaultRate = 60

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{SignedConfig: inbound.DefaultSignedConfig(), SourceTrust: SourceTrust{OnMatch: "revoke", RatePerMinute: DefaultRate}}
}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	hasGeneric := c.SecretEnv != "" || c.SecretFile != ""
	if hasGeneric || len(c.Sources) == 0 {
		if err := c.SignedConfig.Validate(); err != nil {
			errs = append(errs, err)
		}
	} else if c.Tolerance != 0 {
		t := c.SignedConfig
		t.SecretEnv = "placeholder"
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.SourceTrust.validate(""))
	seen := map[string]bool{Via: hasGeneric}
	for i, s := range c.Sources {
		p := fmt.Sprintf("sources[%d].", i)
		if !sourceName.MatchString(s.Name) {
			errs = append(errs, fmt.Errorf("%sname: %q must be 1 to 63 lower-case letters, digits, - or _", p, s.Name))
		} else if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%sname: %q is used twice (the top-level secret is the source %q)", p, s.Name, Via))
		}
		seen[s.Name] = true
		if err := (secretref.Ref{Env: s.SecretEnv, File: s.SecretFile}).Validate(p+"secret", true); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.SourceTrust.validate(p))
	}
	return errors.Join(errs...)
}

func (t SourceTrust) validate(prefix string) error {
	var errs []error
	if t.OnMatch != "" && t.OnMatch != "revoke" && t.OnMatch != "contain" {
		errs = append(errs, fmt.Errorf("%son_match: must be revoke or contain, got %q", prefix, t.OnMatch))
	}
	if t.RatePerMinute < 0 || t.RatePerMinute > 100000 {
		errs = append(errs, fmt.Errorf("%srate_per_minute: must be between 1 and 100000 (0: the default, %d)", prefix, DefaultRate))
	}
	return errors.Join(errs...)
}
