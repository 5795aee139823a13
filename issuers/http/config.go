package http

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
)

// Config describes a SaaS admin API. See examples/kubeadapt-issuer.yaml for
// a complete, commented instance. Lists (status sets, revoked_statuses) are
// left empty by DefaultConfig and defaulted by New, so that a YAML list
// replaces the default instead of being merged into it element by element.
type Config struct {
	// BaseURL of the admin API; request paths are resolved against it.
	BaseURL string `koanf:"base_url"`
	// Timeout of each request; default 10s.
	Timeout time.Duration `koanf:"timeout"`
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `koanf:"ca_file"`
	// Auth is the admin credential, sent as a header on every admin request.
	Auth Auth `koanf:"auth"`
	// SecretHeaders are further secret headers, for APIs that want two
	// (an API key and an application key).
	SecretHeaders []Auth `koanf:"secret_headers"`
	// Headers are sent on every admin request; values are templates over
	// the request data. They must not carry secrets (use auth).
	Headers map[string]string `koanf:"headers"`

	Mint   Mint          `koanf:"mint"`
	Revoke Revoke        `koanf:"revoke"`
	List   List          `koanf:"list"`
	Verify *probe.Config `koanf:"verify"`
}

// Auth is a secret header: Header: Prefix + the token read from TokenEnv or
// TokenFile (re-read on every request, so a rotated file is picked up).
type Auth struct {
	Header    string `koanf:"header"` // default Authorization
	Prefix    string `koanf:"prefix"` // e.g. "Bearer "
	TokenEnv  string `koanf:"token_env"`
	TokenFile string `koanf:"token_file"`
}

// Ref is where the token is read from.
func (a Auth) Ref() secretref.Ref { return secretref.Ref{Env: a.TokenEnv, File: a.TokenFile} }

// Request is one admin API call. Path, header values and Body are Go
// templates over {{.Key}} {{.Name}} {{.Generation}} {{.ID}} {{.RotationID}}
// {{.PreviousID}} {{.Params.x}} and, in mint, {{.IdempotencyKey}} (which
// requires mint.idempotency_window), with the functions json, pathescape, list
// and the built-in urlquery. Path is relative to base_url or an absolute URL.
// In Path, the ids the issuer returned ({{.ID}}, {{.PreviousID}}) always
// print escaped as one path segment (pathescape and urlquery escape them
// once); a path that renders a "." or ".." segment is refused.
type Request struct {
	Method  string            `koanf:"method"`
	Path    string            `koanf:"path"`
	Headers map[string]string `koanf:"headers"`
	// Body is a JSON template; encode every value with json:
	// {"name": {{json .Name}}}. It must render valid JSON.
	Body string `koanf:"body"`
	// Success lists the statuses that mean done (codes, "2xx", ranges).
	Success webapi.Statuses `koanf:"success"`
	// Retry lists the statuses worth retrying; default 429 and 5xx.
	Retry webapi.Statuses `koanf:"retry"`
}

// Mint creates a credential. Default method POST, success 200 and 201.
type Mint struct {
	Request `koanf:",squash"`
	// IDPath and SecretPath locate the issuer's id and the secret in the
	// JSON answer (dotted: "data.id", "items.0.secret").
	IDPath     string `koanf:"id_path"`
	SecretPath string `koanf:"secret_path"`
	// IdempotencyKeyHeader, when set (e.g. Idempotency-Key), sends the
	// mint intent's idempotency key in this header, as an RFC 8941 string
	// (draft-ietf-httpapi-idempotency-key-header): the same on every
	// attempt of one intent, after a crash too. Set it only if the API
	// promises to answer a repeated key with the credential it created
	// the first time (the same secret), not a second one. The key is
	// rekey-<rotation id>-v<generation>; it carries no secret. Empty: off.
	IdempotencyKeyHeader string `koanf:"idempotency_key_header"`
	// IdempotencyWindow is how long the API keeps a key (its documented
	// expiry); default 24h with IdempotencyKeyHeader. Required when a mint
	// template sends {{.IdempotencyKey}} instead (in the body, a query
	// or a header): rekey then treats the API as honouring the key. A
	// mint resumed later than that is checked for a duplicate by name
	// (list).
	IdempotencyWindow time.Duration `koanf:"idempotency_window"`
}

// Revoke revokes a credential by {{.ID}}. Default method DELETE, success
// 200, 202 and 204.
type Revoke struct {
	Request `koanf:",squash"`
	// AlreadyRevoked lists the statuses meaning "already revoked", treated
	// as success (e.g. 409). A 404 here also hides a wrong path: add it only
	// if the API forgets revoked keys.
	AlreadyRevoked webapi.Statuses `koanf:"already_revoked"`
}

// List lists credentials by {{.Name}}, to find what a crash left behind.
// Default method GET, success 200. Pagination is not followed: filter by
// name on the server.
type List struct {
	Request `koanf:",squash"`
	// ItemsPath locates the array of credentials ("" when the answer is the
	// array); IDPath, NamePath and StatusPath are relative to an item.
	ItemsPath  string `koanf:"items_path"`
	IDPath     string `koanf:"id_path"`
	NamePath   string `koanf:"name_path"`
	StatusPath string `koanf:"status_path"`
	// RevokedStatuses are the StatusPath values of dead credentials;
	// default ["revoked"]. Any other value counts as live.
	RevokedStatuses []string `koanf:"revoked_statuses"`
}

// Defaults.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultHeader            = "Authorization"
	DefaultIdempotencyWindow = 24 * time.Hour
)

