// Package probe checks that a credential works by using it: one HTTP
// request to a configured URL with the secret in a header rendered from a
// template ("Bearer {{.Secret}}"), and a rule on the answer's status
// (expect: [200], or not: [401]). The http and manual issuers share it for
// their verify step. The secret appears only in the request header: errors
// name the request and the status, never the header, the body or the value.
package probe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
	"github.com/rekeyhq/rekey/rotator"
)

// Defaults of a probe.
const (
	DefaultMethod  = http.MethodGet
	DefaultHeader  = "Authorization"
	DefaultValue   = "Bearer {{.Secret}}"
	DefaultTimeout = 10 * time.Second
)

// Config describes the probe, in YAML under `verify:`.
type Config struct {
	// Method of the request; default GET.
	Method string `koanf:"method"`
	// URL is a template over {{.Key}} and {{.Params.x}}; an issuer with a
	// base_url resolves a relative URL ("/v1/clusters") against it.
	URL string `koanf:"url"`
	// Header carries the secret; default Authorization.
	Header string `koanf:"header"`
	// Value is the header's value, a template that must use {{.Secret}};
	// default "Bearer {{.Secret}}".
	Value string `koanf:"value"`
	// Headers are extra, non-secret headers (values are templates like URL).
	Headers map[string]string `koanf:"headers"`
	// Expect lists the statuses that pass (codes, "2xx", "200-204").
	Expect webapi.Statuses `koanf:"expect"`
	// Not lists the statuses that fail; any other passes. Set at most one
	// of expect and not; with neither, any 2xx passes. Either way 429 and
	// 5xx outside expect say nothing about the key and are retryable.
	Not webapi.Statuses `koanf:"not"`
	// Timeout of the request; default 10s (the http issuer's own timeout).
	Timeout time.Duration `koanf:"timeout"`
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `koanf:"ca_file"`
}

// Validate reports every configuration error, each starting with the
// field name (the caller prefixes "verify.").
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if _, err := tmpl.Parse("url", c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.Method != "" && !webapi.ValidToken(c.Method) {
		errs = append(errs, fmt.Errorf("method: %q is not an HTTP method", c.Method))
	}
	if c.Header != "" && !webapi.ValidToken(c.Header) {
		errs = append(errs, fmt.Errorf("header: %q is not a header name", c.Header))
	}
	if c.Value != "" {
		if _, err := tmpl.Parse("value", c.Value); err != nil {
			errs = append(errs, fmt.Errorf("value: %w", err))
		} else if !strings.Contains(c.Value, ".Secret") {
			errs = append(errs, errors.New("value: must use {{.Secret}}, the credential under test"))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		v := c.Headers[name]
		if !webapi.ValidToken(name) {
			errs = append(errs, fmt.Errorf("headers: %q is not a header name", name))
		}
		if strings.Contains(v, ".Secret") {
			errs = append(errs, fmt.Errorf("headers.%s: the secret goes only in header/value", name))
		} else if _, err := tmpl.Parse("header", v); err != nil {
			errs = append(errs, fmt.Errorf("headers.%s: %w", name, err))
		}
	}
	if strings.Contains(c.URL, ".Secret") {
		errs = append(errs, errors.New("url: the secret goes only in header/value, never in the URL"))
	}
	if _, err := c.Expect.Parse("expect"); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Not.Parse("not"); err != nil {
		errs = append(errs, err)
	}
	if len(c.Expect) > 0 && len(c.Not) > 0 {
		errs = append(errs, errors.New("expect: set only one of expect and not"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

// Probe is a configured check.
type Probe struct {
	what    string
	method  string
	url     *template.Template
	header  string
	value   *template.Template
	headers map[string]*template.Template
	expect  webapi.StatusSet
	not     webapi.StatusSet
	base    *url.URL
	client  *http.Client
	now     func() time.Time
}

// New builds a probe. what names the issuer in errors ("http", "manual");
// base, when not nil, resolves relative URLs.
func New(cfg Config, what string, base *url.URL) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, webapi.Prefix("verify", err)
	}
	p := &Probe{
		what:    what,
		method:  strings.ToUpper(or(cfg.Method, DefaultMethod)),
		header:  textproto.CanonicalMIMEHeaderKey(or(cfg.Header, DefaultHeader)),
		headers: map[string]*template.Template{},
		base:    base,
		now:     time.Now,
	}
	p.url, _ = tmpl.Parse("verify.url", cfg.URL)
	p.value, _ = tmpl.Parse("verify.value", or(cfg.Value, DefaultValue))
	for name, v := range cfg.Headers {
		p.headers[name], _ = tmpl.Parse("verify.headers."+name, v)
	}
	p.expect, _ = cfg.Expect.Parse("expect")
	p.not, _ = cfg.Not.Parse("not")
	if p.expect.IsEmpty() && p.not.IsEmpty() {
		p.expect = webapi.MustParse("2xx")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	client, err := webapi.NewClient(timeout, cfg.CAFile)
	if err != nil {
		return nil, webapi.Prefix("verify", err)
	}
	p.client = client
	return p, nil
}

type data struct {
	Key    string
	Params map[string]any
}

type secretData struct {
	Key    string
	Params map[string]any
	Secret string
}

// Check probes secret for key. It returns nil when the answer passes; a
// retryable error for transport failures, 429 and 5xx (unless expected);
// otherwise a permanent error: reason auth for 401/403 ("the credential was
// refused"), invalid for anything else.
func (p *Probe) Check(ctx context.Context, key string, secret rotator.Secret, params map[string]any) error {
	what := fmt.Sprintf("%s: verify %s", p.what, key)
	if secret.IsZero() {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: empty secret", what))
	}
	d := data{Key: key, Params: params}
	raw, err := tmpl.Render(p.url, d)
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: verify.url does not render a valid URL", what))
	}
	if p.base != nil {
		u = p.base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: verify.url must render an absolute http(s) URL", what))
	}
	req, err := http.NewRequestWithContext(ctx, p.method, u.String(), nil)
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: build request: invalid method or URL", what))
	}
	for name, t := range p.headers {
		v, err := tmpl.Render(t, d)
		if err != nil {
			return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
		}
		req.Header.Set(name, v)
	}
	// The one place the secret is revealed: the header of this request. A
	// render error would not quote it, but is reported without detail
	// anyway.
	v, err := tmpl.Render(p.value, secretData{Key: key, Params: params, Secret: secret.Reveal()})
	if err != nil || strings.ContainsAny(v, "\r\n") {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: verify.value does not render a valid header value", what))
	}
	req.Header.Set(p.header, v)

	resp, err := webapi.Send(p.client, req, what)
	if err != nil {
		return err
	}
	if p.passes(resp.Status) {
		return nil
	}
	e := &webapi.StatusError{What: what, Method: req.Method, URL: webapi.Redact(req.URL), Status: resp.Status, Hint: p.hint(resp.Status)}
	return webapi.Classify(e, resp.Header, webapi.DefaultRetry, p.now())
}

func (p *Probe) passes(status int) bool {
	if !p.expect.IsEmpty() {
		return p.expect.Has(status)
	}
	return !p.not.Has(status) && !webapi.DefaultRetry.Has(status)
}

func (p *Probe) hint(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "the credential was refused"
	case status == http.StatusForbidden:
		return "the credential lacks a permission"
	case webapi.DefaultRetry.Has(status):
		return "inconclusive"
	case !p.expect.IsEmpty():
		return "expected " + p.expect.String()
	}
	return "refused by not: " + p.not.String()
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
