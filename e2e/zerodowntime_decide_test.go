package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

// Past max_wait with a consumer still failing, the rotation holds and
// escalates (a critical rotation.held notification), and time alone
// changes nothing: the old key stays valid, nothing is revoked, until a
// human decides. Cancel rolls back — the old key is current again in every
// sink, read back with Vault's and AWS's own clients, and the new key is
// dead at the issuer only once the drain gate passed on it, so no consumer
// that had cut over fails; approve revokes the old key anyway. Either way no
// consumer request fails.
func TestDrainTimeoutWaitsForAHuman(t *testing.T) {
	t.Parallel()
	for _, decision := range []string{"cancel", "approve"} {
		t.Run(decision, func(t *testing.T) {
			t.Parallel()
			const maxWait = 4 * time.Second
			s := newZDStack(t, zdOptions{Quiet: 2 * time.Second, MaxWait: maxWait, Watch: time.Second, Vault: true, AWS: true})
			consumers := map[string]*consumerProc{
				"file":  s.startConsumer("file", 200*time.Millisecond, s.fileSource()),
				"vault": s.startConsumer("vault", 200*time.Millisecond, s.vaultSource()),
				"aws":   s.startConsumer("aws", 200*time.Millisecond, s.awsSource()),
			}
			broken := s.startConsumer("broken", 0, []string{"-key-env", "BROKEN_KEY"}, "BROKEN_KEY="+brokenKey)
			for _, c := range consumers {
				c.waitServed(10, 15*time.Second)
			}
			waitLive(t, broken, "401s", func(r consumer.Report) bool { return r.ByStatus["401"] >= 10 })
			oldVal := s.sinkValues()["files"]
			oldFP := consumer.Fingerprint(oldVal)

			r := s.rotate("drain timeout")
			held := s.waitFor(r.ID, "held for a drain timeout", 30*time.Second, func(r zdRotation) bool { return r.Hold == "drain_timeout" })
			heldAt := time.Now()
			if held.Phase != "draining" || !held.Drain.Escalated || held.Drain.LastValue <= 0 || !strings.Contains(held.HoldDetail, "approve to revoke anyway") {
				t.Fatalf("held rotation: %+v", held)
			}
			var escalation *zdNotification
			for _, n := range s.waitNotified(r.ID, "rotation.held", 10*time.Second) {
				if n.Fields["hold"] == "drain_timeout" && n.Severity == "critical" {
					escalation = &n
				}
			}
			if escalation == nil || !strings.Contains(escalation.Message, "has not drained after "+maxWait.String()) {
				t.Fatalf("no critical drain_timeout escalation: %+v", s.notified(r.ID, "rotation.held"))
			}
			// Time alone changes nothing.
			s.holdsFor(r.ID, 3*time.Second, "drain_timeout", func(zdRotation) error { return nil })
			newVals := s.sinkValues()
			newVal := newVals["files"]
			newFP := consumer.Fingerprint(newVal)
			for sink, v := range newVals {
				if v != newVal || newFP == oldFP {
					t.Fatalf("sink %s does not hold the new key as current during the hold", sink)
				}
			}
			if s.call(oldVal) != 200 || s.call(newVal) != 200 {
				t.Fatal("both keys must work while the rotation waits for a human")
			}
			for _, c := range consumers {
				waitLive(t, c, "the new key", func(r consumer.Report) bool { return r.Current() == newFP })
			}
			decided := time.Now()
			var want, wantCur, wantDead, deadName string
			switch decision {
			case "cancel":
				// The person on call, through the admin API with their own token.
				oncall := s.w.client(s.w.token("oncall@example.com", "operator"))
				if out, errOut, code := oncall.rekey("", "cancel", r.ID, "--reason", "a consumer still fails; investigate first"); code != 0 {
					t.Fatalf("cancel: exit %d: %s%s", code, out, errOut)
				}
				want, wantCur, wantDead, deadName = "cancelled", oldVal, newVal, zdKey+"-v2"
			case "approve":
				// Another person than the requester (the break-glass
				// account that started it), through the admin API, with a
				// token the requester did not create (whoever creates a
				// token could use it: docs/SECURITY.md).
				oncall := s.w.client(s.w.tokenFromLead("oncall@example.com", "approver"))
				if out, errOut, code := oncall.rekey("", "approve", r.ID, "--comment", "the failing caller is not ours"); code != 0 {
					t.Fatalf("approve: exit %d: %s%s", code, out, errOut)
				}
				want, wantCur, wantDead, deadName = "done", newVal, oldVal, zdKey+"-v1"
			}
			done := s.waitDone(r.ID, 60*time.Second)
			decidedIn := time.Since(decided)
			if done.Phase != want {
				t.Fatalf("after %s the rotation ended %s (%s), want %s", decision, done.Phase, done.Outcome, want)
			}
			for sink, v := range s.sinkValues() {
				if v != wantCur {
					t.Errorf("after %s, sink %s does not hold the %s key as current", decision, sink, map[bool]string{true: "old", false: "new"}[wantCur == oldVal])
				}
			}
			live := map[bool]string{true: zdKey + "-v1", false: zdKey + "-v2"}[wantCur == oldVal]
			if s.kaKey(deadName).Status != "revoked" || s.kaKey(live).Status != "active" || len(s.ka.Keys()) != 2 {
				t.Fatalf("issuer keys after %s: %+v", decision, s.ka.Keys())
			}
			if got := s.call(wantDead); got != 401 {
				t.Fatalf("the revoked key %s answers %d, want 401", deadName, got)
			}
			if got := s.call(wantCur); got != 200 {
				t.Fatalf("the current key answers %d, want 200", got)
			}
			events := s.audit(r.ID)
			switch decision {
			case "cancel":
				if e := event(t, events, "cancel"); e.Actor != "oncall@example.com" || hasEvent(events, "revoked") {
					t.Fatalf("cancel in the audit trail: %+v", events)
				}
				event(t, events, "rolled_back")
			case "approve":
				if e := event(t, events, "decision.approve"); e.Actor != "oncall@example.com" {
					t.Fatalf("approval by %s", e.Actor)
				}
				if e := event(t, events, "drain.overridden"); e.Detail["by"] != "revoke" {
					t.Fatalf("drain override: %+v", e)
				}
				event(t, events, "revoked")
			}
			for _, c := range consumers {
				waitLive(t, c, "the current key", func(r consumer.Report) bool { return r.Current() == consumer.Fingerprint(wantCur) })
			}
			for _, c := range consumers { // a few more requests on the current key
				c.waitServed(c.live().Served+5, 15*time.Second)
			}
			var failures []string
			for name, c := range consumers {
				rep := c.stop()
				t.Log(summary(name, rep))
				if last := rep.Spans[len(rep.Spans)-1]; last.Status != "200" || last.Fingerprint != consumer.Fingerprint(wantCur) {
					t.Errorf("consumer %s ends on %+v", name, last)
				}
				if rep.Failures == 0 {
					continue
				}
				failures = append(failures, fmt.Sprintf("%s: %d failed %v", name, rep.Failures, rep.ByStatus))
				for _, sp := range rep.Spans {
					if sp.Status != "200" {
						failures = append(failures, fmt.Sprintf("  %s: %+v (key %s; decided at %s)", name, sp,
							map[string]string{oldFP: "old", newFP: "new"}[sp.Fingerprint], decided.Format(time.RFC3339Nano)))
					}
				}
			}
			if len(failures) > 0 {
				t.Errorf("consumer requests failed around the %s (want none):\n%s", decision, strings.Join(failures, "\n"))
			}
			t.Logf("figures: held %s after the drain began (max_wait %s), then %s of waiting changed nothing; %s by oncall → %s in %s",
				heldAt.Sub(held.Drain.StartedAt).Round(time.Millisecond), maxWait, decided.Sub(heldAt).Round(time.Millisecond), decision, done.Phase, decidedIn.Round(time.Millisecond))
			broken.stop()
			s.d.stop()
			s.w.scanForSecrets()
		})
	}
}
