package oidcprovider

import (
	"context"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// store is the example storage with what a device login needs: public
// device clients, refresh tokens bound to the device's client, a groups
// claim, and a record of the user codes and refreshes for tests.
type store struct {
	*storage.Storage
	users   userStore
	groups  map[string][]string // user id → groups
	devices map[string]*deviceClient

	mu         sync.Mutex
	idLifetime time.Duration
	codes      []string
	refreshes  int
	revoked    int
	slowDown   int
	polls      []time.Time
}

// GetDeviceAuthorizatonState records the poll, and answers slow_down
// (the op package's meaning of context.DeadlineExceeded) while slowDown
// lasts.
func (s *store) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	s.polls = append(s.polls, time.Now())
	slow := s.slowDown > 0
	if slow {
		s.slowDown--
	}
	s.mu.Unlock()
	if slow {
		return nil, context.DeadlineExceeded
	}
	return s.Storage.GetDeviceAuthorizatonState(ctx, clientID, deviceCode)
}

func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if c, ok := s.devices[id]; ok {
		return &deviceClient{id: c.id, lifetime: s.lifetime()}, nil
	}
	return s.Storage.GetClientByClientID(ctx, id)
}

func (s *store) lifetime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idLifetime
}

func (s *store) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if err := s.Storage.StoreDeviceAuthorization(ctx, clientID, deviceCode, userCode, expires, scopes); err != nil {
		return err
	}
	s.mu.Lock()
	s.codes = append(s.codes, userCode)
	s.mu.Unlock()
	return nil
}

// CreateAccessAndRefreshTokens binds the refresh token of a device grant
// to its client (the example storage knows only its own request types
// and would issue it to no client, so that refreshing it fails).
func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if d, ok := req.(*op.DeviceAuthorizationState); ok {
		req = &storage.AuthRequest{ApplicationID: d.ClientID, UserID: d.Subject, Scopes: d.Scopes}
	}
	return s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
}

func (s *store) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	s.refreshes++
	s.mu.Unlock()
	return s.Storage.TokenRequestByRefreshToken(ctx, token)
}

// SetUserinfoFromRequest adds the groups claim.
func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	ui.AppendClaims("groups", s.groups[req.GetSubject()])
	return nil
}

// userStore: username → user.
type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User {
	for _, x := range u {
		if x.ID == id {
			return x
		}
	}
	return nil
}
func (u userStore) GetUserByUsername(name string) *storage.User { return u[name] }
func (u userStore) ExampleClientID() string                     { return "" }

// deviceClient is a public (native) client allowed the device grant and
// refresh tokens, whose ID tokens carry the userinfo claims (email).
type deviceClient struct {
	id       string
	lifetime time.Duration
}

func (c *deviceClient) GetID() string                       { return c.id }
func (c *deviceClient) RedirectURIs() []string              { return nil }
func (c *deviceClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *deviceClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *deviceClient) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodNone }
func (c *deviceClient) ResponseTypes() []zoidc.ResponseType { return nil }
func (c *deviceClient) GrantTypes() []zoidc.GrantType {
	return []zoidc.GrantType{zoidc.GrantTypeDeviceCode, zoidc.GrantTypeRefreshToken}
}
func (c *deviceClient) LoginURL(string) string               { return "" }
func (c *deviceClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *deviceClient) IDTokenLifetime() time.Duration       { return c.lifetime }
func (c *deviceClient) DevMode() bool                        { return false }
func (c *deviceClient) IsScopeAllowed(string) bool           { return false }
func (c *deviceClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *deviceClient) ClockSkew() time.Duration             { return 0 }
func (c *deviceClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *deviceClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

var (
	_ op.Storage                    = (*store)(nil)
	_ op.DeviceAuthorizationStorage = (*store)(nil)
	_ op.Client                     = (*deviceClient)(nil)
)

// RevokeToken counts the revocations the provider carried out (RFC 7009).
func (s *store) RevokeToken(ctx context.Context, tokenOrTokenID, userID, clientID string) *zoidc.Error {
	err := s.Storage.RevokeToken(ctx, tokenOrTokenID, userID, clientID)
	if err == nil {
		s.mu.Lock()
		s.revoked++
		s.mu.Unlock()
	}
	return err
}
