package rotator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// One departure, one of whose keys has a rotation that cannot step aside
// (it watches after its revoke): every other key of the person is rotated
// exactly once however often the event is retried, the blocked key once
// when its rotation ends, and a person hears once that the departure waits.
// On the code before departures were idempotent the retried event started
// a new emergency rotation of the other key at every engine pass.
func TestDepartureActsOnceOnEachKey(t *testing.T) {
	w := newCrashWorld(t, true)
	w.key.Owners = []string{"bob@example.com"}
	w.key.Drain.QuietPeriod = 0
	w.key.Watch = rotator.WatchPolicy{Period: time.Hour, PollInterval: time.Minute}
	other := *w.key
	other.Name = "billing"
	other.Sinks = []rotator.SinkBinding{{SinkName: "mem0", Sink: readerSink{newSink()}, Target: rotator.Target{Key: "billing", Path: "billing"}}}
	w.extra = []*rotator.Key{&other}
	w.restart("")
	w.bootstrap()
	b, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: "billing", Trigger: rotator.TriggerBootstrap, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := w.drive(b.ID, nil); r.Phase != rotator.PhaseDone {
		t.Fatalf("bootstrap of billing: %s", r.Phase)
	}
	// api: a staged rotation past its revoke, watching for an hour.
	a := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	for range 50 {
		w.engine.RunOnce(w.ctx)
		r, _ := w.store.GetRotation(w.ctx, a.ID)
		if r.Phase == rotator.PhaseWatching {
			break
		}
		w.clock.Set(r.NextAttemptAt)
	}
	if _, err := w.engine.ReportDeparture(w.ctx, rotator.DepartureReport{ID: "hr-1", Email: " Bob@Example.com", Actor: "hr"}); err != nil {
		t.Fatal(err)
	}
	for range 200 { // engine passes, each retrying the pending departure
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(30 * time.Second)
	}
	count := func(key string) int {
		rs, err := w.store.ListRotations(w.ctx, rotator.RotationFilter{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rs {
			if r.Trigger == rotator.TriggerDeparture {
				n++
			}
		}
		return n
	}
	if n := count("billing"); n != 1 {
		t.Fatalf("billing rotated %d times for one departure, want once", n)
	}
	if n := count("api"); n != 1 {
		t.Fatalf("api rotated %d times for one departure, want once (after its watch ended)", n)
	}
	waits := 0
	w.notes[0].mu.Lock()
	defer w.notes[0].mu.Unlock()
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventHeld && ev.Fields["keys"] == "api" {
			waits++
		}
	}
	if waits != 1 {
		t.Fatalf("%d notifications that the departure waits, want 1", waits)
	}
	if live := w.iss.liveCount(); live != 2 {
		t.Fatalf("%d live credentials at the issuer, want one per key", live)
	}
}

// The body of a departure names who claims to report it; that claim is not
// authenticated. The rotation is requested by the webhook that received it
// (departure:<name>), the claim is kept only in the audit, and the person
// it names may still approve the rotation. On the code before, the claimed
// actor became the requester, and so could not approve.
func TestDepartureActsAsItsWebhookNotTheClaimedActor(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com", "carol@example.com"}
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, Approvers: []string{"bob@example.com"}, ExpireAfter: time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr", Actor: "bob@example.com"})
	if err != nil || len(res.Rotations) != 1 || len(res.Staged) != 1 {
		t.Fatalf("departure: %+v %v", res, err)
	}
	r := e.run(res.Rotations[0], 10)
	if r.Actor != "departure:hr" {
		t.Fatalf("rotation requested by %q, want departure:hr", r.Actor)
	}
	if r.Hold != rotator.HoldApproval {
		t.Fatalf("not held at the start gate: %s %s", r.Phase, r.Hold)
	}
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	claimed := false
	for _, ev := range evs {
		if ev.Actor == "bob@example.com" {
			t.Fatalf("audit attributes %s to the claimed actor", ev.Action)
		}
		if ev.Action == "departure.received" && ev.Actor == "departure:hr" && ev.Detail["claimed_actor"] == "bob@example.com" {
			claimed = true
		}
	}
	if !claimed {
		t.Fatal("the claimed actor is not kept as audit detail of the departure")
	}
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: rotator.VerdictApprove}); err != nil {
		t.Fatalf("bob, only named in the body, may not approve: %v", err)
	}
}

