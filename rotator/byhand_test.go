package rotator_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// heldEvents are the hold notifications of rotation id, in order.
func (w *crashWorld) heldEvents(id string) []rotator.Event {
	w.notes[0].mu.Lock()
	defer w.notes[0].mu.Unlock()
	var out []rotator.Event
	seen := map[string]bool{}
	for _, ev := range w.notes[0].evs {
		if ev.RotationID == id && ev.Kind == rotator.EventHeld && !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// waitDelivered lets the outbox reach the notifiers.
func (w *crashWorld) waitDelivered() {
	w.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var pending int
		if err := w.store.DB().QueryRowContext(w.ctx, `SELECT COUNT(*) FROM outbox WHERE delivered_at = ''`).Scan(&pending); err != nil {
			w.t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d notifications not delivered", pending)
		}
		w.engine.RunOnce(w.ctx)
		time.Sleep(10 * time.Millisecond)
	}
}

// A leak behind a manual issuer is one visit to the dashboard: the first
// message says LEAKED and asks to revoke the leaked key and mint the
// replacement, with both commands; the replacement reaches every sink as
// soon as it is submitted, before or after the revoke is confirmed. Before,
// the person was asked to revoke first and to come back for the
// replacement after confirm, consumers down in between.
func TestLeakByHandIsOneVisitInEitherOrder(t *testing.T) {
	for name, confirmFirst := range map[string]bool{"submit first": false, "confirm first": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newCrashWorld(t, true)
			w.bootstrap()
			w.byHand()
			r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "pasted in a ticket"})()
			if r.Lifecycle != "emergency_manual" {
				t.Fatalf("lifecycle %q, want emergency_manual", r.Lifecycle)
			}
			w.engine.RunOnce(w.ctx)
			w.waitDelivered()
			held := w.heldEvents(r.ID)
			if len(held) != 1 {
				t.Fatalf("%d hold notifications before anyone acted, want 1", len(held))
			}
			first := held[0]
			for _, want := range []string{"LEAKED", "revoke api-v1 then rekey confirm " + r.ID, "mint api-v2 then rekey submit " + r.ID, "either order"} {
				if !strings.Contains(first.Message, want) {
					t.Errorf("the first message lacks %q: %s", want, first.Message)
				}
			}
			if first.Severity != rotator.SeverityCritical || first.Fields["hold"] != string(rotator.HoldSecret) {
				t.Errorf("first message: %s hold=%s, want critical, waiting for the secret", first.Severity, first.Fields["hold"])
			}
			var liveBeforeConfirm bool
			end, _ := w.drive(r.ID, func(w *crashWorld, r *rotator.Rotation) {
				if r.Phase == rotator.PhaseConfirming && r.Hold == rotator.HoldConfirm {
					creds, _ := w.store.Credentials(w.ctx, "api")
					for _, c := range creds {
						if c.Generation == 2 && c.State == rotator.CredCurrent && rotator.Fingerprint(w.sinks[0].current("api")) == c.Fingerprint {
							liveBeforeConfirm = true
						}
					}
				}
				byHandPerson(confirmFirst)(w, r)
			})
			if end.Phase != rotator.PhaseDone {
				t.Fatalf("ended %s (%s)", end.Phase, end.Outcome)
			}
			if !confirmFirst && !liveBeforeConfirm {
				t.Error("the replacement was not current in the sinks while rekey waited for the confirmation")
			}
			if !w.iss.isRevoked("id-1") || w.iss.liveCount() != 1 {
				t.Errorf("at the issuer: v1 revoked %v, %d live, want v1 revoked and the replacement live", w.iss.isRevoked("id-1"), w.iss.liveCount())
			}
			w.waitDelivered()
			if confirmFirst {
				held = w.heldEvents(r.ID)
				if len(held) < 2 || !strings.Contains(held[1].Message, "URGENT: the leaked key is confirmed revoked") {
					t.Errorf("after the confirmation the wait for the replacement is not re-announced as urgent: %+v", held)
				}
			}
			w.check(end)
		})
	}
}

