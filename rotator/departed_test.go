package rotator_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// gatedEnv is a key owned by alice and carol whose revoke needs need
// approvals, with a staged rotation by alice held at that gate.
func gatedEnv(t *testing.T, need int) (*env, *rotator.Rotation) {
	t.Helper()
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com", "carol@example.com"}
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, RevokeRequired: need, ExpireAfter: 24 * time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	return e, e.manualByAlice(50, rotator.PhaseRevoking, rotator.HoldApproval)
}

// manualByAlice starts a manual rotation of api as alice and runs it
// (budget steps) until it waits in phase for hold, or fails the test.
func (e *env) manualByAlice(budget int, phase rotator.Phase, hold rotator.Hold) *rotator.Rotation {
	e.t.Helper()
	r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	if err != nil {
		e.t.Fatal(err)
	}
	if r = e.run(r.ID, budget); r.Phase != phase || r.Hold != hold {
		e.t.Fatalf("not held in %s for %s: %s %s %s", phase, hold, r.Phase, r.Hold, r.LastError)
	}
	return r
}

func (e *env) depart(id, email string) {
	e.t.Helper()
	if _, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: id, Email: email, Via: "hr"}); err != nil {
		e.t.Fatal(err)
	}
}

// A person reported as having left decides nothing: their approval of a
// gate, through any channel, is refused with who left, when and through
// which webhook. On the code before, carol approved the revoke gate after
// her departure and the rotation went on on her word.
func TestDepartedPersonCannotDecide(t *testing.T) {
	e, r := gatedEnv(t, 1)
	e.depart("hr-1", "Carol@Example.com")
	for _, via := range []string{"api", "slack", "break-glass"} {
		_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "carol@example.com ", Verdict: rotator.VerdictApprove, Via: via})
		var de *rotator.DepartedError
		if !errors.Is(err, rotator.ErrDeparted) || !errors.As(err, &de) {
			t.Fatalf("%s: carol, departed, approved: %v", via, err)
		}
		want := "carol@example.com left on 2026-03-02 10:"
		if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, "(departure via hr); their decisions no longer count") {
			t.Fatalf("%s: refusal %q, want it to say who left, when and through which webhook", via, msg)
		}
	}
	if got := e.run(r.ID, 5); got.Phase != rotator.PhaseRevoking || got.Hold != rotator.HoldApproval {
		t.Fatalf("the rotation moved on: %s %s", got.Phase, got.Hold)
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatalf("bob, still here: %v", err)
	}
}

// An approval given before the approver left no longer counts toward a
// gate still pending: the gate is evaluated when it passes, and the hold
// says whose approval was set aside.
func TestApprovalOfSomeoneWhoLeftNoLongerCounts(t *testing.T) {
	e, r := gatedEnv(t, 2)
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "carol@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatal(err)
	}
	e.depart("hr-1", "carol@example.com")
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatal(err)
	}
	got := e.run(r.ID, 5)
	if got.Phase != rotator.PhaseRevoking || got.Hold != rotator.HoldApproval {
		t.Fatalf("carol's approval, given before she left, still counted: %s %s", got.Phase, got.Hold)
	}
	if !strings.Contains(got.HoldDetail, "revoke approval 1/2") || !strings.Contains(got.HoldDetail, "not counted: carol@example.com left on") {
		t.Fatalf("hold detail %q does not say carol's approval no longer counts", got.HoldDetail)
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "dave@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
		t.Fatal(err)
	}
	if got := e.run(r.ID, 50); got.Phase != rotator.PhaseDone {
		t.Fatalf("two people still here approved, yet %s %s", got.Phase, got.HoldDetail)
	}
}

// A person who left requests nothing either: rotate, cancel, retry,
// submit and confirm are refused like a decision.
func TestDepartedPersonCannotRequest(t *testing.T) {
	e, r := gatedEnv(t, 1)
	e.depart("hr-1", "alice@example.com")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rotator.ErrDeparted) || !strings.Contains(err.Error(), "their requests no longer count") {
			t.Fatalf("%s by alice, departed: %v", what, err)
		}
	}
	_, err := e.engine.Cancel(e.ctx, r.ID, "alice@example.com", "")
	check("cancel", err)
	_, err = e.engine.Retry(e.ctx, r.ID, "Alice@example.com")
	check("retry", err)
	_, err = e.engine.Submit(e.ctx, r.ID, "alice@example.com", rotator.NewSecret("sk_whatever_0123456789"))
	check("submit", err)
	_, err = e.engine.Confirm(e.ctx, r.ID, "alice@example.com")
	check("confirm", err)
	_, err = e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "alice@example.com"})
	check("rotate", err)
	if got, _ := e.store.GetRotation(e.ctx, r.ID); got.Request.Kind != "" || got.Phase.Terminal() {
		t.Fatalf("a refused request was recorded: %+v %s", got.Request, got.Phase)
	}
}

