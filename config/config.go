// Package config loads rekey's configuration — one YAML file plus
// `REKEY_`-prefixed environment overrides — with koanf, decodes it strictly
// (unknown fields are errors), and validates it, including every
// cross-reference between keys and the adapters they name. Every problem is
// reported with its YAML path. Secrets are never inline: a secret field
// `token` is configured as `token_env` or `token_file`.
package config

import "time"

// Config is the whole file.
type Config struct {
	Daemon    Daemon      `koanf:"daemon"`
	Auth      Auth        `koanf:"auth"`
	Store     Store       `koanf:"store"`
	Audit     Audit       `koanf:"audit"`
	Issuers   []Adapter   `koanf:"issuers"`
	Sinks     []Adapter   `koanf:"sinks"`
	Notifiers []Adapter   `koanf:"notifiers"`
	Traffic   []Adapter   `koanf:"traffic"`
	Webhooks  []Adapter   `koanf:"webhooks"`
	Defaults  KeySettings `koanf:"defaults"`
	Keys      []Key       `koanf:"keys"`
	Breaker   Breaker     `koanf:"breaker"`
	Retention Retention   `koanf:"retention"`

	// fromEnv maps each YAML path an environment variable set to the
	// variable's name, so that an error about it names the variable.
	fromEnv map[string]string
}

// Breaker bounds automatic emergency revocations fleet-wide: more than
// Max within Window opens it, and further automatic emergencies wait for a
// responder (rekey breaker release). Max -1 disables it. Exempt lists
// inbound sources (their "via": github-partner, github-alert, generic,
// cli…) never contained by it — sources that prove possession of the token.
type Breaker struct {
	Max    int           `koanf:"max"`
	Window time.Duration `koanf:"window"`
	Exempt []string      `koanf:"exempt"`
}

// Retention bounds what is kept besides the audit trail (never pruned):
// delivered notifications, processed inbound reports, and the window over
// which reports that match nothing are counted into one digest. A negative
// duration keeps forever.
type Retention struct {
	Outbox       time.Duration `koanf:"outbox"`
	Inbound      time.Duration `koanf:"inbound"`
	DigestWindow time.Duration `koanf:"digest_window"`
}

// Daemon configures the process.
type Daemon struct {
	// Listen is the public listener: inbound webhooks (exposure,
	// departure, GitHub, Slack), /healthz and /readyz.
	Listen string `koanf:"listen"`
	// AddressFile, if set, receives the listener's bound address
	// (host:port) once it accepts, written atomically (temp file + rename):
	// with port 0 in Listen, it is how a supervisor or test finds the port.
	AddressFile string `koanf:"address_file"`
	// TLS serves Listen over HTTPS.
	TLS TLS `koanf:"tls"`
	// AdminListen is the admin listener: the admin API, /metrics, /healthz
	// and /readyz; host:port (default loopback) or unix:/path (created 0600).
	AdminListen string `koanf:"admin_listen"`
	// AdminAddressFile is AddressFile for AdminListen.
	AdminAddressFile string `koanf:"admin_address_file"`
	// AdminTLS serves AdminListen over HTTPS.
	AdminTLS TLS `koanf:"admin_tls"`
	// AdminTokenEnv / AdminTokenFile: the bootstrap admin token, the
	// principal "admin" with role admin (at least 32 bytes of entropy).
	// People use their own API tokens or OIDC.
	AdminTokenEnv  string `koanf:"admin_token_env"`
	AdminTokenFile string `koanf:"admin_token_file"`
	// MetricsTokenEnv / MetricsTokenFile, if set, is the bearer token
	// /metrics requires (people's tokens with a role are accepted too).
	MetricsTokenEnv  string `koanf:"metrics_token_env"`
	MetricsTokenFile string `koanf:"metrics_token_file"`
	// Schedule is the cron spec on which policies are evaluated.
	Schedule string        `koanf:"schedule"`
	Jitter   time.Duration `koanf:"jitter"`
	// Concurrency bounds rotations running steps at once across keys.
	Concurrency  int           `koanf:"concurrency"`
	PollInterval time.Duration `koanf:"poll_interval"`
	StepTimeout  time.Duration `koanf:"step_timeout"`
	RetryBase    time.Duration `koanf:"retry_base"`
	RetryMax     time.Duration `koanf:"retry_max"`
	LogLevel     string        `koanf:"log_level"`
	// MetricsPerKey keeps the key label on metrics (default true). Off for
	// fleets too large for one series per key (docs/METRICS.md).
	MetricsPerKey *bool `koanf:"metrics_per_key"`

	// LeaseTTL is how long a rotation's lease outlives its daemon's last
	// heartbeat (renewed every third of it): the time after which another
	// daemon takes over the rotation of one that died.
	LeaseTTL time.Duration `koanf:"lease_ttl"`
}