// confirm is trust but verify: while the old key still authenticates the
// confirmation is refused (and audited); --force takes it, audited as
// forced; after a real revocation it is verified.
func TestConfirmProbesTheOldKey(t *testing.T) {
	for name, force := range map[string]bool{"revoked then confirmed": false, "forced": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newCrashWorld(t, true)
			w.bootstrap()
			w.byHand()
			r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "age"})()
			var refused, confirmed bool
			end, _ := w.drive(r.ID, func(w *crashWorld, r *rotator.Rotation) {
				switch {
				case r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
					w.submit(r.ID, w.key.Issuer.(*byHandIssuer).mintAtDashboard("api", "api-v2"))
				case r.Hold == rotator.HoldConfirm && !refused:
					_, err := w.engine.ConfirmRevoked(w.ctx, rotator.ConfirmRequest{RotationID: r.ID, Actor: "oncall@example.com"})
					if !errors.Is(err, rotator.ErrRejected) || !strings.Contains(err.Error(), "api-v1 still authenticates") {
						t.Fatalf("premature confirm: %v, want refused: api-v1 still authenticates", err)
					}
					refused = true
				case r.Hold == rotator.HoldConfirm && !confirmed:
					if !force {
						_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: "id-1"})
					}
					if _, err := w.engine.ConfirmRevoked(w.ctx, rotator.ConfirmRequest{RotationID: r.ID, Actor: "oncall@example.com", Force: force}); err != nil {
						t.Fatalf("confirm: %v", err)
					}
					confirmed = true
				}
			})
			if end.Phase != rotator.PhaseDone {
				t.Fatalf("ended %s (%s)", end.Phase, end.Outcome)
			}
			evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
			var refusal, confirm *rotator.AuditEvent
			for i := range evs {
				switch evs[i].Action {
				case "confirm.refused":
					refusal = &evs[i]
				case "revoke.confirmed":
					confirm = &evs[i]
				}
			}
			if refusal == nil || refusal.Actor != "oncall@example.com" || !strings.Contains(refusal.Detail["why"], "still authenticates") {
				t.Errorf("the refused confirm is not audited with who and why: %+v", refusal)
			}
			want := map[bool]string{false: "true", true: "forced"}[force]
			if confirm == nil || confirm.Actor != "oncall@example.com" || confirm.Detail["verified"] != want {
				t.Errorf("confirmation audit %+v, want by oncall@example.com, verified: %s", confirm, want)
			}
		})
	}
}

// A confirmation whose commit meets a concurrent change of the rotation
// (here: its version moved under it) is served again from the stored
// request: the credential is marked revoked together with its
// revoke.confirmed event, never without it, and it is not refused as
// "not waiting" the second time.
func TestConfirmSurvivesAConflict(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.byHand()
	var conflicts atomic.Int32
	w.beforeSave = func(c rotator.Commit) {
		for _, ev := range c.Audit {
			if ev.Action == "revoke.confirmed" && conflicts.Add(1) == 1 {
				if _, err := w.store.DB().ExecContext(w.ctx, `UPDATE rotations SET version = version + 1 WHERE id = ?`, c.Rotation.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	w.restart("")
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "age"})()
	end, _ := w.drive(r.ID, func(w *crashWorld, r *rotator.Rotation) {
		switch {
		case r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
			w.submit(r.ID, w.key.Issuer.(*byHandIssuer).mintAtDashboard("api", "api-v2"))
		case r.Hold == rotator.HoldConfirm && conflicts.Load() == 0:
			_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: "id-1"})
			if _, err := w.engine.ConfirmRevoked(w.ctx, rotator.ConfirmRequest{RotationID: r.ID, Actor: "oncall@example.com"}); err != nil {
				t.Fatalf("confirm: %v", err)
			}
		}
	})
	if end.Phase != rotator.PhaseDone {
		t.Fatalf("ended %s (%s)", end.Phase, end.Outcome)
	}
	if conflicts.Load() < 2 {
		t.Fatalf("the confirmation was committed %d times, want a conflict and a second commit", conflicts.Load())
	}
	evs, err := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, ev := range evs {
		switch ev.Action {
		case "request.refused":
			t.Errorf("the confirmation was refused after the conflict: %v", ev.Detail)
		case "revoke.confirmed":
			confirmed++
			if ev.Actor != "oncall@example.com" || ev.Detail["verified"] != "true" || ev.Detail["credentials"] != "[api-v1]" {
				t.Errorf("revoke.confirmed %+v, want api-v1 confirmed by oncall@example.com, verified", ev)
			}
		}
	}
	if confirmed != 1 {
		t.Errorf("%d revoke.confirmed events, want 1", confirmed)
	}
	w.check(end)
}

