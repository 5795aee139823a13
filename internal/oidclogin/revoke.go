package oidclogin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// errNoRevocation: the provider names no revocation endpoint.
var errNoRevocation = fmt.Errorf("the provider names no revocation_endpoint")

// Revoke asks the provider to revoke e's refresh token (RFC 7009), so
// that a copy of the cache renews nothing. An entry without a refresh
// token has nothing to revoke: its ID token cannot be revoked and expires
// on its own.
func Revoke(ctx context.Context, hc *http.Client, e Entry) error {
	if e.RefreshToken == "" {
		return nil
	}
	meta, err := discover(ctx, hc, e.Issuer)
	if err != nil {
		return err
	}
	if meta.RevocationEndpoint == "" {
		return errNoRevocation
	}
	form := url.Values{"token": {e.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {e.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("oidc: revoke at %s: %w", meta.RevocationEndpoint, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidc: revoke at %s: %s", meta.RevocationEndpoint, resp.Status)
	}
	return nil
}
