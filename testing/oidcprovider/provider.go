// Package oidcprovider is a real OpenID Provider for tests: zitadel/oidc's
// op package over its example in-memory storage, serving on 127.0.0.1:0,
// with the device authorization grant (RFC 8628) and refresh tokens for a
// public client, and a test-only hand for "the user" who approves or
// denies a user code as the browser step would.
package oidcprovider

import (
	"crypto/sha256"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person the provider knows.
type User struct {
	Username, Password, Email string
	EmailVerified             bool
	Groups                    []string
}

// Options configure a provider.
type Options struct {
	Users []User
	// DeviceClients are the ids of public clients (no secret) allowed the
	// device grant and refresh tokens.
	DeviceClients []string
	// PollInterval is the interval the device authorization answer asks
	// for (whole seconds; default 1s). CodeLifetime bounds a user code
	// (default 1 minute).
	PollInterval, CodeLifetime time.Duration
	// SlowDown is how many token polls of a device are answered
	// slow_down before they are looked at.
	SlowDown int
}

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:port).
	Issuer string

	st *store
}

// Start runs a provider until the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	if o.CodeLifetime == 0 {
		o.CodeLifetime = time.Minute
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	users := userStore{}
	groups := map[string][]string{}
	for _, u := range o.Users {
		id := "u-" + u.Username
		users[u.Username] = &storage.User{ID: id, Username: u.Username, Password: u.Password, Email: u.Email,
			EmailVerified: u.EmailVerified, PreferredLanguage: language.English}
		groups[id] = slices.Clone(u.Groups)
	}
	// The example storage refuses a device authorization for a client it
	// does not hold: it holds a placeholder, and GetClientByClientID
	// answers with the public device client instead.
	placeholders := map[string]*storage.Client{}
	devices := map[string]*deviceClient{}
	for _, id := range o.DeviceClients {
		placeholders[id] = storage.NativeClient(id)
		devices[id] = &deviceClient{id: id}
	}
	st := &store{Storage: storage.NewStorageWithClients(users, placeholders), users: users, groups: groups,
		devices: devices, idLifetime: time.Hour, slowDown: o.SlowDown}
	cfg := &op.Config{
		CryptoKey:             sha256.Sum256([]byte("rekey test provider")),
		GrantTypeRefreshToken: true,
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     o.CodeLifetime,
			PollInterval: o.PollInterval,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: provider, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Provider{Issuer: issuer, st: st}
}

// SetIDTokenLifetime sets the lifetime of the ID tokens issued from now
// on (default one hour), by a device grant or a refresh.
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.st.mu.Lock()
	p.st.idLifetime = d
	p.st.mu.Unlock()
}

// Refreshes counts refresh token grants presented to the provider.
func (p *Provider) Refreshes() int {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.refreshes
}

// Revocations counts tokens revoked at the provider (RFC 7009).
func (p *Provider) Revocations() int {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.revoked
}

// Polls are the times the token endpoint was polled for a device code.
func (p *Provider) Polls() []time.Time {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return slices.Clone(p.st.polls)
}

// UserCodes lists the user codes issued so far, oldest first.
func (p *Provider) UserCodes() []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return slices.Clone(p.st.codes)
}

// WaitUserCode waits until the n-th user code (from 1) is issued and
// returns it, failing the test at the deadline.
func (p *Provider) WaitUserCode(t testing.TB, n int, deadline time.Time) string {
	t.Helper()
	for {
		if codes := p.UserCodes(); len(codes) >= n {
			return codes[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider issued no user code #%d before the deadline", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Approve is the person signed in as username approving userCode in the
// browser.
func (p *Provider) Approve(t testing.TB, userCode, username string) {
	t.Helper()
	u := p.st.users[username]
	if u == nil {
		t.Fatalf("oidcprovider: no user %q", username)
	}
	if err := p.st.CompleteDeviceAuthorization(t.Context(), userCode, u.ID); err != nil {
		t.Fatalf("oidcprovider: approve %s: %v", userCode, err)
	}
}

// Deny is the person denying userCode in the browser.
func (p *Provider) Deny(t testing.TB, userCode string) {
	t.Helper()
	if _, err := p.st.GetDeviceAuthorizationByUserCode(t.Context(), userCode); err != nil {
		t.Fatalf("oidcprovider: deny %s: %v", userCode, err)
	}
	if err := p.st.DenyDeviceAuthorization(t.Context(), userCode); err != nil {
		t.Fatalf("oidcprovider: deny %s: %v", userCode, err)
	}
}
