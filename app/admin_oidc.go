package app

import "net/http"

// cliScopes are what `rekey login` asks for unless auth.oidc.cli_scopes
// says otherwise: the identity (email), and a refresh token.
var cliScopes = []string{"openid", "email", "profile", "offline_access"}

// OIDCLogin is the answer of GET /v1/auth/oidc: the public facts `rekey
// login` needs to run the device grant against the daemon's provider.
type OIDCLogin struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// oidcLogin answers GET /v1/auth/oidc without authentication (the caller
// has no credential yet): the issuer, the CLI's client id and scopes,
// nothing secret. 404 when auth.oidc is not configured.
func (d *Daemon) oidcLogin(w http.ResponseWriter, _ *http.Request) {
	o := d.Config.Auth.OIDC
	if o == nil {
		writeError(w, http.StatusNotFound, "OIDC login is not configured on this daemon (auth.oidc)")
		return
	}
	v := OIDCLogin{Issuer: o.Issuer, ClientID: o.CLIClientID, Scopes: o.CLIScopes}
	if v.ClientID == "" {
		v.ClientID = o.Audience
	}
	if len(v.Scopes) == 0 {
		v.Scopes = cliScopes
	}
	writeJSON(w, http.StatusOK, v)
}
