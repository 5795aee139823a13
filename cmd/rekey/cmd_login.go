package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/internal/oidclogin"
)

// idpTimeout bounds one call to the identity provider.
const idpTimeout = 30 * time.Second

func cmdLogin(c *cli) *cobra.Command {
	var s oidclogin.Settings
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with your identity provider (OIDC device code); the token is cached for REKEY_ADDR",
		Long: `Log in to the daemon at REKEY_ADDR with your organisation's identity
provider, by the OIDC device authorization grant: rekey prints a web address
and a code; open it in any browser, sign in and approve. The ID token (and
the refresh token, if the provider issues one) is cached in your
configuration directory (~/.config/rekey/tokens.json, mode 0600), for this
REKEY_ADDR only, and every verb then uses it when no REKEY_TOKEN or token
file is given; an expired ID token is renewed with the refresh token.

The provider, client id and scopes come from the daemon (GET /v1/auth/oidc,
auth.oidc in its configuration) unless given by flags or
REKEY_OIDC_ISSUER / REKEY_OIDC_CLIENT_ID.`,
		Example: `  export REKEY_ADDR=https://rekey.internal:8081
  rekey login
  rekey whoami      # ana@example.com (via oidc)
  rekey logout`,
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.login(cmd.Context(), s) },
	}
	f := cmd.Flags()
	f.StringVar(&s.Issuer, "issuer", "", "the provider's issuer URL (default: the daemon's auth.oidc.issuer) [$REKEY_OIDC_ISSUER]")
	f.StringVar(&s.ClientID, "client-id", "", "the public client to log in with (default: the daemon's auth.oidc.cli_client_id) [$REKEY_OIDC_CLIENT_ID]")
	f.StringSliceVar(&s.Scopes, "scopes", nil, "scopes to ask for (default: the daemon's, or openid,email,profile,offline_access)")
	return cmd
}

func (c *cli) login(ctx context.Context, s oidclogin.Settings) error {
	addr := strings.TrimSpace(c.getenv("REKEY_ADDR"))
	if addr == "" {
		return usageError{"rekey login logs in to the daemon at REKEY_ADDR: set it (the token is cached for that address only)"}
	}
	if s.Issuer == "" {
		s.Issuer = c.getenv("REKEY_OIDC_ISSUER")
	}
	if s.ClientID == "" {
		s.ClientID = c.getenv("REKEY_OIDC_CLIENT_ID")
	}
	// A client certificate, when configured, is presented here too (an
	// admin listener may require one on every request).
	cert, err := c.clientCertificate(addr)
	if err != nil {
		return err
	}
	anon, err := c.dialAs(addr, "", cert)
	if err != nil {
		return err
	}
	defer anon.Close()
	if s.Issuer == "" || s.ClientID == "" {
		var d oidclogin.Settings
		_, err := anon.get(ctx, "/v1/auth/oidc", &d)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return usageError{fmt.Sprintf("%s has no OIDC login configured (auth.oidc): pass --issuer and --client-id, or use an API token (REKEY_TOKEN)", anon.where)}
		}
		if err != nil {
			return fmt.Errorf("ask %s for its OIDC settings: %w", anon.where, err)
		}
		s.Issuer, s.ClientID = or(s.Issuer, d.Issuer), or(s.ClientID, d.ClientID)
		if len(s.Scopes) == 0 {
			s.Scopes = d.Scopes
		}
	}
	hc := &http.Client{Timeout: idpTimeout}
	e, err := oidclogin.Login(ctx, hc, s, c.showPrompt)
	switch {
	case errors.Is(err, oidclogin.ErrDenied):
		return fmt.Errorf("%w; nothing was cached (%w)", oidclogin.ErrDenied, errRefused)
	case err != nil:
		return err
	}
	// Cache only what the daemon accepts, and say who it takes you for.
	anon.token = e.IDToken
	var who struct {
		ID    string   `json:"id"`
		Via   string   `json:"via"`
		Roles []string `json:"roles"`
	}
	if _, err := anon.get(ctx, "/v1/whoami", &who); err != nil {
		// Nothing is cached, so nothing would ever revoke what the
		// provider issued: revoke its refresh token now.
		if rerr := oidclogin.Revoke(ctx, hc, *e); rerr != nil {
			fmt.Fprintf(c.stderr, "rekey: warning: the refresh token the provider issued could not be revoked: %v\n", rerr)
		}
		return fmt.Errorf("the provider issued a token but %s refused it (nothing was cached; its refresh token was revoked at the provider): %w", anon.where, err)
	}
	cache, err := oidclogin.DefaultCache()
	if err != nil {
		return err
	}
	if err := cache.Put(addr, e); err != nil {
		return err
	}
	roles := strings.Join(who.Roles, ", ")
	if roles == "" {
		roles = "none"
	}
	fmt.Fprintf(c.stderr, "Logged in to %s as %s (via %s), roles: %s.\nThe token is cached in %s until you run rekey logout.\n",
		addr, who.ID, who.Via, roles, cache.Path)
	return nil
}

