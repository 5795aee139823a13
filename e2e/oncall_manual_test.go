package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// The on-call engineer of a key only a person can mint (docs/MANUAL-ISSUER.md),
// played against the real binary: a scripted person at the Kubeadapt-style
// dashboard (its admin calls), commands run exactly as the messages print
// them, and what they are sent read from the webhook notifier's receiver.

// A scheduled rotation: the mint message names the key, links the
// dashboard page, gives the complete command and says not to revoke yet; a
// wrong value is refused and audited; the revoke message names the old key;
// a confirm while it still works is refused (exit 3) and audited; after the
// revocation the confirm is verified.
func TestOnCallStagedRotation(t *testing.T) {
	t.Parallel()
	o := newOncall(t, oncallParams{Quiet: "0s"})
	d := o.start()
	v1, s1 := o.bootstrap()
	id := o.rotate(billing)

	mint := o.waitEvent(id, "asking to mint v2", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
	for _, want := range []string{"kubeadapt-billing-v2", "https://app.kubeadapt.example/settings/api-keys?search=kubeadapt-billing-v2",
		"`rekey submit " + id + "`", "Do not revoke kubeadapt-billing-v1 yet"} {
		if !strings.Contains(mint.Message, want) {
			t.Errorf("the mint message lacks %q: %s", want, mint.Message)
		}
	}
	submit := command(t, mint.Message, "submit")
	const wrong = "ka_live_tooShort"
	addSecret(wrong)
	if out, code := o.runAs(wrong+"\n", submit...); code != 3 || !strings.Contains(out, "does not match the pattern") || strings.Contains(out, wrong) {
		t.Fatalf("a wrong value: exit %d: %s", code, out)
	}
	if ev := o.auditAction(id, "submit.refused"); ev == nil || ev.Actor != "oncall@example.com" || !strings.Contains(ev.Detail["why"], "does not match the pattern") {
		t.Fatalf("the refused submission is not audited with who and why: %+v", ev)
	}
	v2, s2 := o.mint("kubeadapt-billing-v2")
	if out, code := o.runAs(s2+"\n", submit...); code != 0 {
		t.Fatalf("submit v2: exit %d: %s", code, out)
	}

	revoke := o.waitEvent(id, "asking to revoke v1", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "confirm" })
	for _, want := range []string{"Revoke the API key kubeadapt-billing-v1", "search=kubeadapt-billing-v1", "`rekey confirm " + id + "`"} {
		if !strings.Contains(revoke.Message, want) {
			t.Errorf("the revoke message lacks %q: %s", want, revoke.Message)
		}
	}
	confirm := command(t, revoke.Message, "confirm")
	if out, code := o.runAs("", confirm...); code != 3 || !strings.Contains(out, "kubeadapt-billing-v1 still authenticates") {
		t.Fatalf("a confirm while v1 still works: exit %d: %s", code, out)
	}
	if ev := o.auditAction(id, "confirm.refused"); ev == nil || ev.Actor != "oncall@example.com" {
		t.Fatalf("the refused confirm is not audited: %+v", ev)
	}
	o.revokeAtDashboard(v1)
	if out, code := o.runAs("", confirm...); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, out)
	}
	if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
		t.Fatalf("rotation ended %s: %s", r.Phase, r.Outcome)
	}
	if ev := o.auditAction(id, "revoke.confirmed"); ev == nil || ev.Actor != "oncall@example.com" || ev.Detail["verified"] != "true" {
		t.Fatalf("the confirmation is not audited as verified by the on-call engineer: %+v", ev)
	}
	drained := o.waitEvent(id, "leaving the drain gate", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["from"] == "draining" })
	if drained.Fields["exit"] != "passed" {
		t.Errorf("the drain exit reads %q, want passed", drained.Fields["exit"])
	}
	if live := o.liveAtIssuer(); !slices.Equal(live, []string{"kubeadapt-billing-v2"}) || kaDataStatus(t, o.ka, s1) != 401 || kaDataStatus(t, o.ka, s2) != 200 {
		t.Fatalf("at the issuer: live %v", live)
	}
	if doc := o.sink(billing); doc.Current == nil || doc.Current.Value != s2 || doc.Previous != nil {
		t.Fatalf("sink: %+v", doc)
	}
	_ = v2
	d.stop()
	o.scanForSecrets()
}