// TLS is a certificate and key, re-read when their files change.
type TLS struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// ClientCAFile (daemon.admin_tls only) is the PEM bundle of the CAs
	// whose client certificates authenticate people (auth.certs); re-read
	// when it changes.
	ClientCAFile string `koanf:"client_ca_file"`
	// ClientAuth is optional (default: a certificate, when presented,
	// must verify; bearer credentials are accepted too) or require (no
	// request without a verified certificate).
	ClientAuth string `koanf:"client_auth"`
}

// Client authentication modes of daemon.admin_tls.client_auth.
const (
	ClientAuthOptional = "optional"
	ClientAuthRequire  = "require"
)

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Auth configures who people are and what they may do through the admin API.
type Auth struct {
	// Identities maps other spellings of a person (a login, a Slack
	// handle) to their canonical identity (usually their email).
	Identities map[string]string `koanf:"identities"`
	// OIDC accepts ID tokens of the organisation's identity provider.
	OIDC *OIDC `koanf:"oidc"`
	// Certs maps verified client certificates of the admin listener
	// (daemon.admin_tls.client_ca_file) to people and roles.
	Certs *Certs `koanf:"certs"`
}

// Certs configures client-certificate principals.
type Certs struct {
	// Identity: email (default; the certificate's first email SAN) or cn
	// (the first email SAN, else the Subject CN).
	Identity string `koanf:"identity"`
	// Users grant roles by identity or identity pattern.
	Users []CertUser `koanf:"users"`
	// Groups grant roles by the certificate's Subject OU, as
	// auth.oidc.groups does by OIDC group.
	Groups []GroupRole `koanf:"groups"`
}

// CertUser grants a role, optionally scoped, to the certificate principal
// named Identity, or to every one whose identity matches Pattern.
type CertUser struct {
	Identity string `koanf:"identity"`
	Pattern  string `koanf:"pattern"`
	Role     string `koanf:"role"`
	Keys     string `koanf:"keys"`
	Team     string `koanf:"team"`
}

// OIDC configures bearer tokens from an OpenID Connect provider.
type OIDC struct {
	Issuer   string `koanf:"issuer"`
	Audience string `koanf:"audience"`
	// IdentityClaim names the person (default email).
	IdentityClaim string `koanf:"identity_claim"`
	// GroupsClaim lists their groups (default groups).
	GroupsClaim string `koanf:"groups_claim"`
	// Groups grant roles to the members of a group.
	Groups []GroupRole `koanf:"groups"`
	// CLIClientID is the public client `rekey login` uses for the device
	// authorization grant (default Audience). ID tokens issued to it are
	// accepted besides those for Audience.
	CLIClientID string `koanf:"cli_client_id"`
	// CLIScopes are the scopes `rekey login` asks for (default openid,
	// email, profile, offline_access).
	CLIScopes []string `koanf:"cli_scopes"`
}

