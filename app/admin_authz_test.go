package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// apiToken creates a token through the admin API as creator would, and
// returns it with its id.
func (e *authEnv) apiToken(creator, user string, role auth.Role, keys string) (string, string) {
	e.t.Helper()
	a := e.api(creator, "POST", "/v1/tokens", map[string]string{"user": user, "role": string(role), "keys": keys})
	if a.status != http.StatusCreated {
		e.t.Fatalf("create a token for %s: %d %v", user, a.status, a.body)
	}
	return a.body["token"].(string), a.body["details"].(map[string]any)["id"].(string)
}

func (e *authEnv) decisions(id string) []rotator.AuditEvent {
	e.t.Helper()
	evs, err := e.d.Store.Audit(context.Background(), rotator.AuditFilter{RotationID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(evs, func(ev rotator.AuditEvent) bool { return !strings.HasPrefix(ev.Action, "decision.") })
}

// S1: a decision made with a token is also its creator's. The requester
// cannot approve through a token they minted for someone else, a token's
// approval does not count twice with its creator's, and the audit names
// the token and its creator.
func TestTokenDecisionsAreTheirCreators(t *testing.T) {
	e := newAuthEnv(t, "")
	alice, _ := e.apiToken(testBootstrap, "alice@example.com", auth.RoleAdmin, "")
	bob, bobID := e.apiToken(testBootstrap, "bob@example.com", auth.RoleAdmin, "")
	carol, _ := e.apiToken(testBootstrap, "carol@example.com", auth.RoleApprover, "")
	a := e.api(alice, "POST", "/v1/keys/api/rotate", map[string]string{"reason": "test"})
	if a.status != http.StatusCreated {
		t.Fatalf("rotate: %d %v", a.status, a.body)
	}
	id := a.body["id"].(string)
	waitPhase(t, e.d, id, rotator.PhaseAwaitingApproval)

	bobByAlice, _ := e.apiToken(alice, "bob@example.com", auth.RoleApprover, "")
	if a := e.api(bobByAlice, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "created by alice@example.com") {
		t.Fatalf("approval with a token the requester created: %d %v", a.status, a.body)
	}
	if a := e.api(bob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("bob's own approval: %d %v", a.status, a.body)
	}
	carolByBob, _ := e.apiToken(bob, "carol@example.com", auth.RoleApprover, "")
	if a := e.api(carolByBob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(a.body["error"]), "twice") {
		t.Fatalf("a token bob created approves after bob: %d %v", a.status, a.body)
	}
	if r, _ := e.d.Store.GetRotation(context.Background(), id); r.Phase != rotator.PhaseAwaitingApproval {
		t.Fatalf("the gate passed on one person's approvals: %s", r.Phase)
	}
	evs := e.decisions(id)
	if len(evs) != 1 || evs[0].Actor != "bob@example.com" || evs[0].Detail["token"] != bobID || evs[0].Detail["token_created_by"] != "admin" {
		t.Fatalf("decisions audited: %+v", evs)
	}
	if a := e.api(carol, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("carol's own approval: %d %v", a.status, a.body)
	}
	waitPhase(t, e.d, id, rotator.PhaseDone)
}

// S2: nobody gets a token under a name rekey records for itself, through
// the API or break-glass; the answer says why.
func TestTokensRefuseReservedIdentities(t *testing.T) {
	e := newAuthEnv(t, "")
	bg := httptest.NewServer(e.d.BreakGlassHandler(BreakGlassPrincipal()))
	t.Cleanup(bg.Close)
	for _, user := range []string{"scheduler", "rekey", "Admin", "break-glass:root@vm", "exposure:generic", "departure:hr", "github:secret-scanning", "slack:U1"} {
		for name, srv := range map[string]*httptest.Server{"api": e.admin, "break-glass": bg} {
			a := e.call(srv, testBootstrap, "POST", "/v1/tokens", map[string]string{"user": user, "role": "operator"})
			if a.status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(a.body["error"]), "reserved") {
				t.Errorf("%s: token for %q: %d %v", name, user, a.status, a.body)
			}
		}
	}
	// The scheduler's own name in the engine (an automatic bootstrap
	// skips the start gate only for it) is one of them.
	if auth.Reserved(rotator.ActorScheduler) == nil || auth.Reserved(auth.BootstrapID) == nil {
		t.Errorf("%q or %q is not reserved", rotator.ActorScheduler, auth.BootstrapID)
	}
	if a := e.api(testBootstrap, "POST", "/v1/tokens", map[string]string{"user": "dana@example.com", "role": "operator"}); a.status != http.StatusCreated {
		t.Errorf("a person's token: %d %v", a.status, a.body)
	}
}

// B7: error bodies carry no store internals; a rotation of a key out of
// the principal's scope is answered exactly like a missing one.
func TestErrorsRevealNoInternalsNorOutOfScopeRotations(t *testing.T) {
	e := newAuthEnv(t, "")
	bob := e.token("bob@example.com", auth.RoleApprover, "")
	a := e.api(testBootstrap, "POST", "/v1/keys/api/rotate", nil)
	id := a.body["id"].(string)
	waitPhase(t, e.d, id, rotator.PhaseAwaitingApproval)
	if a := e.api(bob, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("approve: %d %v", a.status, a.body)
	}
	clean := func(what string, a answer, status int) {
		t.Helper()
		msg := fmt.Sprint(a.body["error"])
		if a.status != status || strings.Contains(msg, "sqlite") || strings.Contains(msg, "store") || strings.Contains(strings.ToLower(msg), "select") {
			t.Errorf("%s: %d %q", what, a.status, msg)
		}
	}
	missing := e.api(testBootstrap, "GET", "/v1/rotations/rot_doesnotexist", nil)
	clean("missing rotation", missing, http.StatusNotFound)
	clean("second approval", e.api(bob, "POST", "/v1/rotations/"+id+"/approve", nil), http.StatusConflict)

	scoped := e.token("eve@example.com", auth.RoleAdmin, "payments-*")
	want := strings.ReplaceAll(fmt.Sprint(missing.body["error"]), "rot_doesnotexist", id)
	for _, c := range []struct{ method, path string }{
		{"GET", ""}, {"POST", "/approve"}, {"POST", "/deny"}, {"POST", "/cancel"}, {"POST", "/retry"}, {"POST", "/confirm"}, {"POST", "/submit"},
	} {
		a := e.api(scoped, c.method, "/v1/rotations/"+id+c.path, map[string]string{})
		if a.status != http.StatusNotFound || a.body["error"] != want || strings.Contains(fmt.Sprint(a.body), `"api"`) {
			t.Errorf("%s %s out of scope: %d %v, want 404 %q", c.method, c.path, a.status, a.body, want)
		}
	}
	if a := e.api(scoped, "GET", "/v1/rotations?key=api", nil); a.status != http.StatusNotFound {
		t.Errorf("listing an out-of-scope key's rotations: %d %v", a.status, a.body)
	}
}

// S5: text people type and others read refuses control characters,
// naming the field.
func TestAPITextRefusesControlCharacters(t *testing.T) {
	e := newAuthEnv(t, "")
	for _, c := range []struct {
		path, field string
		body        map[string]any
	}{
		{"/v1/keys/db/rotate", "reason", map[string]any{"reason": "ok\x1b[1A\rall good"}},
		{"/v1/keys/db/decommission", "reason", map[string]any{"reason": "x\u009b2K"}},
		{"/v1/rotations/rot_x/approve", "comment", map[string]any{"comment": "fine\r\n\x1b[32mapproved"}},
		{"/v1/rotations/rot_x/cancel", "reason", map[string]any{"reason": "\x07"}},
		{"/v1/tokens", "user", map[string]any{"user": "bob\x1b]8;;http://x\x1b\\@example.com", "role": "viewer"}},
		{"/v1/breaker/release", "comment", map[string]any{"comment": "\x1b[2J"}},
	} {
		a := e.api(testBootstrap, "POST", c.path, c.body)
		if a.status != http.StatusBadRequest || !strings.HasPrefix(fmt.Sprint(a.body["error"]), c.field+": must be printable text") {
			t.Errorf("%s: %d %v", c.path, a.status, a.body)
		}
	}
	rots, _ := e.d.Store.ListRotations(context.Background(), rotator.RotationFilter{Key: "db", ActiveOnly: true})
	if len(rots) != 0 {
		t.Errorf("a refused request started a rotation: %+v", rots[0])
	}
}

// W5: the authorization scheme's name is case-insensitive (RFC 7235).
func TestBearerSchemeAnyCase(t *testing.T) {
	e := newAuthEnv(t, "")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		req, _ := http.NewRequest("GET", e.admin.URL+"/v1/whoami", nil)
		req.Header.Set("Authorization", scheme+" "+testBootstrap)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", scheme, resp.StatusCode)
		}
	}
}