// A confirm while the old key still works is refused; --force (API:
// "force": true) takes it, and the audit says it was forced — and the
// dashboard still holds the old key live: rekey took the person's word, and
// says so.
func TestOnCallForcedConfirm(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"cli", "api"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			o := newOncall(t, oncallParams{Quiet: "0s"})
			d := o.start()
			_, s1 := o.bootstrap()
			id := o.rotate(billing)
			mint := o.waitEvent(id, "asking to mint v2", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
			_, s2 := o.mint("kubeadapt-billing-v2")
			if out, code := o.runAs(s2+"\n", command(t, mint.Message, "submit")...); code != 0 {
				t.Fatalf("submit: exit %d: %s", code, out)
			}
			revoke := o.waitEvent(id, "asking to revoke v1", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "confirm" })
			confirm := command(t, revoke.Message, "confirm")
			switch via {
			case "cli":
				if out, code := o.runAs("", confirm...); code != 3 || !strings.Contains(out, "--force") {
					t.Fatalf("premature confirm: exit %d: %s", code, out)
				}
				if out, code := o.runAs("", append(confirm, "--force")...); code != 0 {
					t.Fatalf("confirm --force: exit %d: %s", code, out)
				}
			case "api":
				if got := o.rawAPI("POST", "/v1/rotations/"+id+"/confirm", map[string]any{}, ""); got.status != 422 || !strings.Contains(got.body, "still authenticates") {
					t.Fatalf("premature confirm: %d %s", got.status, got.body)
				}
				if got := o.rawAPI("POST", "/v1/rotations/"+id+"/confirm", map[string]any{"force": true}, ""); got.status != 200 {
					t.Fatalf("forced confirm: %d %s", got.status, got.body)
				}
			}
			if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
				t.Fatalf("rotation ended %s", r.Phase)
			}
			if ev := o.auditAction(id, "revoke.confirmed"); ev == nil || ev.Detail["verified"] != "forced" || !strings.Contains(ev.Detail["reason"], "still authenticates") {
				t.Fatalf("the forced confirmation is not audited as forced, with why: %+v", ev)
			}
			if ev := o.auditAction(id, "confirm.refused"); ev == nil {
				t.Fatal("the premature confirm is not audited")
			}
			if kaDataStatus(t, o.ka, s1) != 200 {
				t.Fatal("the dashboard revoked v1 by itself?")
			}
			d.stop()
			o.scanForSecrets()
		})
	}
}

