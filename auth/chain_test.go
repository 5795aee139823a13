package auth

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// A token carries the people behind it: its creator, then everyone
// behind the creator's credential; the principal it authenticates exposes
// them, a token stored without them stands for its creator, and a chain
// longer than MaxChain is refused.
func TestTokenChains(t *testing.T) {
	st := &memTokens{m: map[string]TokenRecord{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Authenticator{Tokens: st, NotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Now: func() time.Time { return now }}
	as := func(tok string) *Principal {
		t.Helper()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		p, err := a.Authenticate(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	oidc := &Principal{ID: "alice@example.com", Via: "oidc"}
	bobTok, _, err := CreateToken(t.Context(), st, TokenSpec{User: "bob@example.com", Grant: Grant{Role: RoleAdmin}, CreatedBy: oidc.ID, Chain: oidc.Behind()}, now)
	if err != nil {
		t.Fatal(err)
	}
	bob := as(bobTok)
	if want := []string{"alice@example.com"}; !reflect.DeepEqual(bob.TokenChain, want) {
		t.Errorf("bob's token's chain: %v, want %v", bob.TokenChain, want)
	}
	_, carol, err := CreateToken(t.Context(), st, TokenSpec{User: "carol@example.com", Grant: Grant{Role: RoleApprover}, CreatedBy: bob.ID, Chain: bob.Behind()}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bob@example.com", "alice@example.com"}; !reflect.DeepEqual(carol.Chain, want) {
		t.Errorf("carol's token's chain: %v, want %v", carol.Chain, want)
	}

	old := TokenPrefix + "old"
	_ = st.CreateToken(t.Context(), TokenRecord{ID: "tok_old", Hash: HashToken(old), User: "dan@example.com", Grant: Grant{Role: RoleViewer}, CreatedBy: "Erin@example.com", CreatedAt: now})
	if got := as(old).TokenChain; !reflect.DeepEqual(got, []string{"erin@example.com"}) {
		t.Errorf("a token stored without a chain: %v, want its creator", got)
	}

	long := make([]string, MaxChain)
	for i := range long {
		long[i] = fmt.Sprintf("u%d@example.com", i)
	}
	if _, _, err := CreateToken(t.Context(), st, TokenSpec{User: "zed@example.com", Grant: Grant{Role: RoleViewer}, CreatedBy: long[0], Chain: long}, now); err != nil {
		t.Errorf("a chain of %d: %v", MaxChain, err)
	}
	if _, _, err := CreateToken(t.Context(), st, TokenSpec{User: "zed@example.com", Grant: Grant{Role: RoleViewer}, CreatedBy: "zoe@example.com", Chain: long}, now); !errors.Is(err, ErrChainTooLong) {
		t.Errorf("a chain of %d: %v, want ErrChainTooLong", MaxChain+1, err)
	}
}
