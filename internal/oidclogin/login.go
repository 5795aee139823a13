// Package oidclogin is the CLI side of OIDC login: the device
// authorization grant (RFC 8628) against the organisation's provider, a
// per-user cache of the ID token (and refresh token) keyed by the daemon's
// address, and the refresh of an expired ID token. The daemon verifies
// every token; nothing here trusts a token's content beyond reading when
// it expires.
package oidclogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Settings say which provider and client a login uses.
type Settings struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// DefaultScopes are asked for when none are given: the identity (email),
// and a refresh token so that an expired ID token is renewed without a
// new login.
var DefaultScopes = []string{"openid", "email", "profile", "offline_access"}

// Prompt is what the person must do: open the verification URI (or the
// complete one, which carries the code) and enter the user code.
type Prompt struct {
	VerificationURI         string
	VerificationURIComplete string
	UserCode                string
	Expires                 time.Time
}

var (
	// ErrDenied: the person (or the provider) refused the login.
	ErrDenied = errors.New("the login was denied at the identity provider")
	// ErrCodeExpired: nobody approved the code before it expired.
	ErrCodeExpired = errors.New("the login code expired before it was approved; run rekey login again")
)

// Login runs the device authorization grant: it asks the provider for a
// code, shows it, polls the token endpoint (at the interval the provider
// asks for, slower on slow_down) until the person approves, denies, or the
// code expires, and returns the entry to cache.
func Login(ctx context.Context, hc *http.Client, s Settings, show func(Prompt)) (*Entry, error) {
	if len(s.Scopes) == 0 {
		s.Scopes = DefaultScopes
	}
	if !slices.Contains(s.Scopes, "openid") {
		s.Scopes = append([]string{"openid"}, s.Scopes...)
	}
	meta, err := discover(ctx, hc, s.Issuer)
	if err != nil {
		return nil, err
	}
	if meta.DeviceEndpoint == "" {
		return nil, fmt.Errorf("oidc: the provider %s offers no device authorization endpoint (device_authorization_endpoint): "+
			"enable the device grant for client %q, or pass an ID token with REKEY_TOKEN", s.Issuer, s.ClientID)
	}
	cfg := meta.config(s)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("oidc: device authorization at %s: %w", meta.DeviceEndpoint, describe(err))
	}
	show(Prompt{VerificationURI: da.VerificationURI, VerificationURIComplete: da.VerificationURIComplete,
		UserCode: da.UserCode, Expires: da.Expiry})
	tok, err := cfg.DeviceAccessToken(ctx, da)
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return nil, ErrDenied
	case errors.As(err, &re) && re.ErrorCode == "expired_token",
		errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil, ErrCodeExpired
	case err != nil:
		return nil, fmt.Errorf("oidc: token endpoint %s: %w", meta.TokenEndpoint, describe(err))
	}
	return entryFrom(s, tok, "")
}

// metadata is the part of the provider's discovery document a login uses.
type metadata struct {
	Issuer         string `json:"issuer"`
	DeviceEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint  string `json:"token_endpoint"`
	// RevocationEndpoint (RFC 7009) is optional.
	RevocationEndpoint string `json:"revocation_endpoint"`
}

func (m metadata) config(s Settings) *oauth2.Config {
	return &oauth2.Config{ClientID: s.ClientID, Scopes: s.Scopes, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: m.DeviceEndpoint, TokenURL: m.TokenEndpoint,
		// A public client: its id goes in the form, there is no secret.
		AuthStyle: oauth2.AuthStyleInParams,
	}}
}

// discover reads issuer's /.well-known/openid-configuration.
func discover(ctx context.Context, hc *http.Client, issuer string) (metadata, error) {
	var m metadata
	if err := secureURL(issuer); err != nil {
		return m, fmt.Errorf("oidc: issuer: %w", err)
	}
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return m, fmt.Errorf("oidc: issuer %s: %w", issuer, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("oidc: discover %s: %w", issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("oidc: discover %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("oidc: discover %s: %w", u, err)
	}
	if strings.TrimRight(m.Issuer, "/") != strings.TrimRight(issuer, "/") {
		return m, fmt.Errorf("oidc: the discovery document of %s names the issuer %q", issuer, m.Issuer)
	}
	for _, e := range []string{m.TokenEndpoint, m.DeviceEndpoint, m.RevocationEndpoint} {
		if e == "" {
			continue
		}
		if err := secureURL(e); err != nil {
			return m, fmt.Errorf("oidc: discovery document of %s: %w", issuer, err)
		}
	}
	if m.TokenEndpoint == "" {
		return m, fmt.Errorf("oidc: the discovery document of %s names no token_endpoint", issuer)
	}
	return m, nil
}

// secureURL accepts https, and http only to a loopback host (a provider
// on this machine): codes and tokens must not cross a network in clear.
func secureURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%s: only https (or http to this machine) carries a login", u.Redacted())
}

// describe keeps the provider's error code and description and drops the
// raw answer (which could echo what was sent).
func describe(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if msg == "" && re.Response != nil {
			msg = re.Response.Status
		}
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return errors.New(msg)
	}
	return err
}
