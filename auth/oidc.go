package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCConfig configures bearer tokens from the organisation's identity
// provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document names the
	// JWKS whose keys must sign the token.
	Issuer string
	// Audience is the client id the token must be issued for (aud).
	Audience string
	// CLIClientID, when set, is a second client id a token may be issued
	// for: the public client `rekey login` uses when it is not Audience.
	CLIClientID string
	// IdentityClaim gives the person's identity (default "email"; with
	// email, email_verified must not be false).
	IdentityClaim string
	// GroupsClaim lists the person's groups (default "groups").
	GroupsClaim string
	// Groups maps a group to the grants its members receive.
	Groups map[string][]Grant
	// HTTPClient reaches the provider (default http.DefaultClient).
	HTTPClient *http.Client
	// Now is the clock tokens are checked against (tests).
	Now func() time.Time
}

// OIDC verifies ID tokens with go-oidc. Discovery happens on first use and
// is retried until it succeeds, so the daemon starts while the provider is
// down.
type OIDC struct {
	cfg OIDCConfig
	dir *Directory

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// NewOIDC returns a verifier for cfg; identities go through dir.
func NewOIDC(cfg OIDCConfig, dir *Directory) *OIDC {
	if cfg.IdentityClaim == "" {
		cfg.IdentityClaim = "email"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &OIDC{cfg: cfg, dir: dir}
}

func (o *OIDC) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	// The provider's key set fetches keys with this context later on: it
	// must outlive the request that triggered discovery.
	pctx := oidc.ClientContext(context.WithoutCancel(ctx), o.cfg.HTTPClient)
	dctx, cancel := context.WithTimeout(pctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", o.cfg.Issuer, err)
	}
	// NewProvider bound the key set to dctx's client; rebuild it on pctx so
	// key refreshes after this call still work.
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document: %w", err)
	}
	ks := oidc.NewRemoteKeySet(pctx, meta.JWKS)
	vc := &oidc.Config{ClientID: o.cfg.Audience, Now: o.cfg.Now, SupportedSigningAlgs: meta.Algs}
	if o.cfg.CLIClientID != "" && o.cfg.CLIClientID != o.cfg.Audience {
		// Two accepted audiences: go-oidc checks one, Authenticate checks
		// that aud holds either.
		vc.SkipClientIDCheck = true
	}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, ks, vc)
	return o.verifier, nil
}

// Authenticate verifies raw (signature against the discovered JWKS,
// issuer, audience, expiry) and returns its principal.
func (o *OIDC) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	v, err := o.verifierFor(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if !o.audienceOK(tok.Audience) {
		return nil, fmt.Errorf("oidc: expected audience %q got %q", o.cfg.Audience, tok.Audience)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("oidc: claims: %w", err)
	}
	id, _ := claims[o.cfg.IdentityClaim].(string)
	if Canonical(id) == "" {
		return nil, fmt.Errorf("oidc: the token has no %q claim", o.cfg.IdentityClaim)
	}
	if o.cfg.IdentityClaim == "email" {
		if v, ok := claims["email_verified"].(bool); ok && !v {
			return nil, errors.New("oidc: the token's email is not verified")
		}
	}
	p := &Principal{ID: o.dir.Canonical(id), Via: "oidc"}
	if err := Reserved(p.ID); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	groups, _ := claims[o.cfg.GroupsClaim].([]any)
	for _, g := range groups {
		if s, ok := g.(string); ok {
			p.Grants = append(p.Grants, o.cfg.Groups[s]...)
		}
	}
	return p, nil
}

// audienceOK reports whether aud holds the audience or the CLI's client
// id (go-oidc checked the audience already unless there are two).
func (o *OIDC) audienceOK(aud []string) bool {
	return slices.Contains(aud, o.cfg.Audience) || o.cfg.CLIClientID != "" && slices.Contains(aud, o.cfg.CLIClientID)
}
