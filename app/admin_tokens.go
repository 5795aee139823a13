package app

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
)

// TokenView is an API token as the admin API lists it: never its hash.
type TokenView struct {
	ID        string `json:"id"`
	User      string `json:"user"`
	Role      string `json:"role"`
	Keys      string `json:"keys,omitempty"`
	Team      string `json:"team,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
	// Chain is the people behind the token: its creator first.
	Chain     []string `json:"created_by_chain,omitempty"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
	RevokedAt string   `json:"revoked_at,omitempty"`
}

// ViewToken renders a token record.
func ViewToken(t auth.TokenRecord) TokenView {
	return TokenView{ID: t.ID, User: t.User, Role: string(t.Grant.Role), Keys: t.Grant.Keys, Team: t.Grant.Team, CreatedBy: t.CreatedBy, Chain: auth.ChainOf(t),
		CreatedAt: rfc3339(t.CreatedAt), ExpiresAt: rfc3339(t.ExpiresAt), RevokedAt: rfc3339(t.RevokedAt)}
}

func (a *admin) whoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	who := map[string]any{"id": p.ID, "via": p.Via, "roles": p.RoleNames(), "token_id": p.TokenID}
	if p.Cert != nil {
		who["cert_serial"], who["cert_sha256"] = p.Cert.Serial, p.Cert.SHA256
	}
	writeJSON(w, http.StatusOK, who)
}

func (a *admin) tokens(w http.ResponseWriter, r *http.Request) (auth.TokenStore, bool) {
	if !a.allow(w, principalOf(r), auth.ActManageTokens, "") {
		return nil, false
	}
	if a.d.Auth.Tokens == nil {
		writeError(w, http.StatusNotImplemented, "this store keeps no API tokens")
		return nil, false
	}
	return a.d.Auth.Tokens, true
}

func (a *admin) listTokens(w http.ResponseWriter, r *http.Request) {
	s, ok := a.tokens(w, r)
	if !ok {
		return
	}
	list, err := s.ListTokens(r.Context())
	if err != nil {
		a.d.fail(w, r, "list tokens: ", err)
		return
	}
	out := make([]TokenView, 0, len(list))
	for _, t := range list {
		out = append(out, ViewToken(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (a *admin) createToken(w http.ResponseWriter, r *http.Request) {
	s, ok := a.tokens(w, r)
	if !ok {
		return
	}
	var b struct {
		User    string `json:"user"`
		Role    string `json:"role"`
		Keys    string `json:"keys"`
		Team    string `json:"team"`
		Expires string `json:"expires"`
	}
	if err := decodeBody(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.printable(w, &b) {
		return
	}
	p := principalOf(r)
	spec, err := TokenSpecFor(a.d.Directory, b.User, b.Role, b.Keys, b.Team, b.Expires, p.ID)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if left, err := a.d.departedLeft(r.Context(), spec.User); err != nil {
		a.d.fail(w, r, "", err)
		return
	} else if left != nil {
		writeError(w, http.StatusForbidden, left.Reason+": no token is created for a person who left")
		return
	}
	// The people behind the new token: its creator and everyone behind
	// the creator's own token (none for OIDC, bootstrap or break-glass).
	spec.Chain = p.Behind()
	tok, rec, err := auth.CreateToken(r.Context(), s, spec, timeNow())
	if errors.Is(err, auth.ErrChainTooLong) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		a.d.fail(w, r, "", err)
		return
	}
	if err := a.d.AuditTokenCreated(r.Context(), rec, spec.CreatedBy); err != nil {
		a.d.Logger.Error("admin api: token created but not audited", "token_id", rec.ID, "err", err)
	}
	a.d.Logger.Info("admin api: token created", "token_id", rec.ID, "user", rec.User, "role", rec.Grant.Role, "by", spec.CreatedBy)
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "note": "shown once: rekey keeps only its hash", "details": ViewToken(rec)})
}

func (a *admin) revokeToken(w http.ResponseWriter, r *http.Request) {
	s, ok := a.tokens(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.RevokeToken(r.Context(), id, timeNow()); err != nil {
		a.d.fail(w, r, "revoke token "+strconv.Quote(id)+": ", err)
		return
	}
	if err := a.d.AuditTokenRevoked(r.Context(), id, principalOf(r).ID); err != nil {
		a.d.Logger.Error("admin api: token revoked but not audited", "token_id", id, "err", err)
	}
	a.d.Logger.Info("admin api: token revoked", "token_id", id, "by", principalOf(r).ID)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
}

// TokenSpecFor validates a token request (admin API and the break-glass
// CLI): user, role, optional key pattern and team, expiry as a duration
// ("" = never; days accepted, e.g. 30d).
func TokenSpecFor(dir *auth.Directory, user, role, keys, team, expires, by string) (auth.TokenSpec, error) {
	spec := auth.TokenSpec{User: dir.Canonical(user), CreatedBy: by}
	if spec.User == "" {
		return spec, errUsage("user is required (the person the token acts as, e.g. their email)")
	}
	if err := PrintableText("user", spec.User); err != nil {
		return spec, err
	}
	if err := auth.Reserved(spec.User); err != nil {
		return spec, fmt.Errorf("user: %w: a token acts as a person", err)
	}
	rl, err := auth.ParseRole(role)
	if err != nil {
		return spec, err
	}
	if keys != "" {
		if err := auth.ValidPattern(keys); err != nil {
			return spec, err
		}
	}
	spec.Grant = auth.Grant{Role: rl, Keys: keys, Team: team}
	if expires != "" {
		d, err := config.ParseDuration(expires)
		if err != nil || d <= 0 {
			return spec, errUsage("expires must be a positive duration such as 720h or 30d")
		}
		spec.TTL = d
	}
	return spec, nil
}

type errUsage string

func (e errUsage) Error() string { return string(e) }
