package vault

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/pathseg"
	"github.com/rekeyhq/rekey/internal/secretref"
)

// Config configures the Vault KV v2 sink.
//
//	sinks:
//	  - name: vault-prod
//	    type: vault
//	    address: https://vault.internal:8200
//	    namespace: team-a            # Vault Enterprise only
//	    mount: secret                # KV v2 mount
//	    auth:
//	      method: approle            # token | approle | kubernetes
//	      role_id: 1b2c…
//	      secret_id_file: /run/secrets/vault-secret-id
//	    tls:
//	      ca_file: /etc/ssl/vault-ca.pem
//	    current_field: api_key
//	    pending_field: api_key_pending
//	    previous_field: api_key_previous
//	    adopt: false
//	    timeout: 30s
//
// A key's binding may override the mount and field names per target with
// params: mount, field (alias of current_field), current_field,
// pending_field, previous_field.
type Config struct {
	Address   string `koanf:"address"`
	Namespace string `koanf:"namespace"`
	Mount     string `koanf:"mount"`

	Auth AuthConfig `koanf:"auth"`
	TLS  TLSConfig  `koanf:"tls"`

	// CurrentField is what consumers read; PendingField holds the staged
	// key beside it, PreviousField the old key until cleanup.
	CurrentField  string `koanf:"current_field"`
	PendingField  string `koanf:"pending_field"`
	PreviousField string `koanf:"previous_field"`

	// Adopt lets the sink take over secrets that exist without the
	// managed-by: rekey custom metadata.
	Adopt bool `koanf:"adopt"`
	// Timeout bounds each sink call (all its requests together).
	Timeout time.Duration `koanf:"timeout"`
}

// Auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// DefaultJWTFile is the service account token Kubernetes mounts in a pod.
const DefaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// AuthConfig says how the sink logs in. Secrets come from *_env or *_file.
type AuthConfig struct {
	Method string `koanf:"method"`

	// token
	TokenEnv  string `koanf:"token_env"`
	TokenFile string `koanf:"token_file"`

	// approle
	RoleID       string `koanf:"role_id"`
	SecretIDEnv  string `koanf:"secret_id_env"`
	SecretIDFile string `koanf:"secret_id_file"`

	// kubernetes
	Role    string `koanf:"role"`
	JWTFile string `koanf:"jwt_file"`

	// Mount is the auth method's mount; "approle" or "kubernetes" when empty.
	Mount string `koanf:"mount"`
}

// TLSConfig configures the connection to Vault.
type TLSConfig struct {
	CAFile             string `koanf:"ca_file"`
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{
		Mount:         "secret",
		Auth:          AuthConfig{Method: AuthToken, JWTFile: DefaultJWTFile},
		CurrentField:  "api_key",
		PendingField:  "api_key_pending",
		PreviousField: "api_key_previous",
		Timeout:       30 * time.Second,
	}
}

func (a AuthConfig) token() secretref.Ref { return secretref.Ref{Env: a.TokenEnv, File: a.TokenFile} }
func (a AuthConfig) secretID() secretref.Ref {
	return secretref.Ref{Env: a.SecretIDEnv, File: a.SecretIDFile}
}

// mount returns the auth mount, defaulting to the method's name.
func (a AuthConfig) mount() string {
	if a.Mount != "" {
		return a.Mount
	}
	return a.Method
}

// Validate checks the configuration; every error starts with its field name.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.Address); c.Address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("address: must be an http(s) URL")
	}
	if c.Mount == "" {
		add("mount: required")
	} else if err := checkSegments(c.Mount); err != nil {
		add("mount: %v", err)
	}
	if c.Auth.Mount != "" {
		if err := checkSegments(c.Auth.Mount); err != nil {
			add("auth.mount: %v", err)
		}
	}
	prefix := func(err error) {
		if err != nil {
			add("auth.%v", err)
		}
	}
	switch c.Auth.Method {
	case AuthToken:
		prefix(c.Auth.token().Validate("token", true))
	case AuthAppRole:
		if c.Auth.RoleID == "" {
			add("auth.role_id: required for method approle")
		}
		prefix(c.Auth.secretID().Validate("secret_id", false))
	case AuthKubernetes:
		if c.Auth.Role == "" {
			add("auth.role: required for method kubernetes")
		}
		if c.Auth.JWTFile == "" {
			add("auth.jwt_file: required for method kubernetes")
		}
	default:
		add("auth.method: must be one of token, approle, kubernetes")
	}
	if c.TLS.InsecureSkipVerify && c.TLS.CAFile != "" {
		add("tls.insecure_skip_verify: set either it or tls.ca_file")
	}
	fields := map[string]string{"current_field": c.CurrentField, "pending_field": c.PendingField, "previous_field": c.PreviousField}
	seen := map[string]bool{}
	for _, name := range []string{"current_field", "pending_field", "previous_field"} {
		switch v := fields[name]; {
		case v == "":
			add("%s: required", name)
		case seen[v]:
			add("%s: %q is already used by another field", name, v)
		default:
			seen[v] = true
		}
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive")
	}
	return errors.Join(errs...)
}

// ValidateTarget checks a key's binding: its path (default the key's name)
// and its params.mount are Vault paths of plain segments, so that every
// request path is built from segments that stay under the mount.
func (c Config) ValidateTarget(path string, params map[string]string) error {
	var errs []error
	if path != "" {
		if err := checkSegments(path); err != nil {
			errs = append(errs, fmt.Errorf("path: %w", err))
		}
	}
	if m, ok := params["mount"]; ok {
		if err := checkSegments(m); err != nil {
			errs = append(errs, fmt.Errorf("params.mount: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkSegments checks a mount or secret path. A leading or trailing '/'
// is tolerated (resolve trims it: "/team/api/" names team/api); "..", ".",
// an empty segment inside, '?', '#' or a control character is refused.
func checkSegments(p string) error {
	t := strings.Trim(p, "/")
	if t == "" {
		return fmt.Errorf("%q: no segment", p)
	}
	if err := pathseg.Check(t); err != nil {
		return fmt.Errorf("%w: a Vault path is made of plain segments", err)
	}
	return nil
}
