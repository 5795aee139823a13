package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// testAPITokens: per-person API tokens are found by hash only, listed,
// revoked once (the first revocation time stays), and a second token with
// the same hash is refused. The people behind a token come back in order;
// a token stored without them has none (the caller falls back to its
// creator).
func testAPITokens(t *testing.T, s rotator.Store) {
	ss, ok := s.(*sqlstore.Store)
	if !ok {
		t.Fatalf("%T is not a *sqlstore.Store", s)
	}
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := sqlstore.APIToken{ID: "tok_1", Hash: "ab12", User: "ana@example.com", Role: "approver", Keys: "payments-*",
		CreatedBy: "bob@example.com", Chain: []string{"bob@example.com", "carol@example.com", "admin"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
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
	if !reflect.DeepEqual(got, tok) {
		t.Errorf("TokenByHash = %+v, want %+v", got, tok)
	}
	old := sqlstore.APIToken{ID: "tok_old", Hash: "cd34", User: "dan@example.com", Role: "viewer", CreatedBy: "admin", CreatedAt: now}
	if err := ss.CreateToken(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got, err := ss.TokenByHash(ctx, "cd34"); err != nil || got.Chain != nil || got.CreatedBy != "admin" {
		t.Errorf("token stored without a chain: %+v, %v; want no chain, created by admin", got, err)
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
	// The conditional revocation reports whether it revoked: once.
	if ok, err := ss.RevokeLiveToken(ctx, "tok_old", now.Add(time.Minute)); err != nil || !ok {
		t.Errorf("RevokeLiveToken of a live token = %v, %v; want true", ok, err)
	}
	if ok, err := ss.RevokeLiveToken(ctx, "tok_old", now.Add(time.Hour)); err != nil || ok {
		t.Errorf("RevokeLiveToken of a revoked token = %v, %v; want false", ok, err)
	}
	if _, err := ss.RevokeLiveToken(ctx, "tok_nope", now); !errors.Is(err, rotator.ErrNotFound) {
		t.Errorf("RevokeLiveToken of an unknown token: err = %v, want ErrNotFound", err)
	}
	list, err := ss.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "tok_1" || !list[0].RevokedAt.Equal(now.Add(time.Minute)) || !reflect.DeepEqual(list[0].Chain, tok.Chain) ||
		!list[1].RevokedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("ListTokens = %+v, want tok_1 revoked at %s", list, now.Add(time.Minute))
	}
}
