package auth

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// idp is a real OpenID Provider (zitadel/oidc's op package with its
// example storage and login form) serving on 127.0.0.1:0.
type idp struct {
	issuer string
	t      *testing.T
}

// users of the test provider: username → user, and their groups.
type idpUsers map[string]*storage.User

func (u idpUsers) GetUserByID(id string) *storage.User {
	for _, x := range u {
		if x.ID == id {
			return x
		}
	}
	return nil
}
func (u idpUsers) GetUserByUsername(name string) *storage.User { return u[name] }
func (u idpUsers) ExampleClientID() string                     { return "service" }

// groupStorage adds a "groups" claim to ID tokens.
type groupStorage struct {
	*storage.Storage
	groups map[string][]string // user id → groups
}

func (g groupStorage) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := g.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	ui.AppendClaims("groups", g.groups[req.GetSubject()])
	return nil
}

const idpRedirect = "http://127.0.0.1:1/callback"

func startIDP(t *testing.T) *idp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	users := idpUsers{
		"ana": {ID: "u-ana", Username: "ana", Password: "pw-ana", Email: "Ana@Example.com", EmailVerified: true, PreferredLanguage: language.English},
		"eve": {ID: "u-eve", Username: "eve", Password: "pw-eve", Email: "eve@example.com", EmailVerified: false, PreferredLanguage: language.English},
		"bob": {ID: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", EmailVerified: true, PreferredLanguage: language.English},
		"svc": {ID: "u-svc", Username: "svc", Password: "pw-svc", Email: "Scheduler", EmailVerified: true, PreferredLanguage: language.English},
	}
	st := storage.NewStorageWithClients(users, map[string]*storage.Client{
		"rekey": storage.WebClient("rekey", "rekey-secret", idpRedirect),
		"other": storage.WebClient("other", "other-secret", idpRedirect),
	})
	gs := groupStorage{Storage: st, groups: map[string][]string{"u-ana": {"secops", "unrelated"}, "u-bob": {"nobody"}, "u-svc": {"secops"}}}
	router := exampleop.SetupServer(issuer, gs, nil, false, op.WithAllowInsecure())
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &idp{issuer: issuer, t: t}
}

// login runs the implicit flow through the provider's login form, as a
// browser would, and returns the ID token it issues for client.
func (p *idp) login(client, user, password string) string {
	p.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	q := url.Values{"client_id": {client}, "redirect_uri": {idpRedirect}, "response_type": {"id_token"},
		"scope": {"openid email"}, "nonce": {"n-1"}, "state": {"s-1"}}
	loc := p.follow(c, "GET", p.issuer+"/auth?"+q.Encode(), nil)
	u, _ := url.Parse(loc)
	id := u.Query().Get("authRequestID")
	if id == "" {
		p.t.Fatalf("authorize redirected to %s, want the login form", loc)
	}
	loc = p.follow(c, "POST", p.issuer+"/login/username", url.Values{"username": {user}, "password": {password}, "id": {id}})
	loc = p.follow(c, "GET", p.resolve(loc), nil)
	frag, err := url.ParseQuery(strings.TrimPrefix(loc[strings.Index(loc, "#"):], "#"))
	if err != nil || frag.Get("id_token") == "" {
		p.t.Fatalf("the provider redirected to %s, want an id_token", loc)
	}
	return frag.Get("id_token")
}

func (p *idp) resolve(loc string) string {
	if strings.HasPrefix(loc, "/") {
		return p.issuer + loc
	}
	return loc
}

func (p *idp) follow(c *http.Client, method, u string, form url.Values) string {
	p.t.Helper()
	var resp *http.Response
	var err error
	if form != nil {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("%s %s: %s, want a redirect", method, u, resp.Status)
	}
	return resp.Header.Get("Location")
}

func TestOIDCAgainstARealProvider(t *testing.T) {
	p := startIDP(t)
	other := startIDP(t)
	groups := map[string][]Grant{"secops": {{Role: RoleApprover}, {Role: RoleResponder, Keys: "payments-*"}}}
	dir := NewDirectory(nil)
	verifier := func(issuer, audience string, now func() time.Time) *OIDC {
		return NewOIDC(OIDCConfig{Issuer: issuer, Audience: audience, Groups: groups, Now: now}, dir)
	}
	good := p.login("rekey", "ana", "pw-ana")

	t.Run("valid", func(t *testing.T) {
		pr, err := verifier(p.issuer, "rekey", nil).Authenticate(t.Context(), good)
		if err != nil {
			t.Fatal(err)
		}
		if pr.ID != "ana@example.com" {
			t.Errorf("identity = %q, want the canonical email ana@example.com", pr.ID)
		}
		if !pr.Can(ActDecide, Key{Name: "api"}) || !pr.Can(ActEmergency, Key{Name: "payments-eu"}) || pr.Can(ActEmergency, Key{Name: "api"}) || pr.Can(ActRotate, Key{Name: "api"}) {
			t.Errorf("grants from groups = %v", pr.RoleNames())
		}
	})
	bad := map[string]struct {
		token string
		v     *OIDC
	}{
		"expired":        {good, verifier(p.issuer, "rekey", func() time.Time { return time.Now().Add(3 * time.Hour) })},
		"wrong audience": {p.login("other", "ana", "pw-ana"), verifier(p.issuer, "rekey", nil)},
		"wrong issuer":   {other.login("rekey", "ana", "pw-ana"), verifier(p.issuer, "rekey", nil)},
		"unsigned":       {unsigned(t, good), verifier(p.issuer, "rekey", nil)},
	}
	for name, tt := range bad {
		t.Run(name, func(t *testing.T) {
			if pr, err := tt.v.Authenticate(t.Context(), tt.token); err == nil {
				t.Fatalf("accepted as %+v", pr)
			}
			// And through the Authenticator, as the admin API uses it.
			a := &Authenticator{OIDC: tt.v}
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			if _, err := a.Authenticate(t.Context(), r); err == nil {
				t.Fatal("the authenticator accepted it")
			}
		})
	}
	// An identity rekey records for itself, given by the provider or
	// reached through an alias, is refused: nobody acts as the scheduler
	// or as break-glass.
	t.Run("reserved identities", func(t *testing.T) {
		if pr, err := verifier(p.issuer, "rekey", nil).Authenticate(t.Context(), p.login("rekey", "svc", "pw-svc")); err == nil {
			t.Errorf("the identity %q was accepted", pr.ID)
		}
		aliased := NewOIDC(OIDCConfig{Issuer: p.issuer, Audience: "rekey", Groups: groups}, NewDirectory(map[string]string{"ana@example.com": "break-glass:root@vm"}))
		if pr, err := aliased.Authenticate(t.Context(), good); err == nil {
			t.Errorf("the identity %q was accepted", pr.ID)
		}
	})
	t.Run("no matching group has no role", func(t *testing.T) {
		pr, err := verifier(p.issuer, "rekey", nil).Authenticate(t.Context(), p.login("rekey", "bob", "pw-bob"))
		if err != nil {
			t.Fatal(err)
		}
		if pr.Can(ActRead, Key{Name: "api"}) {
			t.Errorf("bob, in no mapped group, got %v", pr.RoleNames())
		}
	})
}

// unsigned re-encodes a real token's claims with alg "none" and no signature.
func unsigned(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return hdr + "." + parts[1] + "."
}
