package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// testAPITokens: per-person API tokens are found by hash only, listed,
// revoked once (the first revocation time stays), and a second token with
// the same hash is refused.
func testAPITokens(t *testing.T, s rotator.Store) {
	ss, ok := s.(*sqlstore.Store)
	if !ok {
		t.Fatalf("%T is not a *sqlstore.Store", s)
	}
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := sqlstore.APIToken{ID: "tok_1", Hash: "ab12", User: "ana@example.com", Role: "approver", Keys: "payments-*",
		CreatedBy: "admin", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := ss.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := ss.CreateToken(ctx, sqlstore.APIToken{ID: "tok_2", Hash: "ab12", User: "bob", Role: "viewer", CreatedAt: now}); err == nil {
		t.Error("a second token with the same hash was accepted")
	}
	got, err := ss.TokenByHash(ctx, "ab12")
	if err != nil {
		t.Fatal(err)
	}
	if got != tok {
		t.Errorf("TokenByHash = %+v, want %+v", got, tok)
	}
	if _, err := ss.TokenByHash(ctx, "AB12"); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("unknown hash: err = %v, want ErrNotFound", err)
	}
	if err := ss.RevokeToken(ctx, "tok_1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ss.RevokeToken(ctx, "tok_1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ss.RevokeToken(ctx, "tok_nope", now); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("revoke unknown: err = %v, want ErrNotFound", err)
	}
	list, err := ss.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !list[0].RevokedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("ListTokens = %+v, want tok_1 revoked at %s", list, now.Add(time.Minute))
	}
}
