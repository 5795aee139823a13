package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
)

// DefaultTimeout is the default of Config.Timeout.
const DefaultTimeout = 10 * time.Second

// Config of the webhook notifier.
//
//	notifiers:
//	  - name: ops-webhook
//	    type: webhook
//	    url: https://hooks.example.com/rekey
//	    secret_env: REKEY_WEBHOOK_SECRET    # or secret_file; required
//	    timeout: 10s                        # default, per delivery attempt
//	    headers: {X-Team: platform}         # optional, never secrets
//	    tls:
//	      ca_file: /etc/rekey/webhook-ca.pem  # optional: trust only this CA
type Config struct {
	// URL receives the POSTs. It may carry a token in its path or query:
	// errors and logs show only its scheme and host.
	URL string `koanf:"url"`
	// SecretEnv / SecretFile name the signing secret (exactly one). A
	// secret of the form "whsec_<base64>" is decoded as Standard Webhooks
	// libraries do; any other value is used as the raw HMAC key.
	SecretEnv  string `koanf:"secret_env"`
	SecretFile string `koanf:"secret_file"`
	// Timeout bounds each delivery attempt (one POST).
	Timeout time.Duration `koanf:"timeout"`
	// Headers are extra, non-secret request headers.
	Headers map[string]string `koanf:"headers"`
	TLS     TLSConfig         `koanf:"tls"`

	// MaxAttempts is accepted and ignored, with a warning at start-up.
	//
	// Deprecated: retries are owned by rekey's notification outbox (the
	// engine's dispatcher retries every retryable failure with backoff, up
	// to 100 attempts, honouring Retry-After, across restarts); the
	// notifier makes one attempt per delivery.
	MaxAttempts int `koanf:"max_attempts"`
}

// TLSConfig configures the client's TLS.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system's.
	CAFile string `koanf:"ca_file"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout}
}

// Secret is the reference to the signing secret.
func (c Config) Secret() secretref.Ref {
	return secretref.Ref{Env: c.SecretEnv, File: c.SecretFile}
}

// reservedHeaders are set by the notifier and may not be configured;
// credential headers are refused because configuration never holds secrets
// inline.
var reservedHeaders = map[string]string{
	"content-type":        "set by the notifier",
	"content-length":      "set by the notifier",
	"host":                "set by the notifier",
	"user-agent":          "set by the notifier",
	"webhook-id":          "set by the notifier",
	"webhook-timestamp":   "set by the notifier",
	"webhook-signature":   "set by the notifier",
	"authorization":       "would hold a secret inline",
	"proxy-authorization": "would hold a secret inline",
	"cookie":              "would hold a secret inline",
}

// Validate reports every problem, each prefixed with its field name. No
// message repeats the URL, which may carry a token.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url: must be an absolute http(s) URL"))
	} else if u.User != nil {
		errs = append(errs, errors.New("url: must not carry user:password (use a signing secret)"))
	}
	if err := c.Secret().Validate("secret", true); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	for name, value := range c.Headers {
		switch {
		case !validHeaderName(name):
			errs = append(errs, fmt.Errorf("headers.%s: not a valid header name", name))
		case reservedHeaders[strings.ToLower(name)] != "":
			errs = append(errs, fmt.Errorf("headers.%s: not allowed: %s", name, reservedHeaders[strings.ToLower(name)]))
		case strings.ContainsAny(value, "\r\n\x00"):
			errs = append(errs, fmt.Errorf("headers.%s: value must be a single line", name))
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
