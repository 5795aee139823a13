package app

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// A departure naming rekey's own actor switches nothing off: the
// scheduler still rotates.
func TestDepartureOfAReservedNameStopsNothing(t *testing.T) {
	e := newAuthEnv(t, "")
	ctx := context.Background()
	if _, err := e.d.Engine.ReportDeparture(ctx, rotator.DepartureReport{ID: "hr-x", UserID: "scheduler", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "db", Trigger: rotator.TriggerAge, Actor: rotator.ActorScheduler, Reason: "age"})
	if errors.Is(err, rotator.ErrDeparted) {
		t.Fatalf("a departure naming user_id \"scheduler\" stops every scheduled rotation: %v", err)
	}
}

// departureGate: carol approves a manual rotation of api that needs two
// approvals; HR reports rep; bob approves. It returns the rotation's
// phase once it has moved on, or awaiting_approval.
func departureGate(t *testing.T, rep rotator.DepartureReport) rotator.Phase {
	e := newAuthEnv(t, "auth: {identities: {\"U0CAROL\": carol@example.com}}\n")
	ctx := context.Background()
	rot, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, e.d, rot.ID, rotator.PhaseAwaitingApproval)
	dec := canonicalDecider{e.d.Engine, e.d.Directory}
	if _, err := dec.Decide(ctx, rotator.ApproveRequest{RotationID: rot.ID, Approver: "carol@example.com", Verdict: rotator.VerdictApprove, Via: "slack"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Engine.ReportDeparture(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decide(ctx, rotator.ApproveRequest{RotationID: rot.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "slack"}); err != nil {
		t.Fatal(err)
	}
	// The gate is evaluated by the running daemon: give it a few passes.
	var r *rotator.Rotation
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err = e.d.Store.GetRotation(ctx, rot.ID); err != nil || r.Phase != rotator.PhaseAwaitingApproval {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.Phase
}

// Carol's approval no longer counts once she left, whether HR names her by
// email or by the Slack user id auth.identities maps to her email. On the
// code before, the alias departure left her approval counting and the
// rotation went on on it.
func TestDepartureByEmailOrAliasVoidsTheApproval(t *testing.T) {
	for name, rep := range map[string]rotator.DepartureReport{
		"email": {ID: "hr-1", Email: "carol@example.com", Via: "hr"},
		"alias": {ID: "hr-1", UserID: "U0CAROL", Via: "hr"},
	} {
		if p := departureGate(t, rep); p != rotator.PhaseAwaitingApproval {
			t.Errorf("by %s: the gate passed on carol's approval: %s", name, p)
		}
	}
}

// A departure revokes the person's own tokens, not the ones they created
// for a robot or a colleague (that would lock those out), but it names
// them, and the shared secrets they may know, in its audit trail: carol
// created ci-bot's token and may have kept a copy.
func TestDepartureListsTokensThePersonCreated(t *testing.T) {
	e := newAuthEnv(t, "")
	ctx := context.Background()
	_, bot, err := auth.CreateToken(ctx, TokenStore(e.d.Store), auth.TokenSpec{User: "ci-bot", Grant: auth.Grant{Role: auth.RoleOperator},
		CreatedBy: "carol@example.com"}, timeNow())
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := auth.CreateToken(ctx, TokenStore(e.d.Store), auth.TokenSpec{User: "dan@example.com", Grant: auth.Grant{Role: auth.RoleViewer},
		CreatedBy: "bob@example.com"}, timeNow())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Engine.ReportDeparture(ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.d.Store.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var rest string
	for _, ev := range evs {
		if ev.Action == "departure.remaining" {
			rest = ev.Detail["remaining"]
		}
	}
	if !strings.Contains(rest, bot.ID+" of ci-bot (operator, created by carol@example.com)") || !strings.Contains(rest, "bootstrap admin token") ||
		strings.Contains(rest, other.ID) {
		t.Fatalf("departure.remaining %q: want ci-bot's token %s and the bootstrap token named, not %s", rest, bot.ID, other.ID)
	}
	list, err := TokenStore(e.d.Store).ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		if tk.ID == bot.ID && !tk.RevokedAt.IsZero() {
			t.Fatal("ci-bot's token was revoked: everyone carol made tokens for would be locked out")
		}
	}
}

// POST /v1/departures/{who}/undo: only an admin undoes a departure sent
// by mistake; it is audited by that admin, and the person's credentials
// authenticate again (new ones: the revoked tokens stay revoked).
func TestUndoDepartureThroughTheAPI(t *testing.T) {
	e := newAuthEnv(t, "auth: {identities: {\"U0CAROL\": carol@example.com}}\n")
	ctx := context.Background()
	dave := e.token("dave@example.com", auth.RoleAdmin, "")
	op := e.token("olga@example.com", auth.RoleOperator, "")
	if _, err := e.d.Engine.ReportDeparture(ctx, rotator.DepartureReport{ID: "hr-1", UserID: "U0CAROL", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	if a := e.api(op, "POST", "/v1/departures/carol@example.com/undo", nil); a.status != http.StatusForbidden {
		t.Fatalf("an operator undid a departure: %d %v", a.status, a.body)
	}
	if a := e.api(dave, "POST", "/v1/departures/bob@example.com/undo", nil); a.status != http.StatusNotFound {
		t.Fatalf("undo of someone who never left: %d %v", a.status, a.body)
	}
	if a := e.api(dave, "POST", "/v1/departures/carol@example.com/undo", nil); a.status != http.StatusOK {
		t.Fatalf("undo: %d %v", a.status, a.body)
	}
	evs, err := e.d.Store.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(evs, func(ev rotator.AuditEvent) bool { return ev.Action == "departure.undone" }); i < 0 || evs[i].Actor != "dave@example.com" ||
		evs[i].Detail["person"] != "carol@example.com/u0carol" {
		t.Fatalf("the undo is not audited by dave for both of carol's names: %v", evs)
	}
	carol := e.token("carol@example.com", auth.RoleViewer, "")
	if a := e.api(carol, "GET", "/v1/whoami", nil); a.status != http.StatusOK {
		t.Fatalf("carol, back, cannot authenticate: %d %v", a.status, a.body)
	}
}