// A departure sent again for a person already departed (same email, a new
// webhook id) acts on nothing: the generations minted since they left were
// never theirs. On the code before, the second event planned from the
// configured owners, found nobody else, and revoked the replacement key at
// once.
func TestDepartureOfSomeoneAlreadyGoneActsOnNothing(t *testing.T) {
	e := newEnv(t)
	e.key.Drain.QuietPeriod = 0
	e.bootstrap()
	first, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr"})
	if err != nil || len(first.Emergency) != 1 || first.Duplicate {
		t.Fatalf("first departure: %+v %v", first, err)
	}
	if r := e.run(first.Rotations[0], 50); r.Phase != rotator.PhaseDone {
		t.Fatalf("emergency of the first departure: %s %s", r.Phase, r.LastError)
	}
	minted := e.creds()[2]
	if minted == nil || minted.State != rotator.CredCurrent {
		t.Fatalf("no current generation 2 after the emergency: %+v", e.creds())
	}
	again, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-2", Email: "Alice@Example.com", Via: "hr"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Emergency)+len(again.Staged)+len(again.Rotations) != 0 || !again.Duplicate {
		t.Fatalf("a second departure of the same person acted: %+v", again)
	}
	for range 20 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(time.Minute)
	}
	if c := e.creds()[2]; c.State != rotator.CredCurrent || e.iss.isRevoked(c.IssuerID) {
		t.Fatalf("generation 2, minted after she left, is %s", c.State)
	}
	if rs, _ := e.store.ListRotations(e.ctx, rotator.RotationFilter{Key: "api"}); len(rs) != 2 {
		t.Fatalf("%d rotations, want the bootstrap and one departure", len(rs))
	}
}

// A departure naming a second identity of the person (a user id besides
// the email already reported) acts on the keys owned through the new
// identity only.
func TestDepartureActsOnNewlyNamedIdentitiesOnly(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com"}
	e.key.Drain.QuietPeriod = 0
	other := *e.key
	other.Name = "billing"
	other.Owners = []string{"U024BE7LH"}
	other.Sinks = []rotator.SinkBinding{{SinkName: "mem0", Sink: readerSink{newSink()}, Target: rotator.Target{Key: "billing", Path: "billing"}}}
	e.engine.Close(time.Second)
	eng, err := rotator.New(rotator.Options{Store: e.store, Keys: []*rotator.Key{e.key, &other}, Clock: e.clock,
		Backoff: rotator.Backoff{Base: time.Second, Max: time.Minute, Factor: 2}, Inbound: e.store, State: e.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(time.Second) })
	e.engine = eng
	e.bootstrap()
	b, err := eng.Trigger(e.ctx, rotator.TriggerRequest{Key: "billing", Trigger: rotator.TriggerBootstrap, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.run(b.ID, 50); r.Phase != rotator.PhaseDone {
		t.Fatalf("bootstrap of billing: %s", r.Phase)
	}
	first, err := eng.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr"})
	if err != nil || !slices.Equal(first.Emergency, []string{"api"}) {
		t.Fatalf("first departure: %+v %v", first, err)
	}
	second, err := eng.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-2", Email: "alice@example.com", UserID: "u024be7lh", Via: "hr"})
	if err != nil || !slices.Equal(second.Emergency, []string{"billing"}) || second.Duplicate {
		t.Fatalf("second departure, naming her user id too: %+v %v", second, err)
	}
}

// Once a person has left, no notification names them as an owner (a
// mention would page someone who is gone): the departure's own rotation
// is announced to the owners who remain. On the code before, every event
// carried the configured owners.
func TestNotificationsLeaveDepartedOwnersOut(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"Alice@example.com", "carol@example.com"}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr"})
	if err != nil || len(res.Rotations) != 1 {
		t.Fatalf("departure: %+v %v", res, err)
	}
	id := res.Rotations[0]
	if r := e.run(id, 50); r.Phase != rotator.PhaseDone {
		t.Fatalf("departure's rotation ended %s/%s", r.Phase, r.Hold)
	}
	var seen []rotator.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen = seen[:0]
		e.notes.mu.Lock()
		for _, ev := range e.notes.evs {
			if ev.RotationID == id {
				seen = append(seen, ev)
			}
		}
		e.notes.mu.Unlock()
		if slices.ContainsFunc(seen, func(ev rotator.Event) bool { return ev.Kind == rotator.EventFinished }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.ContainsFunc(seen, func(ev rotator.Event) bool { return ev.Kind == rotator.EventFinished }) {
		t.Fatalf("the rotation's end was never notified: %d events", len(seen))
	}
	for _, ev := range seen {
		if !slices.Equal(ev.Owners, []string{"carol@example.com"}) {
			t.Fatalf("%s names owners %v after alice left", ev.Kind, ev.Owners)
		}
	}
}

// When every owner of a key has left, its notifications name the key's
// approvers who are still here instead of nobody: an event that needs a
// person still reaches someone (review finding 10).
func TestNotificationsOfAKeyWhoseOwnersLeftReachItsApprovers(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com"}
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, Approvers: []string{"alice@example.com", "bob@example.com"}}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr"})
	if err != nil || len(res.Rotations) != 1 {
		t.Fatalf("departure: %+v %v", res, err)
	}
	id := res.Rotations[0]
	e.run(id, 50)
	var started *rotator.Event
	for deadline := time.Now().Add(10 * time.Second); started == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		e.notes.mu.Lock()
		for _, ev := range e.notes.evs {
			if ev.RotationID == id && ev.Kind == rotator.EventStarted {
				started = &ev
			}
		}
		e.notes.mu.Unlock()
	}
	if started == nil {
		t.Fatal("the departure's rotation was never announced")
	}
	if !slices.Equal(started.Owners, []string{"bob@example.com"}) {
		t.Fatalf("the announcement names %v, want the approver still here", started.Owners)
	}
}