// Nobody answers: reminders come at the configured cadence, critical and
// for on-call once escalate_after passed, and the wait for a secret expires
// with a message naming what to delete.
func TestOnCallWaitsRemindEscalateAndExpire(t *testing.T) {
	t.Parallel()
	o := newOncall(t, oncallParams{Every: "1s", Escalate: "3s", Expire: "6s"})
	d := o.start()
	id := o.activeRotation(billing, 10*time.Second)
	if r := o.waitRotation(id, 20*time.Second); r.Phase != "failed" || !strings.Contains(r.Outcome, "nobody submitted the secret") {
		t.Fatalf("the unanswered bootstrap ended %s: %s", r.Phase, r.Outcome)
	}
	o.waitEvent(id, "naming what to delete", 10*time.Second, func(ev hookEvent) bool {
		return ev.Kind == "credential.orphan" && strings.Contains(ev.Message, "if you minted kubeadapt-billing-v1, revoke it")
	})
	evs := o.events(id)
	first := held(evs, "secret")
	var reminders []hookEvent
	for _, ev := range evs {
		if ev.Kind == "rotation.reminder" {
			reminders = append(reminders, ev)
		}
	}
	if len(first) != 1 || len(reminders) < 2 {
		t.Fatalf("%d first messages, %d reminders; want 1 and at least 2", len(first), len(reminders))
	}
	escalated := 0
	for i, r := range reminders {
		// The cadence is kept from the start of the wait: reminder i is
		// never sent before i cadences passed (a late one, on a loaded
		// machine, is not a reason to send the next one early either).
		waited := r.At.Sub(first[0].At)
		if due := time.Duration(i+1) * time.Second; waited < due-50*time.Millisecond {
			t.Errorf("reminder %d came %s into the wait, before its time (%s)", i+1, waited, due)
		}
		switch {
		case r.Fields["escalate"] == "oncall":
			escalated++
			if r.Severity != "critical" || waited < 3*time.Second {
				t.Errorf("escalated after %s (%s), want critical from 3s on", waited, r.Severity)
			}
		case waited >= 3*time.Second+time.Second:
			t.Errorf("a reminder %s into the wait is not escalated", waited)
		}
		if !slices.Contains(r.Owners, "alice@example.com") {
			t.Errorf("a reminder without the owners: %+v", r)
		}
	}
	if escalated == 0 {
		t.Error("no reminder escalated to on-call")
	}
	d.stop()
}