// B1: a contained emergency's revoke is a responder's decision, whatever
// the key's approval.approvers, and an approver who is not a responder
// cannot make it; a breaker release handles each contained rotation of
// the responder's keys on its own, and only a responder for every key
// restarts the count.
func TestRespondersDecideContainedEmergencies(t *testing.T) {
	e := newAuthEnv(t, "breaker: {max: 1, window: 10m}")
	resp := e.token("resp@example.com", auth.RoleResponder, "")
	bob := e.token("bob@example.com", auth.RoleApprover, "") // one of api's approvers
	reporter := e.token("reporter@example.com", auth.RoleResponder, "")
	expose := func(key string) string {
		t.Helper()
		a := e.api(reporter, "POST", "/v1/keys/"+key+"/rotate", map[string]string{"trigger": "exposure"})
		if a.status != http.StatusCreated {
			t.Fatalf("exposure of %s: %d %v", key, a.status, a.body)
		}
		return a.body["id"].(string)
	}
	waitPhase(t, e.d, expose("db"), rotator.PhaseDone)
	contained := map[string]string{}
	for _, k := range []string{"api", "payments-eu", "legacy"} {
		id := expose(k)
		contained[k] = id
		waitFor(t, k+" contained", func() bool {
			r, err := e.d.Store.GetRotation(context.Background(), id)
			return err == nil && r.Contain == rotator.ContainBreaker && r.Phase == rotator.PhaseRevoking && r.Hold == rotator.HoldApproval
		})
	}
	if a := e.api(bob, "POST", "/v1/rotations/"+contained["api"]+"/approve", nil); a.status != http.StatusForbidden {
		t.Fatalf("an approver who is no responder released a contained emergency: %d %v", a.status, a.body)
	}
	if a := e.api(resp, "POST", "/v1/rotations/"+contained["api"]+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("the responder approves the contained emergency of api: %d %v", a.status, a.body)
	}
	waitPhase(t, e.d, contained["api"], rotator.PhaseDone)

	scoped := e.token("pay@example.com", auth.RoleResponder, "payments-*")
	a := e.api(scoped, "POST", "/v1/breaker/release", nil)
	results, _ := a.body["results"].([]any)
	if a.status != http.StatusOK || fmt.Sprint(a.body["released"]) != "["+contained["payments-eu"]+"]" || len(results) != 1 || a.body["counting_restarted"] != false {
		t.Fatalf("release by a payments responder: %d %v", a.status, a.body)
	}
	waitPhase(t, e.d, contained["payments-eu"], rotator.PhaseDone)
	if r, _ := e.d.Store.GetRotation(context.Background(), contained["legacy"]); r.Hold != rotator.HoldApproval {
		t.Fatalf("a key out of the releaser's scope was released: %s %s", r.Phase, r.Hold)
	}
	a = e.api(resp, "POST", "/v1/breaker/release", nil)
	if a.status != http.StatusOK || fmt.Sprint(a.body["released"]) != "["+contained["legacy"]+"]" || a.body["counting_restarted"] != true {
		t.Fatalf("release by a responder for every key: %d %v", a.status, a.body)
	}
	waitPhase(t, e.d, contained["legacy"], rotator.PhaseDone)
	// The release's decisions name the token they were made with.
	if evs := e.decisions(contained["legacy"]); len(evs) != 1 || evs[0].Actor != "resp@example.com" || !strings.HasPrefix(evs[0].Detail["token"], "tok_") {
		t.Fatalf("the release's decision: %+v", evs)
	}
}