// GroupRole grants a role, optionally scoped, to an OIDC group.
type GroupRole struct {
	Group string `koanf:"group"`
	Role  string `koanf:"role"`
	// Keys scopes the role to keys whose name matches this pattern.
	Keys string `koanf:"keys"`
	// Team scopes the role to keys whose team is this.
	Team string `koanf:"team"`
}

// Store selects the persistence backend.
type Store struct {
	Type string `koanf:"type"` // sqlite | postgres
	// Path of the SQLite database file.
	Path string `koanf:"path"`
	// Synchronous is SQLite's durability: normal (default; survives a
	// process crash, recovers from a power loss by idempotent replay) or
	// full (an fsync per commit).
	Synchronous string `koanf:"synchronous"`
	// DSN of the PostgreSQL database, by reference (it carries a password).
	DSNEnv  string `koanf:"dsn_env"`
	DSNFile string `koanf:"dsn_file"`
}

// Adapter is one configured issuer, sink, notifier or traffic source: a
// name, a type, and the type's own settings, decoded by the adapter.
type Adapter struct {
	Name     string         `koanf:"name"`
	Type     string         `koanf:"type"`
	Settings map[string]any `koanf:",remain"`
}

// Key is one managed credential.
type Key struct {
	Name        string         `koanf:"name"`
	Description string         `koanf:"description"`
	Issuer      string         `koanf:"issuer"`
	Params      map[string]any `koanf:"params"`
	Owners      []string       `koanf:"owners"`
	// Team owns the key; roles can be scoped to a team's keys.
	Team  string        `koanf:"team"`
	Sinks []SinkBinding `koanf:"sinks"`
	// Schedule overrides daemon.schedule for this key.
	Schedule    string `koanf:"schedule"`
	KeySettings `koanf:",squash"`
}

// KeySettings are the per-key settings that `defaults` may also set.
type KeySettings struct {
	Policies  *Policies  `koanf:"policies"`
	Windows   []Window   `koanf:"windows"`
	Approval  *Approval  `koanf:"approval"`
	Drain     *Drain     `koanf:"drain"`
	Watch     *Watch     `koanf:"watch"`
	Verify    *bool      `koanf:"verify"`
	Notify    []string   `koanf:"notify"`
	Bootstrap *bool      `koanf:"bootstrap"`
	Reminders *Reminders `koanf:"reminders"`
	// Decommission guards decommissioning the key.
	Decommission *Decommission `koanf:"decommission"`
}

// Decommission says who must agree before a key is decommissioned.
type Decommission struct {
	// SecondPerson: a second, distinct person approves (rekey approve)
	// before anything is revoked; the requester cannot.
	SecondPerson bool `koanf:"second_person"`
}

// Reminders chase a person a rotation waits on (an approval, a manually
// minted secret, a manual revoke's confirmation, a drain decision, a
// failure after the point of no return).
type Reminders struct {
	// Every is the reminder cadence (default 1h).
	Every time.Duration `koanf:"every"`
	// EscalateAfter: from then on reminders are critical and page on-call
	// (default 4h).
	EscalateAfter time.Duration `koanf:"escalate_after"`
	// SecretExpireAfter: a rotation waiting this long for a manually
	// minted secret rolls back (default 24h; nothing is live yet, so
	// rolling back is safe). Confirm waits never expire: they escalate.
	SecretExpireAfter time.Duration `koanf:"secret_expire_after"`
}

// SinkBinding delivers a key to one sink.
type SinkBinding struct {
	Sink   string            `koanf:"sink"`
	Path   string            `koanf:"path"`
	Params map[string]string `koanf:"params"`
}

// Policies configure when a key rotates.
type Policies struct {
	MaxAge     time.Duration `koanf:"max_age"`
	WarnBefore time.Duration `koanf:"warn_before"`
	// Unauthorized revokes at once a previous generation that was never
	// revoked when its traffic source shows it in use.
	Unauthorized *UnauthorizedPolicy `koanf:"unauthorized"`
}