// showPrompt tells the person where to approve the login (stderr: stdout
// stays for output a script reads).
func (c *cli) showPrompt(p oidclogin.Prompt) {
	fmt.Fprintf(c.stderr, "To log in, open %s in a browser and enter the code %s\n", p.VerificationURI, p.UserCode)
	if p.VerificationURIComplete != "" {
		fmt.Fprintf(c.stderr, "  (or open %s)\n", p.VerificationURIComplete)
	}
	if !p.Expires.IsZero() {
		fmt.Fprintf(c.stderr, "Waiting for approval; the code expires at %s.\n", p.Expires.Local().Format("15:04:05"))
	}
}

func cmdLogout(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the refresh token of the OIDC login cached for REKEY_ADDR and remove the login",
		Args:  args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr := strings.TrimSpace(c.getenv("REKEY_ADDR"))
			if addr == "" {
				return usageError{"rekey logout removes the login cached for REKEY_ADDR: set it"}
			}
			cache, err := oidclogin.DefaultCache()
			if err != nil {
				return err
			}
			// Revoke the refresh token first, so that a copy of the cache
			// renews nothing; the local entry goes whatever the provider says.
			if e, err := cache.Get(addr); err == nil && e != nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), idpTimeout)
				if err := oidclogin.Revoke(ctx, &http.Client{Timeout: idpTimeout}, *e); err != nil {
					fmt.Fprintf(c.stderr, "rekey: could not revoke the refresh token at the provider (%v); it stays valid there until it expires\n", err)
				}
				cancel()
			}
			had, err := cache.Delete(addr)
			if err != nil {
				return err
			}
			if had {
				fmt.Fprintf(c.stderr, "Logged out of %s: its cached token is removed from %s.\n", addr, cache.Path)
			} else {
				fmt.Fprintf(c.stderr, "No login cached for %s.\n", addr)
			}
			return nil
		},
	}
}

// loginToken is the ID token `rekey login` cached for REKEY_ADDR, renewed
// when expired; ok is false when there is none.
func (c *cli) loginToken() (string, bool, error) {
	cache, err := oidclogin.DefaultCache()
	if err != nil {
		return "", false, nil // no configuration directory: no login either
	}
	ctx, cancel := context.WithTimeout(c.ctx, idpTimeout)
	defer cancel()
	t, ok, err := oidclogin.Token(ctx, &http.Client{Timeout: idpTimeout}, cache, c.getenv("REKEY_ADDR"), time.Now())
	switch {
	case errors.Is(err, oidclogin.ErrInsecureCache), errors.Is(err, oidclogin.ErrLoginNeeded):
		return "", true, usageError{err.Error()}
	case err != nil:
		return "", true, fmt.Errorf("renew the OIDC login: %w", err)
	}
	return t, ok, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