type decideFunc func(context.Context, rotator.ApproveRequest) (*rotator.Rotation, error)

func (f decideFunc) Decide(ctx context.Context, req rotator.ApproveRequest) (*rotator.Rotation, error) {
	return f(ctx, req)
}

// S2: a channel without credentials of its own (a Slack click) cannot
// decide as a reserved identity, even when a configured alias maps the
// clicker to one.
func TestSlackDecisionsRefuseReservedIdentities(t *testing.T) {
	var got []string
	c := canonicalDecider{Decider: decideFunc(func(_ context.Context, req rotator.ApproveRequest) (*rotator.Rotation, error) {
		got = append(got, req.Approver)
		return nil, nil
	}), dir: auth.NewDirectory(map[string]string{"U1": "scheduler", "U2": "break-glass:root@vm", "U3": "Bob@example.com"})}
	for _, who := range []string{"U1", "U2", "rekey"} {
		if _, err := c.Decide(context.Background(), rotator.ApproveRequest{Approver: who}); !errors.Is(err, rotator.ErrNotApprover) {
			t.Errorf("%s decided: %v", who, err)
		}
	}
	if _, err := c.Decide(context.Background(), rotator.ApproveRequest{Approver: "U3"}); err != nil || !slices.Equal(got, []string{"bob@example.com"}) {
		t.Errorf("a person's decision: %v, reached the engine as %v", err, got)
	}
}