// UnauthorizedPolicy watches credentials that should not be in use.
type UnauthorizedPolicy struct {
	Source    string  `koanf:"source"`
	Query     string  `koanf:"query"`
	Threshold float64 `koanf:"threshold"`
}

// Window is a recurring time range in which staged rotations may start.
type Window struct {
	Days  []string `koanf:"days"`  // mon … sun, or ranges like mon-fri; empty = every day
	Start string   `koanf:"start"` // "09:00"
	End   string   `koanf:"end"`   // "17:00"; before start = wraps midnight
	TZ    string   `koanf:"tz"`    // IANA name; default UTC
}

// Approval configures which gates need approvals.
type Approval struct {
	Gates     []string `koanf:"gates"` // start, revoke
	Approvers []string `koanf:"approvers"`
	Required  int      `koanf:"required"`
	// RevokeRequired overrides required for the revoke gate (two-person
	// rule for the destructive step).
	RevokeRequired int           `koanf:"revoke_required"`
	ExpireAfter    time.Duration `koanf:"expire_after"`
}

// Drain configures the gate between cut-over and revoke. The gate asks two
// questions — is the old key still used (old_key_use)? does the new key
// fail anywhere (new_key_failures)? — each of the sources that can answer
// it, and revokes only after every answer was zero for quiet_period.
type Drain struct {
	// Source is the gate's traffic source; Sources lists several (e.g.
	// consumers for old-key use and prom for 401s). Set one or the other.
	Source  string   `koanf:"source"`
	Sources []string `koanf:"sources"`
	// Query is the source-specific query of new_key_failures (PromQL: the
	// 401 rate); OldKeyQuery of old_key_use (PromQL: the rate of requests
	// made with the old key, any status). Empty: the source's default.
	Query       string `koanf:"query"`
	OldKeyQuery string `koanf:"old_key_query"`
	// Require lists the questions the gate must see answered
	// (old_key_use, new_key_failures); default every question its sources
	// can answer. Recommended: both.
	Require      []string      `koanf:"require"`
	QuietPeriod  time.Duration `koanf:"quiet_period"`
	MaxWait      time.Duration `koanf:"max_wait"`
	PollInterval time.Duration `koanf:"poll_interval"`
	// ConsumersReloadWithin is the reload interval of the slowest consumer.
	// A gate that cannot see old-key use waits at least this long, and
	// validate warns when it is not declared.
	ConsumersReloadWithin time.Duration `koanf:"consumers_reload_within"`
}

// SourceNames lists the gate's sources (source or sources).
func (d Drain) SourceNames() []string {
	if len(d.Sources) > 0 {
		return d.Sources
	}
	if d.Source != "" {
		return []string{d.Source}
	}
	return nil
}

// Watch configures the post-revoke watch.
type Watch struct {
	Period       time.Duration `koanf:"period"`
	PollInterval time.Duration `koanf:"poll_interval"`
}

// Default values.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultAdminListen = "127.0.0.1:8081"
	DefaultSchedule    = "@every 1m"
	DefaultMaxAge      = 90 * 24 * time.Hour
)

func defaults() Config {
	return Config{
		Daemon: Daemon{
			Listen: DefaultListen, AdminListen: DefaultAdminListen, Schedule: DefaultSchedule, Jitter: 0, Concurrency: 4,
			PollInterval: time.Second, StepTimeout: 60 * time.Second, LeaseTTL: 15 * time.Second,
			RetryBase: 2 * time.Second, RetryMax: 5 * time.Minute, LogLevel: "info",
		},
		Store:     Store{Type: "sqlite", Path: "./data/rekey.db"},
		Breaker:   Breaker{Max: 5, Window: 10 * time.Minute},
		Retention: Retention{Outbox: 7 * 24 * time.Hour, Inbound: 30 * 24 * time.Hour, DigestWindow: 15 * time.Minute},
		Audit:     Audit{CheckpointInterval: DefaultCheckpointInterval},
	}
}