// Default status sets, applied by New when a set is not configured.
var (
	DefaultMintSuccess     = webapi.MustParse(200, 201)
	DefaultRevokeSuccess   = webapi.MustParse(200, 202, 204)
	DefaultListSuccess     = webapi.MustParse(200)
	DefaultRevokedStatuses = []string{"revoked"}
)

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	c := Config{Timeout: DefaultTimeout, Auth: Auth{Header: DefaultHeader}}
	c.Mint.Method = "POST"
	c.Revoke.Method = "DELETE"
	c.List.Method = "GET"
	return c
}

// withDefaults fills the scalar defaults a hand-built Config may lack.
func (c Config) withDefaults() Config {
	c.Mint.Method = strings.ToUpper(or(c.Mint.Method, "POST"))
	c.Revoke.Method = strings.ToUpper(or(c.Revoke.Method, "DELETE"))
	c.List.Method = strings.ToUpper(or(c.List.Method, "GET"))
	c.Auth.Header = or(c.Auth.Header, DefaultHeader)
	c.SecretHeaders = slices.Clone(c.SecretHeaders)
	for i := range c.SecretHeaders {
		c.SecretHeaders[i].Header = or(c.SecretHeaders[i].Header, DefaultHeader)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Mint.IdempotencyKeyHeader != "" && c.Mint.IdempotencyWindow == 0 {
		// A key in a template has no default: validate asks for the
		// window, the operator's statement that the API honours it.
		c.Mint.IdempotencyWindow = DefaultIdempotencyWindow
	}
	return c
}

// Validate reports every configuration error, each starting with its field
// path ("mint.id_path: required").
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if u, err := url.Parse(c.BaseURL); c.BaseURL == "" {
		add(errors.New("base_url: required"))
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add(errors.New("base_url: must be an http(s) URL"))
	}
	if c.Timeout < 0 {
		add(errors.New("timeout: must not be negative"))
	}
	add(webapi.Prefix("auth", c.Auth.validate()))
	secretNames := map[string]bool{strings.ToLower(or(c.Auth.Header, DefaultHeader)): true}
	for i, a := range c.SecretHeaders {
		add(webapi.Prefix(fmt.Sprintf("secret_headers[%d]", i), a.validate()))
		secretNames[strings.ToLower(or(a.Header, DefaultHeader))] = true
	}
	add(validateHeaders("headers", c.Headers, secretNames))

	add(webapi.Prefix("mint", c.Mint.validate(secretNames)))
	if c.Mint.IDPath == "" {
		add(errors.New("mint.id_path: required"))
	}
	if c.Mint.SecretPath == "" {
		add(errors.New("mint.secret_path: required"))
	}
	add(validPath("mint.id_path", c.Mint.IDPath))
	add(validPath("mint.secret_path", c.Mint.SecretPath))
	add(c.validateIdempotency(secretNames))

	add(webapi.Prefix("revoke", c.Revoke.validate(secretNames)))
	if _, err := c.Revoke.AlreadyRevoked.Parse("revoke.already_revoked"); err != nil {
		add(err)
	}
	if c.Revoke.Path != "" && !strings.Contains(c.Revoke.Path+c.Revoke.Body, ".ID") {
		add(errors.New("revoke.path: must use {{.ID}} (in the path or the body) to name the credential"))
	}

	add(webapi.Prefix("list", c.List.validate(secretNames)))
	add(validPath("list.items_path", c.List.ItemsPath))
	for _, f := range [][2]string{{"id_path", c.List.IDPath}, {"name_path", c.List.NamePath}} {
		if f[1] == "" {
			add(fmt.Errorf("list.%s: required", f[0]))
		}
		add(validPath("list."+f[0], f[1]))
	}
	add(validPath("list.status_path", c.List.StatusPath))

	if c.Verify != nil {
		add(webapi.Prefix("verify", c.Verify.Validate()))
	}
	return errors.Join(errs...)
}

func (a Auth) validate() error {
	var errs []error
	if a.Header != "" && !webapi.ValidToken(a.Header) {
		errs = append(errs, fmt.Errorf("header: %q is not a header name", a.Header))
	}
	if strings.ContainsAny(a.Prefix, "\r\n") {
		errs = append(errs, errors.New("prefix: must not contain a line break"))
	}
	if err := a.Ref().Validate("token", true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r Request) validate(secretNames map[string]bool) error {
	var errs []error
	if r.Method == "" {
		errs = append(errs, errors.New("method: required"))
	} else if !webapi.ValidToken(r.Method) {
		errs = append(errs, fmt.Errorf("method: %q is not an HTTP method", r.Method))
	}
	if r.Path == "" {
		errs = append(errs, errors.New("path: required"))
	} else if _, err := tmpl.Parse("path", r.Path); err != nil {
		errs = append(errs, fmt.Errorf("path: %w", err))
	}
	if r.Body != "" {
		if _, err := tmpl.Parse("body", r.Body); err != nil {
			errs = append(errs, fmt.Errorf("body: %w", err))
		}
	}
	if err := validateHeaders("headers", r.Headers, secretNames); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.Success.Parse("success"); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.Retry.Parse("retry"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateHeaders(field string, h map[string]string, secretNames map[string]bool) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(h)) {
		v := h[name]
		switch {
		case !webapi.ValidToken(name):
			errs = append(errs, fmt.Errorf("%s: %q is not a header name", field, name))
		case secretNames[strings.ToLower(name)]:
			errs = append(errs, fmt.Errorf("%s.%s: set by auth or secret_headers, not here", field, name))
		default:
			if _, err := tmpl.Parse("header", v); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", field, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func validPath(field, p string) error {
	if err := webapi.ValidPath(p); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
