package prometheus

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// Config of a Prometheus traffic source. See examples/traffic/*.yaml for
// commented instances (ingress-nginx, Envoy, client-side counters).
type Config struct {
	// URL of the Prometheus HTTP API root (the query goes to
	// <url>/api/v1/query): http://prometheus:9090, or a prefix such as
	// https://mimir.internal/prometheus. No credentials in the URL.
	URL string `koanf:"url"`
	// Query is the default PromQL template; a key's drain.query replaces it.
	// Data: {{.Key}} {{.OldID}} {{.NewID}} {{.OldName}} {{.NewName}}
	// {{.Since}} (unix seconds) {{.Window}} (e.g. 5m). Every name or id
	// must go through promql inside double quotes:
	// key_name="{{promql .OldName}}"; Validate refuses a template that
	// prints one unescaped.
	Query string `koanf:"query"`
	// OldKeyQuery is the default template answering "is the old key still
	// used?": the rate of requests made with the old key, whatever their
	// status (e.g. sum(rate(requests_total{key_id="{{promql .OldID}}"}[{{.Window}}]))).
	// A key's drain.old_key_query replaces it. Without one, the source
	// answers only "does the new key fail?" (Query: a 401 rate), which
	// cannot see a consumer still on the old key before the revoke.
	OldKeyQuery string `koanf:"old_key_query"`
	// Window is the range {{.Window}} renders, e.g. rate(x[{{.Window}}]);
	// default 5m.
	Window time.Duration `koanf:"window"`
	// Timeout of each query, sent to Prometheus too; default 10s.
	Timeout time.Duration `koanf:"timeout"`

	// BearerTokenEnv / BearerTokenFile: "Authorization: Bearer <token>",
	// re-read on every query so a rotated file is picked up.
	BearerTokenEnv  string    `koanf:"bearer_token_env"`
	BearerTokenFile string    `koanf:"bearer_token_file"`
	BasicAuth       BasicAuth `koanf:"basic_auth"`
	// Headers are sent with every query (X-Scope-OrgID for Mimir/Cortex,
	// …). They are not secret: credentials go in bearer_token_* or
	// basic_auth.
	Headers map[string]string `koanf:"headers"`

	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `koanf:"ca_file"`
	// InsecureSkipVerify disables TLS certificate checks. For tests only:
	// anyone on the path could then answer "zero 401s".
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`

	// EmptyIsZero reports an empty result (no series matched) as a zero
	// rate instead of an error. Default false, and keep it so unless the
	// 401 counter really only exists after the first 401: with it set, a
	// typo in the query, a renamed metric, a relabelled label or a target
	// that is no longer scraped all read as "no 401s", and the drain gate
	// passes on silence. Prefer a query that is zero, not empty, when the
	// key is seen: (sum(rate(x{code="401",…}[w])) or sum(rate(x{…}[w])) * 0).
	EmptyIsZero bool `koanf:"empty_is_zero"`
}

// BasicAuth is HTTP basic authentication; the password is read from
// PasswordEnv or PasswordFile on every query.
type BasicAuth struct {
	Username     string `koanf:"username"`
	PasswordEnv  string `koanf:"password_env"`
	PasswordFile string `koanf:"password_file"`
}

func (b BasicAuth) isZero() bool { return b == BasicAuth{} }

func (b BasicAuth) passwordRef() secretref.Ref {
	return secretref.Ref{Env: b.PasswordEnv, File: b.PasswordFile}
}

func (c Config) bearerRef() secretref.Ref {
	return secretref.Ref{Env: c.BearerTokenEnv, File: c.BearerTokenFile}
}

// Defaults.
const (
	DefaultWindow  = 5 * time.Minute
	DefaultTimeout = 10 * time.Second
)

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	return Config{Window: DefaultWindow, Timeout: DefaultTimeout}
}

// withDefaults fills what a hand-built Config may lack.
func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// ValidateQuery checks a key's query for this source (app calls it for
// every key's drain.query and unauthorized query).
func (Config) ValidateQuery(q string) error { return CheckQuery(q) }

// Validate reports every configuration error, each starting with its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.URL == "" {
		add(errors.New("url: required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add(errors.New("url: must be an http(s) URL"))
	} else {
		if u.User != nil {
			add(errors.New("url: must not carry credentials; use basic_auth or bearer_token_env"))
		}
		if u.Fragment != "" || u.RawQuery != "" {
			add(errors.New("url: must not have a query or a fragment"))
		}
	}
	if c.Query != "" {
		if _, err := parseQuery("query", c.Query); err != nil {
			add(fmt.Errorf("query: %w", err))
		}
	}
	if c.OldKeyQuery != "" {
		if _, err := parseQuery("old_key_query", c.OldKeyQuery); err != nil {
			add(fmt.Errorf("old_key_query: %w", err))
		}
	}
	if c.Window < 0 || c.Window%time.Millisecond != 0 {
		add(errors.New("window: must be a positive whole number of milliseconds"))
	}
	if c.Timeout < 0 || (c.Timeout > 0 && c.Timeout < time.Millisecond) {
		add(errors.New("timeout: must be at least 1ms"))
	}
	add(c.bearerRef().Validate("bearer_token", false))
	if !c.BasicAuth.isZero() {
		if c.BasicAuth.Username == "" {
			add(errors.New("basic_auth.username: required"))
		}
		if strings.Contains(c.BasicAuth.Username, ":") {
			add(errors.New("basic_auth.username: must not contain ':'"))
		}
		if err := c.BasicAuth.passwordRef().Validate("password", true); err != nil {
			add(fmt.Errorf("basic_auth.%w", err))
		}
		if !c.bearerRef().IsZero() {
			add(errors.New("basic_auth: set either basic_auth or bearer_token_*, not both"))
		}
	}
	add(validateHeaders(c.Headers))
	if c.InsecureSkipVerify && c.CAFile != "" {
		add(errors.New("insecure_skip_verify: set either ca_file or insecure_skip_verify, not both"))
	}
	return errors.Join(errs...)
}

func validateHeaders(h map[string]string) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(h)) {
		switch strings.ToLower(name) {
		case "authorization", "proxy-authorization", "cookie":
			errs = append(errs, fmt.Errorf("headers.%s: credentials go in bearer_token_* or basic_auth", name))
			continue
		case "host", "content-length", "content-type", "accept":
			errs = append(errs, fmt.Errorf("headers.%s: set by the source", name))
			continue
		}
		if !validToken(name) {
			errs = append(errs, fmt.Errorf("headers: %q is not a header name", name))
		}
		if strings.ContainsAny(h[name], "\r\n\x00") {
			errs = append(errs, fmt.Errorf("headers.%s: must not contain a line break", name))
		}
	}
	return errors.Join(errs...)
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// Answers reports which questions of the drain gate the source answers for
// a key whose drain sets the given queries: "does the new key fail?" with a
// 401-rate query (query or drain.query), "is the old key still used?" with
// an old-key query (old_key_query or drain.old_key_query).
func (c Config) Answers(key map[rotator.Question]string) []rotator.Question {
	var out []rotator.Question
	if c.OldKeyQuery != "" || key[rotator.OldKeyUse] != "" {
		out = append(out, rotator.OldKeyUse)
	}
	if c.Query != "" || key[rotator.NewKeyFailures] != "" {
		out = append(out, rotator.NewKeyFailures)
	}
	return out
}