// A refused submission is audited: who, when, why — never the value.
func TestRefusedSubmissionIsAudited(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.byHand()
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	w.engine.RunOnce(w.ctx)
	const value = "sk_not_from_the_dashboard_0123456789"
	if _, err := w.engine.Submit(w.ctx, r.ID, "oncall@example.com", rotator.NewSecret(value)); !errors.Is(err, rotator.ErrRejected) {
		t.Fatalf("submit of an unknown key: %v, want rejected", err)
	}
	evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
	var found bool
	for _, ev := range evs {
		if ev.Action == "submit.refused" && ev.Actor == "oncall@example.com" && strings.Contains(ev.Detail["why"], "no such key") {
			found = true
		}
		if strings.Contains(ev.Detail["why"], value) {
			t.Errorf("the audit trail holds the refused value")
		}
	}
	if !found {
		t.Errorf("the refused submission is not audited: %+v", evs)
	}
}

// A key that requires a second person for decommission revokes nothing
// until someone other than the requester approves; the requester in
// another spelling is the same person; a denial revokes nothing at all.
func TestDecommissionNeedsASecondPerson(t *testing.T) {
	for name, deny := range map[string]bool{"approved": false, "denied": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newCrashWorld(t, true)
			w.key.Decommission.SecondPerson = true
			w.restart("")
			w.bootstrap()
			r, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerDecommission, Mode: rotator.ModeEmergency, Actor: "alice@example.com", Reason: "retired"})
			if err != nil {
				t.Fatal(err)
			}
			w.engine.RunOnce(w.ctx)
			got, _ := w.store.GetRotation(w.ctx, r.ID)
			if got.Hold != rotator.HoldApproval || !strings.Contains(got.HoldDetail, "needs a second person") || w.iss.liveCount() != 1 {
				t.Fatalf("held %q (%s), %d live; want held for a second person with nothing revoked", got.Hold, got.HoldDetail, w.iss.liveCount())
			}
			if _, err := w.engine.Decide(w.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: " Alice@Example.com", Verdict: rotator.VerdictApprove, Via: "api"}); !errors.Is(err, rotator.ErrSelfApproval) {
				t.Fatalf("the requester in another spelling approved: %v", err)
			}
			verdict := rotator.VerdictApprove
			if deny {
				verdict = rotator.VerdictDeny
			}
			if _, err := w.engine.Decide(w.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob@example.com", Verdict: verdict, Via: "api"}); err != nil {
				t.Fatal(err)
			}
			end, _ := w.drive(r.ID, nil)
			switch {
			case deny && (end.Phase != rotator.PhaseDenied || w.iss.liveCount() != 1):
				t.Fatalf("after a denial: %s with %d live, want denied with the key live", end.Phase, w.iss.liveCount())
			case !deny && (end.Phase != rotator.PhaseDone || w.iss.liveCount() != 0):
				t.Fatalf("after the second person: %s with %d live, want done with nothing live", end.Phase, w.iss.liveCount())
			}
		})
	}
}

// A staged rotation superseded while it waits for a person to mint tells
// that person, in the supersede notification, to delete what they may have
// minted, by name; the emergency that follows asks for the next name.
func TestSupersedeWhileWaitingForASecretNamesWhatToDelete(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.byHand()
	staged := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	w.engine.RunOnce(w.ctx)
	if r, _ := w.store.GetRotation(w.ctx, staged.ID); r.Hold != rotator.HoldSecret {
		t.Fatalf("staged rotation held %q, want waiting for the secret", r.Hold)
	}
	w.reportCurrent("api", "leak-1", "github")
	w.waitDelivered()
	var preempted *rotator.Event
	w.notes[0].mu.Lock()
	for i, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventPreempted && ev.RotationID == staged.ID {
			preempted = &w.notes[0].evs[i]
		}
	}
	w.notes[0].mu.Unlock()
	if preempted == nil || preempted.Severity != rotator.SeverityCritical ||
		!strings.Contains(preempted.Message, "if you already minted api-v2, delete it in the dashboard") {
		t.Fatalf("supersede notification %+v does not tell the person to delete api-v2", preempted)
	}
	// The emergency runs once the staged rotation rolled back, and asks
	// for api-v3 in one message with the revocation of api-v1.
	for deadline := time.Now().Add(30 * time.Second); ; {
		w.engine.RunOnce(w.ctx)
		active, err := w.store.ActiveRotation(w.ctx, "api")
		if err == nil && active.ID != staged.ID && active.Hold == rotator.HoldSecret {
			if !strings.Contains(active.HoldDetail, "LEAKED") || !strings.Contains(active.HoldDetail, "mint api-v3") {
				t.Fatalf("the emergency asks: %s", active.HoldDetail)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no emergency waiting for the replacement (active %+v, %v)", active, err)
		}
		w.clock.Advance(time.Second)
	}
}