// A leak: ONE message says LEAKED, names the leaked key and its
// replacement, links the dashboard and gives both complete commands; the
// replacement is taken before or after the revoke confirmation, and reaches
// the sink as soon as it is submitted.
func TestOnCallLeak(t *testing.T) {
	t.Parallel()
	for name, confirmFirst := range map[string]bool{"submit first": false, "confirm first": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newOncall(t, oncallParams{Quiet: "0s"})
			d := o.start()
			v1, s1 := o.bootstrap()
			if code, _ := o.report("leak-"+strings.ReplaceAll(name, " ", "-"), s1); code != 202 && code != 200 {
				t.Fatalf("exposure report: %d", code)
			}
			id := o.activeRotation(billing, 10*time.Second)
			leak := o.waitEvent(id, "LEAKED", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
			for _, want := range []string{"LEAKED", "kubeadapt-billing-v1", "kubeadapt-billing-v2", "REVOKE", "search=kubeadapt-billing-v1",
				"`rekey confirm " + id + "`", "`rekey submit " + id + "`", "either order"} {
				if !strings.Contains(leak.Message, want) {
					t.Errorf("the leak message lacks %q: %s", want, leak.Message)
				}
			}
			if leak.Severity != "critical" || !slices.Contains(leak.Owners, "alice@example.com") {
				t.Errorf("the leak message is %s for %v, want critical for the owners", leak.Severity, leak.Owners)
			}
			if n := len(held(o.events(id), "confirm")) + len(held(o.events(id), "secret")); n != 1 {
				t.Fatalf("%d messages asking the person before they acted, want one", n)
			}
			// An emergency never expires its wait for the replacement: no
			// "expires"/deadline it would not honour, but when it escalates.
			if out, code := o.runAs("", "rotations", "--key", billing); code != 0 || strings.Contains(out, "expires") || !strings.Contains(out, "escalates in") {
				t.Errorf("rotations during the LEAKED wait (exit %d): %s", code, out)
			}
			if out, _ := o.runAs("", "show", id); strings.Contains(out, "deadline") || !strings.Contains(out, "escalates to on-call in") {
				t.Errorf("show during the LEAKED wait: %s", out)
			}
			// The leaked key is never shown as an ordinary current key.
			if out, _ := o.runAs("", "describe", billing); !strings.Contains(out, "current (LEAKED: exposed, still live until revoked)") {
				t.Errorf("describe during the LEAKED wait: %s", out)
			}
			if out, _ := o.runAs("", "status"); !strings.Contains(out, "kubeadapt-billing-v1 LEAKED: exposed, still live until revoked") {
				t.Errorf("status during the LEAKED wait: %s", out)
			}
			confirm, submit := command(t, leak.Message, "confirm"), command(t, leak.Message, "submit")
			if confirmFirst {
				o.revokeAtDashboard(v1)
				out, code := o.runAs("", confirm...)
				if code != 0 {
					t.Fatalf("confirm: exit %d: %s", code, out)
				}
				// The answer reflects the confirmation just taken.
				if !strings.Contains(out, "kubeadapt-billing-v1 is confirmed revoked") || strings.Contains(out, "LEAKED") {
					t.Errorf("the answer to confirm: %s", out)
				}
				urgent := o.waitEvent(id, "URGENT", 10*time.Second, func(ev hookEvent) bool {
					return strings.HasPrefix(ev.Message, billing+" waits: URGENT: the leaked key is confirmed revoked")
				})
				if strings.Contains(urgent.Message, "Do not revoke") {
					t.Errorf("the emergency's wait for the replacement says not to revoke the leaked key: %s", urgent.Message)
				}
			}
			_, s2 := o.mint("kubeadapt-billing-v2")
			if out, code := o.runAs(s2+"\n", submit...); code != 0 {
				t.Fatalf("submit: exit %d: %s", code, out)
			}
			if !confirmFirst {
				// Consumers have the replacement while the leaked key is
				// still live: rekey does not wait for the revoke to deliver.
				deadline := patient(10 * time.Second)
				for doc := o.sink(billing); doc.Current == nil || doc.Current.Value != s2; doc = o.sink(billing) {
					if time.Now().After(deadline) {
						t.Fatalf("the replacement did not reach the sink before the confirmation: %+v", doc)
					}
					time.Sleep(50 * time.Millisecond)
				}
				still := o.waitEvent(id, "asking to confirm", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "confirm" })
				if !strings.Contains(still.Message, "LEAKED: kubeadapt-billing-v1 still works") || !strings.Contains(still.Message, "kubeadapt-billing-v2 is live") {
					t.Errorf("the confirm wait says: %s", still.Message)
				}
				// The leaked value stays beside the replacement, never
				// current, so that the confirm can be probed with it: a
				// confirm while it still works is refused.
				if doc := o.sink(billing); doc.Previous == nil || doc.Previous.Value != s1 {
					t.Errorf("the sink does not keep the leaked value as previous to probe the confirm with: %+v", doc.Previous != nil)
				}
				if out, code := o.runAs("", confirm...); code != 3 || !strings.Contains(out, "kubeadapt-billing-v1 still authenticates") {
					t.Fatalf("a confirm while the leaked key still works: exit %d: %s", code, out)
				}
				o.revokeAtDashboard(v1)
				if out, code := o.runAs("", confirm...); code != 0 {
					t.Fatalf("confirm: exit %d: %s", code, out)
				}
			}
			if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
				t.Fatalf("emergency ended %s: %s", r.Phase, r.Outcome)
			}
			if live := o.liveAtIssuer(); !slices.Equal(live, []string{"kubeadapt-billing-v2"}) || kaDataStatus(t, o.ka, s1) != 401 {
				t.Fatalf("at the issuer: live %v", live)
			}
			if doc := o.sink(billing); doc.Current == nil || doc.Current.Value != s2 || doc.Previous != nil || doc.Pending != nil {
				t.Fatalf("sink: %+v", doc)
			}
			d.stop()
			o.scanForSecrets()
		})
	}
}

