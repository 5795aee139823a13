package rotator_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// A departure never names one of rekey's own actors: reported by a
// careless HR system (user_id "scheduler", "exposure:github", "admin") or
// already in the store, such a record switches nothing off. On the code
// before, a departure of "scheduler" made every scheduled rotation fail
// with ErrDeparted, for good.
func TestDepartureNeverTouchesRekeysOwnActors(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	for i, id := range []string{"scheduler", "exposure:github", "Admin", "rekey", "departure:hr", "break-glass:root@vm"} {
		if _, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-" + id, UserID: id, Via: "hr"}); err != nil {
			t.Fatal(err)
		}
		// A record written before this rule (straight to the store).
		if err := e.store.PutState(e.ctx, "rekey.departed", strings.ToLower(id), `{"at":"2026-03-02T10:00:00Z","via":"hr"}`); err != nil {
			t.Fatal(err)
		}
		if d, gone, err := e.engine.Departed(e.ctx, id); err != nil || gone {
			t.Fatalf("%d: %q counts as departed: %+v %v", i, id, d, err)
		}
	}
	r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerAge, Actor: rotator.ActorScheduler, Reason: "age"})
	if errors.Is(err, rotator.ErrDeparted) || err != nil {
		t.Fatalf("the scheduler's rotation was refused: %v", err)
	}
	if _, err := e.engine.Cancel(e.ctx, r.ID, "exposure:github", "test"); errors.Is(err, rotator.ErrDeparted) {
		t.Fatalf("an exposure source counts as departed: %v", err)
	}
}

// aliasEnv is gatedEnv (revoke gate, need approvals) whose engine knows
// carol also as the Slack user U0CAROL (auth.identities).
func aliasEnv(t *testing.T, need int, owners ...string) (*env, *rotator.Rotation) {
	t.Helper()
	e := newEnv(t)
	e.key.Owners = owners
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, RevokeRequired: need, ExpireAfter: 24 * time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.identities = func(id string) []string {
		if c := strings.ToLower(id); c == "u0carol" || c == "carol@example.com" {
			return []string{"carol@example.com", "u0carol"}
		}
		return []string{strings.ToLower(id)}
	}
	e.engine = e.newEngine(nil)
	e.bootstrap()
	return e, e.manualByAlice(50, rotator.PhaseRevoking, rotator.HoldApproval)
}

// A departure reported under an alias (HR sends the Slack user id) is the
// person's departure under every name they are known by: the approval
// carol gave under her email no longer counts, and a key whose owners list
// her email is rotated. On the code before, the departure was recorded
// under "u0carol" only: her approval still passed the gate, and her key
// got no rotation.
func TestDepartureUnderAnAliasIsThePersonsDeparture(t *testing.T) {
	e, r := aliasEnv(t, 2, "alice@example.com", "carol@example.com")
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "carol@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", UserID: "U0CAROL", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"carol@example.com", "U0CAROL"} {
		if _, gone, err := e.engine.Departed(e.ctx, name); err != nil || !gone {
			t.Fatalf("%s: not departed (%v)", name, err)
		}
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatal(err)
	}
	if got := e.run(r.ID, 5); got.Phase != rotator.PhaseRevoking || got.Hold != rotator.HoldApproval {
		t.Fatalf("carol's approval, given before she left under her email, still counted: %s %s", got.Phase, got.Hold)
	}

	// Her key, listed under her email, is rotated: she was its only owner.
	e2, _ := aliasEnv(t, 1, "carol@example.com")
	res, err := e2.engine.ReportDeparture(e2.ctx, rotator.DepartureReport{ID: "hr-2", UserID: "U0CAROL", Via: "hr"})
	if err != nil || !slices.Equal(res.Emergency, []string{"api"}) || res.Duplicate {
		t.Fatalf("departure under the alias: %+v %v, want api as an emergency", res, err)
	}
	if cur, gone := e2.engine.Owners(e2.ctx, "api"); len(cur) != 0 || !slices.Equal(gone, []string{"carol@example.com"}) {
		t.Fatalf("owners %v, departed %v", cur, gone)
	}
}

// A departure HR sent by mistake is undone by an admin, under every name
// of the person, and audited by that admin; the person decides again.
func TestUndoDeparture(t *testing.T) {
	e, r := aliasEnv(t, 1, "alice@example.com", "carol@example.com")
	if _, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.UndoDeparture(e.ctx, "bob@example.com", "dave@example.com"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("undo of someone who never left: %v", err)
	}
	if _, err := e.engine.UndoDeparture(e.ctx, "U0CAROL", "carol@example.com"); !errors.Is(err, rotator.ErrDeparted) {
		t.Fatalf("carol undid her own departure: %v", err)
	}
	cleared, err := e.engine.UndoDeparture(e.ctx, "U0CAROL", "dave@example.com")
	if err != nil || !slices.Equal(cleared, []string{"carol@example.com", "u0carol"}) {
		t.Fatalf("undo: %v %v", cleared, err)
	}
	for _, name := range []string{"carol@example.com", "u0carol"} {
		if _, gone, err := e.engine.Departed(e.ctx, name); err != nil || gone {
			t.Fatalf("%s still departed after the undo (%v)", name, err)
		}
	}
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(evs, func(ev rotator.AuditEvent) bool { return ev.Action == "departure.undone" }); i < 0 || evs[i].Actor != "dave@example.com" ||
		!strings.Contains(evs[i].Detail["departure"], "left on") {
		t.Fatalf("undo not audited by dave: %v", evs)
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "carol@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatalf("carol, back, cannot approve: %v", err)
	}
}

// An undone departure stays undone while its event is still retried (here
// it waits for a rotation in flight): a retry does not record the person
// as departed again.
func TestUndoneDepartureStaysUndoneThroughRetries(t *testing.T) {
	e, _ := gatedEnv(t, 1)
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil || !slices.Equal(res.Waiting, []string{"api"}) {
		t.Fatalf("departure: %+v %v, want it waiting (and retried)", res, err)
	}
	if _, err := e.engine.UndoDeparture(e.ctx, "carol@example.com", "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(10 * time.Second)
	}
	if _, gone, err := e.engine.Departed(e.ctx, "carol@example.com"); err != nil || gone {
		t.Fatalf("a retry of the departure recorded carol again after the undo (%v)", err)
	}
}
