package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// A departure takes every way the person had to act through rekey: their
// API tokens are revoked when it is processed (audited token.revoked by
// departure:<webhook>, reason departure), any credential of theirs is
// answered 401 with a short reason, a token that escaped the first pass
// (written meanwhile by another daemon) is revoked when presented, no new
// token is created for them, and the engine's refusal of their decisions
// is a 403. On the code before, carol's token kept working and she
// approved a gate after she left.
func TestDepartedPersonLosesAccess(t *testing.T) {
	e := newAuthEnv(t, "")
	ctx := context.Background()
	carol := e.token("Carol@Example.com", auth.RoleApprover, "")
	carol2 := e.token("carol@example.com", auth.RoleViewer, "")
	bob := e.token("bob@example.com", auth.RoleApprover, "")
	if a := e.api(carol, "GET", "/v1/whoami", nil); a.status != http.StatusOK {
		t.Fatalf("before: %d %v", a.status, a.body)
	}
	if _, err := e.d.Engine.ReportDeparture(ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	tokens, _ := e.api(testBootstrap, "GET", "/v1/tokens", nil).body["tokens"].([]any)
	revoked := 0
	for _, x := range tokens {
		tv, _ := x.(map[string]any)
		switch {
		case tv["user"] == "carol@example.com" && tv["revoked_at"] != nil:
			revoked++
		case tv["user"] == "bob@example.com" && tv["revoked_at"] != nil:
			t.Fatal("bob's token was revoked by carol's departure")
		}
	}
	if revoked != 2 {
		t.Fatalf("%d of carol's 2 tokens revoked: %v", revoked, tokens)
	}
	evs, err := e.d.Store.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, ev := range evs {
		if ev.Action == "token.revoked" && ev.Actor == "departure:hr" && ev.Detail["reason"] == "departure" && ev.Detail["user"] == "carol@example.com" {
			audited++
		}
	}
	if audited != 2 {
		t.Fatalf("%d token.revoked events by departure:hr, want 2", audited)
	}
	for _, tok := range []string{carol, carol2} {
		a := e.api(tok, "GET", "/v1/whoami", nil)
		msg, _ := a.body["error"].(string)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(msg, "carol@example.com left on ") || !strings.Contains(msg, "(departure via hr)") {
			t.Fatalf("carol's token after she left: %d %q", a.status, msg)
		}
	}
	// A token written after the first pass (another daemon's API, an old
	// binary): refused and revoked when presented.
	late := e.token("carol@example.com", auth.RoleApprover, "")
	if a := e.api(late, "GET", "/v1/whoami", nil); a.status != http.StatusUnauthorized || !strings.Contains(a.body["error"].(string), "is revoked") {
		t.Fatalf("late token: %d %v", a.status, a.body)
	}
	if rec, err := TokenStore(e.d.Store).TokenByHash(ctx, auth.HashToken(late)); err != nil || rec.RevokedAt.IsZero() {
		t.Fatalf("late token not revoked in the store: %+v %v", rec, err)
	}
	if a := e.api(testBootstrap, "POST", "/v1/tokens", map[string]string{"user": "CAROL@example.com", "role": "viewer"}); a.status != http.StatusForbidden {
		t.Fatalf("a token created for carol after she left: %d %v", a.status, a.body)
	}
	if a := e.api(bob, "GET", "/v1/whoami", nil); a.status != http.StatusOK {
		t.Fatalf("bob, still here: %d %v", a.status, a.body)
	}
	// The engine's refusal (Slack, break-glass) maps to 403 and keeps its words.
	rot, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, e.d, rot.ID, rotator.PhaseAwaitingApproval)
	_, err = canonicalDecider{e.d.Engine, e.d.Directory}.Decide(ctx, rotator.ApproveRequest{RotationID: rot.ID, Approver: "Carol@Example.com", Verdict: rotator.VerdictApprove, Via: "slack"})
	if st := statusOf(err); st != http.StatusForbidden || !strings.Contains(err.Error(), "their decisions no longer count") {
		t.Fatalf("carol's decision through Slack after she left: %d %v", st, err)
	}
}

// A departure that names the person by an alias (their HR user id, mapped
// to their email by auth.identities) refuses the credentials and the
// decisions that name them by their email too; it is recorded under their
// canonical identity, which the refusal names.
func TestDepartureByAliasRefusesTheCanonicalIdentity(t *testing.T) {
	e := newAuthEnv(t, "auth: {identities: {\"U0CAROL\": carol@example.com}}\n")
	ctx := context.Background()
	carol := e.token("carol@example.com", auth.RoleApprover, "")
	if _, err := e.d.Engine.ReportDeparture(ctx, rotator.DepartureReport{ID: "hr-1", UserID: "U0CAROL", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	if a := e.api(carol, "GET", "/v1/whoami", nil); a.status != http.StatusUnauthorized || !strings.HasPrefix(a.body["error"].(string), "carol@example.com left on ") {
		t.Fatalf("carol's token after U0CAROL left: %d %v", a.status, a.body)
	}
	if rec, err := TokenStore(e.d.Store).TokenByHash(ctx, auth.HashToken(carol)); err != nil || rec.RevokedAt.IsZero() {
		t.Fatalf("carol's token not revoked: %+v %v", rec, err)
	}
	rot, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, e.d, rot.ID, rotator.PhaseAwaitingApproval)
	_, err = canonicalDecider{e.d.Engine, e.d.Directory}.Decide(ctx, rotator.ApproveRequest{RotationID: rot.ID, Approver: "carol@example.com", Verdict: rotator.VerdictApprove, Via: "slack"})
	if !errors.Is(err, rotator.ErrDeparted) {
		t.Fatalf("carol's decision after U0CAROL left: %v", err)
	}
}

// Daemons sharing a store that revoke one departed person's tokens at
// once (each retrying the departure, or each seeing a token presented)
// audit one token.revoked per token: the store revokes a token only where
// it is still live and tells only that caller. On the code before, the
// check was a process-local lock around list-then-revoke.
func TestDepartedTokenRevokedOnceAcrossDaemons(t *testing.T) {
	e := newAuthEnv(t, "")
	ctx := context.Background()
	var ids []string
	for range 5 {
		_, rec, err := auth.CreateToken(ctx, TokenStore(e.d.Store), auth.TokenSpec{User: "carol@example.com", Grant: auth.Grant{Role: auth.RoleViewer}}, timeNow())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	other := &Daemon{Store: e.d.Store, Logger: e.d.Logger} // another process on the same store
	left := auth.Left{Reason: "carol left", By: "departure:hr"}
	var wg sync.WaitGroup
	for i := range 8 {
		d := e.d
		if i%2 == 1 {
			d = other
		}
		wg.Go(func() {
			for _, id := range ids {
				if err := d.revokeDepartedToken(ctx, id, "carol@example.com", left); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	evs, err := e.d.Store.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, ev := range evs {
		if ev.Action == "token.revoked" {
			per[ev.Detail["token_id"]]++
		}
	}
	for _, id := range ids {
		if per[id] != 1 {
			t.Errorf("token %s: %d token.revoked events, want 1", id, per[id])
		}
	}
}