// An exposure of the old key while a staged rotation drains: a critical
// preempted notification names the leaked generation, the drain exit reads
// "overridden", and the person is asked to revoke it now.
func TestOnCallExposureDuringStagedRotation(t *testing.T) {
	t.Parallel()
	o := newOncall(t, oncallParams{Quiet: "1h"})
	d := o.start()
	v1, s1 := o.bootstrap()
	id := o.rotate(billing)
	mint := o.waitEvent(id, "asking to mint v2", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
	_, s2 := o.mint("kubeadapt-billing-v2")
	if out, code := o.runAs(s2+"\n", command(t, mint.Message, "submit")...); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, out)
	}
	o.waitFor(id, "draining", 10*time.Second, func(r issuerRotation) bool { return r.Phase == "draining" })
	if code, _ := o.report("leak-while-draining", s1); code != 202 && code != 200 {
		t.Fatalf("exposure report: %d", code)
	}
	pre := o.waitEvent(id, "preempted", 10*time.Second, func(ev hookEvent) bool { return ev.Kind == "rotation.preempted" })
	if pre.Severity != "critical" || !strings.Contains(pre.Message, "generation 1 (kubeadapt-billing-v1) is exposed") || !strings.Contains(pre.Message, "skips its drain gate") {
		t.Errorf("the override is announced as %s: %s", pre.Severity, pre.Message)
	}
	if !slices.Equal(pre.Owners, []string{"alice@example.com", "bob@example.com"}) || !strings.HasPrefix(pre.Actor, "exposure:") {
		t.Errorf("the override is announced by %q to %v, want by the exposure to the owners", pre.Actor, pre.Owners)
	}
	exit := o.waitEvent(id, "leaving the drain gate", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["from"] == "draining" })
	if exit.Fields["exit"] != "overridden" {
		t.Errorf("the drain exit reads %q, want overridden", exit.Fields["exit"])
	}
	revoke := o.waitEvent(id, "asking to revoke v1", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "confirm" })
	o.revokeAtDashboard(v1)
	if out, code := o.runAs("", command(t, revoke.Message, "confirm")...); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, out)
	}
	if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
		t.Fatalf("rotation ended %s: %s", r.Phase, r.Outcome)
	}
	if live := o.liveAtIssuer(); !slices.Equal(live, []string{"kubeadapt-billing-v2"}) {
		t.Fatalf("at the issuer: live %v", live)
	}
	d.stop()
	o.scanForSecrets()
}

// A leak while a staged rotation waits for the person's secret: the
// supersede notification tells them to delete what they may have minted,
// by name; the emergency asks for the next name in one message.
func TestOnCallSupersedeWhileWaitingForASecret(t *testing.T) {
	t.Parallel()
	o := newOncall(t, oncallParams{Quiet: "0s"})
	d := o.start()
	v1, s1 := o.bootstrap()
	staged := o.rotate(billing)
	o.waitEvent(staged, "asking to mint v2", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
	v2, _ := o.mint("kubeadapt-billing-v2") // minted, not submitted yet
	if code, _ := o.report("leak-while-minting", s1); code != 202 && code != 200 {
		t.Fatalf("exposure report: %d", code)
	}
	pre := o.waitEvent(staged, "superseded", 10*time.Second, func(ev hookEvent) bool { return ev.Kind == "rotation.preempted" })
	if !strings.Contains(pre.Message, "if you already minted kubeadapt-billing-v2, delete it in the dashboard") {
		t.Fatalf("the supersede notification does not name what to delete: %s", pre.Message)
	}
	o.revokeAtDashboard(v2) // as told
	var id string
	for deadline := patient(10 * time.Second); ; {
		if id = o.activeRotation(billing, 10*time.Second); id != staged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no emergency after the supersede")
		}
		time.Sleep(50 * time.Millisecond)
	}
	leak := o.waitEvent(id, "LEAKED", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "secret" })
	if !strings.Contains(leak.Message, "LEAKED") || !strings.Contains(leak.Message, "kubeadapt-billing-v3") {
		t.Fatalf("the emergency asks: %s", leak.Message)
	}
	o.revokeAtDashboard(v1)
	if out, code := o.runAs("", command(t, leak.Message, "confirm")...); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, out)
	}
	_, s3 := o.mint("kubeadapt-billing-v3")
	if out, code := o.runAs(s3+"\n", command(t, leak.Message, "submit")...); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, out)
	}
	if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
		t.Fatalf("emergency ended %s: %s", r.Phase, r.Outcome)
	}
	if live := o.liveAtIssuer(); !slices.Equal(live, []string{"kubeadapt-billing-v3"}) {
		t.Fatalf("at the issuer: live %v", live)
	}
	d.stop()
	o.scanForSecrets()
}

