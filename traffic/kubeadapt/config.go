package kubeadapt

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// Config of a kubeadapt traffic source. See examples/traffic/kubeadapt.yaml.
type Config struct {
	// URL of the server's metrics endpoint, e.g.
	// http://kubeadapt.internal:8089/metrics; a URL without a path gets
	// /metrics. No credentials in the URL.
	URL string `koanf:"url"`
	// Metric is the request counter, labelled key_id, key_name and code;
	// default kubeadapt_requests_total.
	Metric string `koanf:"metric"`
	// Match says which requests belong to the key: old_id (requests made
	// with the credential being retired, by its issuer id) and/or unknown
	// (requests whose key the server could not identify: missing,
	// malformed or unknown keys, from any consumer). Default [old_id].
	Match []string `koanf:"match"`
	// Count is unauthorized (answers with code 401, the default) or
	// requests (every answer: any use at all of the matched key). Before
	// the revoke the old key is still valid, so its requests answer 200,
	// not 401: to gate the revoke on "nobody uses the old key any more",
	// count requests.
	Count string `koanf:"count"`
	// EmptyIsZero reads "the server has no series for the old key id" (or
	// no counter at all) as zero instead of an error. Default false: a
	// wrong id (a manual issuer recording a name instead of the id), a
	// wrong metric name or a server restarted since the key was last used
	// would otherwise read as "no 401s" and let the drain gate pass.
	EmptyIsZero bool `koanf:"empty_is_zero"`
	// Timeout of each scrape; default 10s.
	Timeout time.Duration `koanf:"timeout"`
	// BearerTokenEnv / BearerTokenFile: "Authorization: Bearer <token>"
	// for a protected metrics endpoint, re-read on every scrape.
	BearerTokenEnv  string `koanf:"bearer_token_env"`
	BearerTokenFile string `koanf:"bearer_token_file"`
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `koanf:"ca_file"`
}

// Match and Count values.
const (
	MatchOldID   = "old_id"
	MatchUnknown = "unknown"

	CountUnauthorized = "unauthorized"
	CountRequests     = "requests"
)

// Defaults.
const (
	DefaultMetric  = "kubeadapt_requests_total"
	DefaultTimeout = 10 * time.Second
	// UnknownKeyID is the key_id label of requests whose key could not be
	// identified.
	UnknownKeyID = "unknown"
)

// DefaultMatch is the match list unless configured (applied by New, so that
// a YAML list replaces it instead of being merged into it).
var DefaultMatch = []string{MatchOldID}

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	return Config{Metric: DefaultMetric, Count: CountUnauthorized, Timeout: DefaultTimeout}
}

func (c Config) withDefaults() Config {
	if c.Metric == "" {
		c.Metric = DefaultMetric
	}
	if c.Count == "" {
		c.Count = CountUnauthorized
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Match) == 0 {
		c.Match = DefaultMatch
	}
	c.Match = slices.Clone(c.Match)
	return c
}

func (c Config) bearerRef() secretref.Ref {
	return secretref.Ref{Env: c.BearerTokenEnv, File: c.BearerTokenFile}
}

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
	} else if u.User != nil {
		add(errors.New("url: must not carry credentials; use bearer_token_env"))
	}
	if !validMetricName(c.Metric) {
		add(fmt.Errorf("metric: %q is not a metric name", c.Metric))
	}
	for i, m := range c.Match {
		if m != MatchOldID && m != MatchUnknown {
			add(fmt.Errorf("match[%d]: %q: want %s or %s", i, m, MatchOldID, MatchUnknown))
		}
	}
	if c.Count != CountUnauthorized && c.Count != CountRequests {
		add(fmt.Errorf("count: %q: want %s or %s", c.Count, CountUnauthorized, CountRequests))
	}
	if c.Timeout < 0 {
		add(errors.New("timeout: must not be negative"))
	}
	add(c.bearerRef().Validate("bearer_token", false))
	return errors.Join(errs...)
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Answers: the server's own per-key counters answer both questions of the
// drain gate — requests made with the old key's id (any status), and 401s
// of the new key's id and of unidentifiable keys. match and count apply
// only where no question is asked (policies.unauthorized).
func (Config) Answers(map[rotator.Question]string) []rotator.Question {
	return []rotator.Question{rotator.OldKeyUse, rotator.NewKeyFailures}
}