// The one message says why the key must go: a departure is not a leak.
func TestByHandHeadlineSaysWhy(t *testing.T) {
	for trigger, want := range map[rotator.Trigger]string{
		rotator.TriggerExposure:  "LEAKED: api-v1 is exposed",
		rotator.TriggerDeparture: "OWNER LEFT: api-v1 was held by a person who left",
	} {
		t.Run(string(trigger), func(t *testing.T) {
			t.Parallel()
			w := newCrashWorld(t, true)
			w.bootstrap()
			w.byHand()
			r := w.trigger(rotator.TriggerRequest{Trigger: trigger, Mode: rotator.ModeEmergency})()
			w.engine.RunOnce(w.ctx)
			got, _ := w.store.GetRotation(w.ctx, r.ID)
			if !strings.HasPrefix(got.HoldDetail, want) {
				t.Fatalf("the message reads %q, want it to start %q", got.HoldDetail, want)
			}
		})
	}
}

// Decommissioning a manual key with two live generations names both: one
// confirmation covers them all, so the person must know to revoke each.
func TestDecommissionByHandNamesEveryLiveKey(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, ExpireAfter: time.Hour}
	w.restart("")
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	if r, _ = w.drive(r.ID, nil); r.Phase != rotator.PhaseExpired {
		t.Fatalf("setup rotation ended %s", r.Phase)
	}
	w.key.Approval = rotator.ApprovalPolicy{}
	w.byHand()
	d := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerDecommission, Mode: rotator.ModeEmergency})()
	w.engine.RunOnce(w.ctx)
	got, _ := w.store.GetRotation(w.ctx, d.ID)
	if got.Hold != rotator.HoldConfirm || !strings.Contains(got.HoldDetail, "revoke ALL 2 of its live keys (api-v1, api-v2)") {
		t.Fatalf("held %q: %s", got.Hold, got.HoldDetail)
	}
	w.clock.Advance(2 * time.Hour) // a reminder keeps the same message
	w.engine.RunOnce(w.ctx)
	if again, _ := w.store.GetRotation(w.ctx, d.ID); strings.Count(again.HoldDetail, "Decommission of") != 1 {
		t.Fatalf("the message grew on a later turn: %s", again.HoldDetail)
	}
}

// A value rekey knows as another key's credential is refused as a
// manual key's new generation (and audited): taken, a rotation of the
// other key would revoke it (outside tryout 3, finding 4).
func TestSubmitRefusesAnotherKeysCredential(t *testing.T) {
	w := newCrashWorld(t, true)
	billingSink := newSink()
	other := *w.key
	other.Name = "billing"
	other.Sinks = []rotator.SinkBinding{{SinkName: "mem0", Sink: readerSink{billingSink}, Target: rotator.Target{Key: "billing", Path: "billing"}}}
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
	billingSink.mu.Lock()
	value := billingSink.vals["billing"].cur
	billingSink.mu.Unlock()
	w.byHand()
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	w.engine.RunOnce(w.ctx)
	_, err = w.engine.Submit(w.ctx, r.ID, "oncall@example.com", rotator.NewSecret(value))
	if !errors.Is(err, rotator.ErrBadState) || !strings.Contains(err.Error(), "key billing") || strings.Contains(err.Error(), value) {
		t.Fatalf("submit of billing's credential for api: %v", err)
	}
	evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
	refused := false
	for _, ev := range evs {
		refused = refused || ev.Action == "submit.refused" && strings.Contains(ev.Detail["why"], "key billing")
	}
	if !refused {
		t.Fatal("the refusal is not audited")
	}
}
