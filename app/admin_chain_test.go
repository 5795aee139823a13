package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// rotateAs requests a rotation of key api with token and waits at its
// start gate.
func (e *authEnv) rotateAs(token string) string {
	e.t.Helper()
	a := e.api(token, "POST", "/v1/keys/api/rotate", map[string]string{"reason": "test"})
	if a.status != http.StatusCreated {
		e.t.Fatalf("rotate: %d %v", a.status, a.body)
	}
	id := a.body["id"].(string)
	waitPhase(e.t, e.d, id, rotator.PhaseAwaitingApproval)
	return id
}

// A token minted with a token carries everyone behind the minting token:
// the requester cannot approve through a chain of tokens (alice → bob →
// carol), and a chain does not let one person count twice on a gate.
func TestTokenChainDecisions(t *testing.T) {
	e := newAuthEnv(t, "")
	alice, _ := e.apiToken(testBootstrap, "alice@example.com", auth.RoleAdmin, "")
	bob, _ := e.apiToken(testBootstrap, "bob@example.com", auth.RoleAdmin, "")
	carol, _ := e.apiToken(testBootstrap, "carol@example.com", auth.RoleApprover, "")
	id := e.rotateAs(alice)

	bobByAlice, _ := e.apiToken(alice, "bob@example.com", auth.RoleAdmin, "")
	a := e.api(bobByAlice, "POST", "/v1/tokens", map[string]string{"user": "carol@example.com", "role": "approver"})
	if a.status != http.StatusCreated {
		t.Fatalf("carol's token: %d %v", a.status, a.body)
	}
	carolByBobByAlice := a.body["token"].(string)
	if got := a.body["details"].(map[string]any)["created_by_chain"]; fmt.Sprint(got) != "[bob@example.com alice@example.com admin]" {
		t.Errorf("carol's token's chain: %v, want bob, alice, admin", got)
	}
	if a := e.api(carolByBobByAlice, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "alice@example.com") {
		t.Fatalf("the requester approves through a chain of tokens: %d %v", a.status, a.body)
	}

	if a := e.api(bob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("bob's own approval: %d %v", a.status, a.body)
	}
	daveByBob, _ := e.apiToken(bob, "dave@example.com", auth.RoleAdmin, "")
	carolByDaveByBob, _ := e.apiToken(daveByBob, "carol@example.com", auth.RoleApprover, "")
	if a := e.api(carolByDaveByBob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "twice") {
		t.Fatalf("a token two links below bob approves after bob: %d %v", a.status, a.body)
	}
	if r, _ := e.d.Store.GetRotation(context.Background(), id); r.Phase != rotator.PhaseAwaitingApproval {
		t.Fatalf("the gate passed on one person's approvals: %s", r.Phase)
	}
	if a := e.api(carol, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("carol's own approval: %d %v", a.status, a.body)
	}
	waitPhase(t, e.d, id, rotator.PhaseDone)
	evs := e.decisions(id)
	if len(evs) != 2 || evs[0].Detail["token_chain"] != `["admin"]` || evs[1].Actor != "carol@example.com" {
		t.Fatalf("decisions audited: %+v", evs)
	}
}

// The people behind a request are its requester's token's chain too: bob
// cannot request through a token he is behind (bob → eve → alice) and
// approve with his own; the audit records who was behind the request.
func TestTokenChainRequests(t *testing.T) {
	e := newAuthEnv(t, "")
	bob, _ := e.apiToken(testBootstrap, "bob@example.com", auth.RoleAdmin, "")
	carol, _ := e.apiToken(testBootstrap, "carol@example.com", auth.RoleApprover, "")
	eveByBob, _ := e.apiToken(bob, "eve@example.com", auth.RoleAdmin, "")
	aliceByEveByBob, _ := e.apiToken(eveByBob, "alice@example.com", auth.RoleAdmin, "")
	id := e.rotateAs(aliceByEveByBob)

	if a := e.api(bob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "is behind the token this rotation was requested with") {
		t.Fatalf("bob approves a rotation he requested through alice's token: %d %v", a.status, a.body)
	}
	if a := e.api(carol, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("carol's approval: %d %v", a.status, a.body)
	}
	if r, _ := e.d.Store.GetRotation(context.Background(), id); r.Phase != rotator.PhaseAwaitingApproval {
		t.Fatalf("the gate passed on one approval besides the requester's: %s", r.Phase)
	}
	evs, err := e.d.Store.Audit(context.Background(), rotator.AuditFilter{RotationID: id})
	if err != nil {
		t.Fatal(err)
	}
	var behind []string
	for _, ev := range evs {
		if ev.Action == "rotation.created" {
			if err := json.Unmarshal([]byte(ev.Detail["people_behind"]), &behind); err != nil {
				t.Fatalf("rotation.created: %+v: %v", ev, err)
			}
		}
	}
	if want := []string{"alice@example.com", "eve@example.com", "bob@example.com", "admin"}; !reflect.DeepEqual(behind, want) {
		t.Errorf("people behind the request: %v, want %v", behind, want)
	}
}

// A token stored before chains were recorded stands for its creator alone;
// a token whose chain would exceed auth.MaxChain is refused.
func TestTokenChainOldTokensAndBound(t *testing.T) {
	e := newAuthEnv(t, "")
	alice, _ := e.apiToken(testBootstrap, "alice@example.com", auth.RoleAdmin, "")
	id := e.rotateAs(alice)
	old := auth.TokenPrefix + "old-token-made-before-chains"
	if err := TokenStore(e.d.Store).CreateToken(context.Background(), auth.TokenRecord{ID: "tok_old", Hash: auth.HashToken(old), User: "bob@example.com",
		Grant: auth.Grant{Role: auth.RoleApprover}, CreatedBy: "alice@example.com", CreatedAt: timeNow()}); err != nil {
		t.Fatal(err)
	}
	if a := e.api(old, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "created by alice@example.com") {
		t.Fatalf("an old token the requester created approves: %d %v", a.status, a.body)
	}

	tok := testBootstrap
	for i := range auth.MaxChain {
		tok, _ = e.apiToken(tok, fmt.Sprintf("u%d@example.com", i), auth.RoleAdmin, "")
	}
	// The last token has MaxChain people behind it (admin, u0 … u14).
	a := e.api(tok, "POST", "/v1/tokens", map[string]string{"user": "zed@example.com", "role": "viewer"})
	if a.status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(a.body["error"]), "people would be behind it") {
		t.Fatalf("a token with %d people behind it: %d %v", auth.MaxChain+1, a.status, a.body)
	}
}
