package auth

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// No person may hold a name rekey records for itself: a token issued for
// "scheduler" or "break-glass:root@vm" would forge the audit trail.
func TestReservedIdentities(t *testing.T) {
	for id, reserved := range map[string]bool{
		"scheduler": true, " Rekey": true, "ADMIN": true,
		"break-glass:root@vm": true, "exposure:generic": true, "departure:hr": true, "github:secret-scanning": true, "slack:U123": true,
		"alice@example.com": false, "bob": false, "admin@example.com": false,
		// what reads as a reserved name in the audit trail
		"scheduler\u200b": true, "rekey\u2060": true, "\u202escheduler": true, "\u0455cheduler": true,
		"break-glass\uff1aroot@vm": true, "\uff53cheduler": true, "alice\u00a0smith@example.com": true,
		"josé@example.com": false, "Ana Lima": false,
	} {
		if err := Reserved(id); (err != nil) != reserved {
			t.Errorf("Reserved(%q) = %v, want reserved %v", id, err, reserved)
		}
	}
	st := &memTokens{m: map[string]TokenRecord{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, user := range []string{"scheduler", "break-glass:root@vm"} {
		if _, _, err := CreateToken(t.Context(), st, TokenSpec{User: user, Grant: Grant{Role: RoleOperator}}, now); err == nil {
			t.Errorf("a token was created for %q", user)
		}
	}
	// A token stored before the rule (written straight to the store) no
	// longer authenticates.
	tok := TokenPrefix + "old"
	_ = st.CreateToken(t.Context(), TokenRecord{ID: "tok_old", Hash: HashToken(tok), User: "scheduler", Grant: Grant{Role: RoleOperator}, CreatedAt: now})
	a := &Authenticator{Tokens: st, NotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Now: func() time.Time { return now }}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if p, err := a.Authenticate(t.Context(), r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a stored token for a reserved identity authenticated: %+v %v", p, err)
	}
}

// The scheme's name is case-insensitive (RFC 7235); the principal names
// the token and its creator.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	st := &memTokens{m: map[string]TokenRecord{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok, rec, err := CreateToken(t.Context(), st, TokenSpec{User: "bob@example.com", Grant: Grant{Role: RoleApprover}, CreatedBy: "Alice@example.com"}, now)
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Tokens: st, NotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Now: func() time.Time { return now }}
	for h, ok := range map[string]bool{
		"Bearer " + tok: true, "bearer " + tok: true, "BEARER " + tok: true, "bEaReR  " + tok: true,
		"Basic " + tok: false, "Bearer": false, "Bearer ": false, tok: false,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		p, err := a.Authenticate(t.Context(), r)
		if (err == nil) != ok {
			t.Errorf("Authorization %q: %+v %v, want accepted %v", h[:min(len(h), 10)], p, err, ok)
			continue
		}
		if ok && (p.TokenID != rec.ID || p.TokenCreator != "alice@example.com") {
			t.Errorf("principal %+v does not name the token %s and its creator", p, rec.ID)
		}
	}
}
