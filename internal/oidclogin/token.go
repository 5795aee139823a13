package oidclogin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Entry is one login: the settings it was made with, the ID token the
// CLI presents to the daemon, and the refresh token that renews it.
type Entry struct {
	Settings
	IDToken      string    `json:"id_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"` // of the ID token
}

// String never shows a token.
func (e Entry) String() string {
	return fmt.Sprintf("oidc login at %s as client %s (ID token until %s, refresh token: %t)",
		e.Issuer, e.ClientID, e.Expiry.UTC().Format(time.RFC3339), e.RefreshToken != "")
}

// Margin is how long before its expiry an ID token counts as expired: it
// must still be valid when the daemon checks it.
const Margin = 30 * time.Second

// Fresh reports whether the ID token is still usable at now.
func (e Entry) Fresh(now time.Time) bool { return now.Add(Margin).Before(e.Expiry) }

// ErrLoginNeeded: the cached login is expired and cannot be renewed.
var ErrLoginNeeded = errors.New("the OIDC login has expired: run rekey login")

// Refresh renews e's ID token with its refresh token; the provider may
// rotate the refresh token too.
func Refresh(ctx context.Context, hc *http.Client, e Entry) (*Entry, error) {
	if e.RefreshToken == "" {
		return nil, ErrLoginNeeded
	}
	meta, err := discover(ctx, hc, e.Issuer)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	src := meta.config(e.Settings).TokenSource(ctx, &oauth2.Token{RefreshToken: e.RefreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "access_denied"):
		return nil, fmt.Errorf("%w (the provider refused the refresh token: %v)", ErrLoginNeeded, describe(err))
	case err != nil:
		return nil, fmt.Errorf("oidc: refresh at %s: %w", meta.TokenEndpoint, describe(err))
	}
	return entryFrom(e.Settings, tok, e.RefreshToken)
}

// entryFrom builds the entry of a token answer; oldRefresh is kept when
// the answer carries no new refresh token.
func entryFrom(s Settings, tok *oauth2.Token, oldRefresh string) (*Entry, error) {
	id, _ := tok.Extra("id_token").(string)
	if id == "" {
		return nil, errors.New("oidc: the provider's answer has no id_token (is the openid scope allowed for this client?)")
	}
	exp, err := expiry(id)
	if err != nil {
		return nil, err
	}
	e := &Entry{Settings: s, IDToken: id, RefreshToken: tok.RefreshToken, Expiry: exp}
	if e.RefreshToken == "" {
		e.RefreshToken = oldRefresh
	}
	return e, nil
}

// expiry reads a JWT's exp claim without verifying it: the daemon
// verifies; the CLI only needs to know when to renew.
func expiry(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("oidc: the id_token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, errors.New("oidc: the id_token's payload is not base64url")
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return time.Time{}, errors.New("oidc: the id_token's payload is not JSON")
	}
	n, err := c.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}, errors.New("oidc: the id_token has no exp")
	}
	return time.Unix(n, 0), nil
}

// Token returns the ID token cached for addr, renewed with the refresh
// token (and the renewal cached) when it has expired. ok is false when
// there is no login for addr.
func Token(ctx context.Context, hc *http.Client, c Cache, addr string, now time.Time) (token string, ok bool, err error) {
	e, err := c.Get(addr)
	if err != nil || e == nil {
		return "", false, err
	}
	if e.Fresh(now) {
		return e.IDToken, true, nil
	}
	ne, err := Refresh(ctx, hc, *e)
	if err != nil {
		return "", true, err
	}
	if err := c.Put(addr, ne); err != nil {
		return "", true, err
	}
	return ne.IDToken, true, nil
}
