package app

import (
	"net/http"
	"slices"
	"testing"
)

// GET /v1/auth/oidc tells `rekey login`, which holds no credential yet,
// the provider and client to log in with: public facts only, on the admin
// listener only, 404 without auth.oidc.
func TestOIDCLoginSettings(t *testing.T) {
	tests := map[string]struct {
		extra    string
		status   int
		clientID string
		scopes   []string
	}{
		"not configured": {status: http.StatusNotFound},
		"defaults": {extra: "auth: {oidc: {issuer: https://login.example.com, audience: rekey}}\n",
			status: http.StatusOK, clientID: "rekey", scopes: []string{"openid", "email", "profile", "offline_access"}},
		"cli client": {extra: "auth: {oidc: {issuer: https://login.example.com, audience: rekey, cli_client_id: rekey-cli, cli_scopes: [openid, email, groups]}}\n",
			status: http.StatusOK, clientID: "rekey-cli", scopes: []string{"openid", "email", "groups"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newAuthEnv(t, tt.extra)
			a := e.api("", "GET", "/v1/auth/oidc", nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %v", a.status, tt.status, a.body)
			}
			if pub := e.call(e.public, "", "GET", "/v1/auth/oidc", nil); pub.status != http.StatusNotFound {
				t.Errorf("the public listener answered %d", pub.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			var scopes []string
			for _, s := range a.body["scopes"].([]any) {
				scopes = append(scopes, s.(string))
			}
			if a.body["issuer"] != "https://login.example.com" || a.body["client_id"] != tt.clientID || !slices.Equal(scopes, tt.scopes) || len(a.body) != 3 {
				t.Errorf("answer = %v", a.body)
			}
		})
	}
}
