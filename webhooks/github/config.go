package github

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
)

// Defaults of Config.
const (
	DefaultKeysURL             = "https://api.github.com/meta/public_keys/secret_scanning"
	DefaultAPIBaseURL          = "https://api.github.com"
	DefaultKeysRefreshInterval = 30 * time.Second
	DefaultKeysMaxAge          = 24 * time.Hour
	DefaultTimeout             = 10 * time.Second
)

// alertActions are the secret_scanning_alert actions that may trigger.
var alertActions = []string{"created", "reopened", "publicly_leaked"}

// Config of the GitHub secret scanning webhook.
//
//	webhooks:
//	  - name: github
//	    type: github
//	    # Partner program: GitHub POSTs tokens matching your pattern, signed
//	    # with its ECDSA key (no secret to configure).
//	    partner: true                     # default
//	    keys_url: https://api.github.com/meta/public_keys/secret_scanning  # default
//	    keys_refresh_interval: 30s        # default: at most one key-list fetch per interval
//	    keys_max_age: 24h                 # default: refetch the list when older
//	    # secret_scanning_alert repository/organization webhook.
//	    alert: true                       # default false
//	    secret_env: GITHUB_WEBHOOK_SECRET # or secret_file; required with alert
//	    api_base_url: https://api.github.com  # default; https://HOST/api/v3 for GitHub Enterprise Server
//	    actions: [created, reopened]      # default; publicly_leaked may be added
//	    # Both.
//	    token_env: GITHUB_TOKEN           # or token_file; required with alert, optional otherwise
//	    timeout: 10s                      # default, per GitHub API call
type Config struct {
	// Partner enables the partner-program format.
	Partner bool `koanf:"partner"`
	// KeysURL lists GitHub's secret scanning public keys.
	KeysURL string `koanf:"keys_url"`
	// KeysRefreshInterval is the least time between two fetches of the key
	// list, so that requests naming unknown keys cannot make rekey hammer
	// GitHub.
	KeysRefreshInterval time.Duration `koanf:"keys_refresh_interval"`
	// KeysMaxAge is how long a fetched key list is trusted before it is
	// fetched again (a key GitHub withdrew stops verifying then).
	KeysMaxAge time.Duration `koanf:"keys_max_age"`

	// Alert enables the secret_scanning_alert webhook.
	Alert bool `koanf:"alert"`
	// SecretEnv / SecretFile name the webhook secret (exactly one).
	SecretEnv  string `koanf:"secret_env"`
	SecretFile string `koanf:"secret_file"`
	// APIBaseURL is the REST API the alert's secret is read from.
	APIBaseURL string `koanf:"api_base_url"`
	// Actions are the alert actions that report an exposure; others are
	// acknowledged and ignored.
	Actions []string `koanf:"actions"`

	// TokenEnv / TokenFile name a GitHub token (at most one): it reads
	// alerts (secret_scanning_alerts: read) and, when set, authenticates
	// key-list fetches against rate limits.
	TokenEnv  string `koanf:"token_env"`
	TokenFile string `koanf:"token_file"`
	// Timeout bounds each GitHub API call.
	Timeout time.Duration `koanf:"timeout"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{
		Partner:             true,
		KeysURL:             DefaultKeysURL,
		KeysRefreshInterval: DefaultKeysRefreshInterval,
		KeysMaxAge:          DefaultKeysMaxAge,
		APIBaseURL:          DefaultAPIBaseURL,
		Actions:             []string{"created", "reopened"},
		Timeout:             DefaultTimeout,
	}
}

// Secret is the reference to the webhook secret.
func (c Config) Secret() secretref.Ref { return secretref.Ref{Env: c.SecretEnv, File: c.SecretFile} }

// Token is the reference to the GitHub token.
func (c Config) Token() secretref.Ref { return secretref.Ref{Env: c.TokenEnv, File: c.TokenFile} }

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	if !c.Partner && !c.Alert {
		errs = append(errs, errors.New("partner: enable partner, alert or both"))
	}
	if c.Partner {
		if err := checkURL(c.KeysURL); err != nil {
			errs = append(errs, fmt.Errorf("keys_url: %w", err))
		}
		if c.KeysRefreshInterval < time.Second {
			errs = append(errs, errors.New("keys_refresh_interval: must be at least 1s"))
		}
		if c.KeysMaxAge < c.KeysRefreshInterval {
			errs = append(errs, errors.New("keys_max_age: must be at least keys_refresh_interval"))
		}
	}
	if c.Alert {
		if err := c.Secret().Validate("secret", true); err != nil {
			errs = append(errs, err)
		}
		if err := c.Token().Validate("token", true); err != nil {
			errs = append(errs, fmt.Errorf("%w: alert reads the secret from GitHub's REST API", err))
		}
		if err := checkURL(c.APIBaseURL); err != nil {
			errs = append(errs, fmt.Errorf("api_base_url: %w", err))
		}
		if len(c.Actions) == 0 {
			errs = append(errs, fmt.Errorf("actions: list at least one of %s", strings.Join(alertActions, ", ")))
		}
		for i, a := range c.Actions {
			if !slices.Contains(alertActions, a) {
				errs = append(errs, fmt.Errorf("actions[%d]: %q is not one of %s", i, a, strings.Join(alertActions, ", ")))
			}
		}
	} else if err := c.Secret().Validate("secret", false); err != nil {
		errs = append(errs, err)
	}
	if !c.Alert {
		if err := c.Token().Validate("token", false); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// checkURL accepts https URLs, and http ones only to the loopback
// interface: a key list or API answer read over plain HTTP could be forged
// (forged keys would let anyone trigger emergency revocations) and the
// token would travel in clear.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an absolute https URL without credentials, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return errors.New("must use https (http only to a loopback address)")
}