// Departed reads the store: a second engine sharing it (another daemon)
// knows at once whom the first recorded as departed, and from which
// webhook.
func TestDepartedIsSharedThroughTheStore(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	other := e.newEngine(nil)
	if _, gone, err := other.Departed(e.ctx, "alice@example.com"); err != nil || gone {
		t.Fatalf("before: %v %v", gone, err)
	}
	e.depart("hr-1", "alice@example.com")
	d, gone, err := other.Departed(e.ctx, " ALICE@example.com")
	if err != nil || !gone || d.Via != "hr" || d.Actor() != "departure:hr" || !d.At.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Fatalf("after: %+v %v %v", d, gone, err)
	}
}

// OnDeparted takes a departed person's access (the app revokes their API
// tokens) whether or not they own a key: it is retried with the
// departure until it succeeds, then never called again for it.
func TestOnDepartedRunsUntilItSucceeds(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	var calls []rotator.Departure
	fail := true
	eng, err := rotator.New(rotator.Options{Store: e.store, Keys: []*rotator.Key{e.key}, Clock: e.clock, Inbound: e.store, State: e.store,
		Backoff: rotator.Backoff{Base: time.Second, Max: time.Minute, Factor: 2},
		OnDeparted: func(_ context.Context, d rotator.Departure) ([]string, error) {
			calls = append(calls, d)
			if fail {
				return nil, errors.New("token store unavailable")
			}
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(time.Second) })
	if _, err := eng.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "Dave@Example.com", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Who != "dave@example.com" || calls[0].Actor() != "departure:hr" {
		t.Fatalf("calls %+v", calls)
	}
	fail = false
	for range 5 {
		eng.RunOnce(e.ctx)
		e.clock.Advance(time.Minute)
	}
	if len(calls) != 2 {
		t.Fatalf("%d calls: want one failed and one that succeeded, then none", len(calls))
	}
}

// What OnDeparted reports it left working (a token the person created for
// a robot, shared secrets) is notified, critical, and audited once by the
// departure: it is not revoked, but a person must decide about it.
func TestDepartureNotifiesWhatStaysLive(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	left := []string{"API token tok_1 of ci-bot (operator, created by dave@example.com)", "rotate the shared secrets they may have known: the bootstrap admin token"}
	eng, err := rotator.New(rotator.Options{Store: e.store, Keys: []*rotator.Key{e.key}, Notifiers: map[string]rotator.Notifier{"notes": e.notes},
		Clock: e.clock, Inbound: e.store, State: e.store,
		OnDeparted: func(context.Context, rotator.Departure) ([]string, error) { return left, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(time.Second) })
	if _, err := eng.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "dave@example.com", UserID: "U0DAVE", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, ev := range evs {
		if ev.Action == "departure.remaining" {
			audited++
			if ev.Actor != "departure:hr" || ev.Detail["remaining"] != strings.Join(left, "; ") {
				t.Errorf("audited %+v", ev)
			}
		}
	}
	if audited != 1 {
		t.Fatalf("%d departure.remaining events, want 1 (one per departure, not per name)", audited)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e.notes.mu.Lock()
		i := slices.IndexFunc(e.notes.evs, func(ev rotator.Event) bool { return ev.Kind == rotator.EventDeparture })
		var ev rotator.Event
		if i >= 0 {
			ev = e.notes.evs[i]
		}
		e.notes.mu.Unlock()
		if i >= 0 {
			if ev.Severity != rotator.SeverityCritical || !strings.Contains(ev.Message, "tok_1 of ci-bot") || !strings.Contains(ev.Message, "bootstrap admin token") {
				t.Fatalf("notification %+v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no notification of what stays live")
		}
	}
}
