package auth

import (
	"net/http"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/oidclogin"
	"github.com/rekeyhq/rekey/testing/oidcprovider"
)

// deviceToken is the ID token a device login (rekey login) as ana gets
// for client from p.
func deviceToken(t *testing.T, p *oidcprovider.Provider, client string) string {
	t.Helper()
	done := make(chan *oidclogin.Entry, 1)
	n := len(p.UserCodes()) + 1 // before the login can ask for a code
	go func() {
		e, err := oidclogin.Login(t.Context(), &http.Client{Timeout: 10 * time.Second},
			oidclogin.Settings{Issuer: p.Issuer, ClientID: client}, func(oidclogin.Prompt) {})
		if err != nil {
			t.Error(err)
		}
		done <- e
	}()
	p.Approve(t, p.WaitUserCode(t, n, time.Now().Add(30*time.Second)), "ana")
	e := <-done
	if e == nil {
		t.FailNow()
	}
	return e.IDToken
}

// A token from the CLI's own client (auth.oidc.cli_client_id) is accepted
// besides the audience's; a third client's is not, and without
// cli_client_id neither is the CLI's.
func TestOIDCCLIClientAudience(t *testing.T) {
	p := oidcprovider.Start(t, oidcprovider.Options{
		Users:         []oidcprovider.User{{Username: "ana", Password: "pw", Email: "Ana@Example.com", EmailVerified: true, Groups: []string{"secops"}}},
		DeviceClients: []string{"rekey", "rekey-cli", "other"},
	})
	groups := map[string][]Grant{"secops": {{Role: RoleApprover}}}
	with := NewOIDC(OIDCConfig{Issuer: p.Issuer, Audience: "rekey", CLIClientID: "rekey-cli", Groups: groups}, NewDirectory(nil))
	without := NewOIDC(OIDCConfig{Issuer: p.Issuer, Audience: "rekey", Groups: groups}, NewDirectory(nil))
	tokens := map[string]string{}
	for _, c := range []string{"rekey", "rekey-cli", "other"} {
		tokens[c] = deviceToken(t, p, c)
	}
	for name, tt := range map[string]struct {
		v      *OIDC
		client string
		ok     bool
	}{
		"audience, cli client set":    {with, "rekey", true},
		"cli client":                  {with, "rekey-cli", true},
		"third client":                {with, "other", false},
		"cli client, none configured": {without, "rekey-cli", false},
		"audience, none configured":   {without, "rekey", true},
	} {
		t.Run(name, func(t *testing.T) {
			pr, err := tt.v.Authenticate(t.Context(), tokens[tt.client])
			if !tt.ok {
				if err == nil {
					t.Fatalf("accepted as %+v", pr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pr.ID != "ana@example.com" || pr.Via != "oidc" || !pr.Can(ActDecide, Key{Name: "api"}) {
				t.Errorf("principal = %+v %v", pr, pr.RoleNames())
			}
		})
	}
}