// A decommission of a key that requires a second person: nothing is
// revoked until someone other than the requester approves; the requester
// cannot; then the person is asked to revoke by name and confirm.
func TestOnCallDecommissionWithASecondPerson(t *testing.T) {
	t.Parallel()
	o := newOncall(t, oncallParams{Quiet: "0s"})
	d := o.start()
	v1, s1 := o.bootstrap()
	tok := func(user, role string) string {
		out, code := o.cliStdout("", "token", "create", "--user", user, "--role", role)
		if code != 0 {
			t.Fatalf("token create --user %s: exit %d", user, code)
		}
		return strings.TrimSpace(out)
	}
	aliceResp, aliceOp, aliceAppr, bob := tok("alice@example.com", "responder"), tok("alice@example.com", "operator"), tok("alice@example.com", "approver"), tok("bob@example.com", "approver")
	got := o.rawAPI("POST", "/v1/keys/"+billing+"/rotate", map[string]string{"trigger": "decommission", "mode": "emergency", "reason": "billing moved"}, aliceResp)
	if got.status != 201 {
		t.Fatalf("decommission: %d %s", got.status, got.body)
	}
	var r rotationView
	_ = json.Unmarshal([]byte(got.body), &r)
	wait := o.waitEvent(r.ID, "asking for a second person", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "approval" })
	if !strings.Contains(wait.Message, "needs a second person") || !strings.Contains(wait.Message, "alice@example.com") {
		t.Errorf("the hold says: %s", wait.Message)
	}
	if got := o.rawAPI("POST", "/v1/rotations/"+r.ID+"/approve", map[string]string{}, aliceAppr); got.status != 403 {
		t.Fatalf("the requester approved her own decommission: %d %s", got.status, got.body)
	}
	if kaDataStatus(t, o.ka, s1) != 200 || o.sink(billing).Current == nil {
		t.Fatal("something was revoked or removed before the second person approved")
	}
	if got := o.rawAPI("POST", "/v1/rotations/"+r.ID+"/approve", map[string]string{}, bob); got.status != 200 {
		t.Fatalf("the second person's approval: %d %s", got.status, got.body)
	}
	revoke := o.waitEvent(r.ID, "asking to revoke v1", 10*time.Second, func(ev hookEvent) bool { return ev.Fields["hold"] == "confirm" })
	if !strings.Contains(revoke.Message, "Revoke the API key kubeadapt-billing-v1") || !strings.Contains(revoke.Message, "`rekey confirm "+r.ID+"`") {
		t.Errorf("the revoke message: %s", revoke.Message)
	}
	o.revokeAtDashboard(v1)
	if got := o.rawAPI("POST", "/v1/rotations/"+r.ID+"/confirm", map[string]string{}, aliceOp); got.status != 200 {
		t.Fatalf("confirm: %d %s", got.status, got.body)
	}
	if end := o.waitRotation(r.ID, 10*time.Second); end.Phase != "done" {
		t.Fatalf("decommission ended %s: %s", end.Phase, end.Outcome)
	}
	if ev := o.auditAction(r.ID, "revoke.confirmed"); ev == nil || ev.Actor != "alice@example.com" || ev.Detail["verified"] != "true" {
		t.Fatalf("the confirmation audit: %+v", ev)
	}
	if live := o.liveAtIssuer(); len(live) != 0 {
		t.Fatalf("live at the issuer after the decommission: %v", live)
	}
	d.stop()
	o.scanForSecrets()
}
