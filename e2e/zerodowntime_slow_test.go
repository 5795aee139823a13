package e2e

import (
	"slices"
	"testing"
	"time"
)

// A consumer that reloads its key three times slower than the quiet period
// — the case a 401-rate gate cannot protect (issue 16: 497 failed requests
// of 1,742 with a Vault consumer reloading every 15 s) — goes through five
// rotations without one failed request under every recommended gate: the
// gate sees it still on the old key and waits for it. The figures: requests,
// failures, and per rotation the time from the consumer's last use of the
// old key to the revoke.
func TestSlowConsumerUnderEveryRecommendedGate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"prometheus", "kubeadapt", "consumers"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const quiet, reload, rotations = time.Second, 3 * time.Second, 5
			s := newZDStack(t, zdOptions{Quiet: quiet, MaxWait: time.Minute, Watch: 500 * time.Millisecond, Gate: recommendedGates[name]})
			slow := s.slowConsumer("slow", reload)
			slow.waitServed(10, 15*time.Second)
			var gaps []time.Duration
			for i := range rotations {
				oldFP := s.w.sink(zdKey).Current.Fingerprint
				r := s.rotate("slow consumer, rotation " + string(rune('1'+i)))
				done := s.waitDone(r.ID, 60*time.Second)
				if done.Phase != "done" {
					t.Fatalf("rotation %d ended %s: %s %s", i+1, done.Phase, done.Outcome, done.LastError)
				}
				revoked := event(t, s.audit(r.ID), "revoked")
				rep := slow.live()
				old, ok := rep.Key(oldFP)
				if !ok || old.LastSentAt.IsZero() {
					t.Fatalf("rotation %d: the consumer never used the old key %s: %+v", i+1, oldFP[:8], rep.Keys)
				}
				if !old.LastSentAt.Before(revoked.At) {
					t.Fatalf("rotation %d: the consumer used the old key at %s, after the revoke at %s", i+1, old.LastSentAt, revoked.At)
				}
				gaps = append(gaps, revoked.At.Sub(old.LastSentAt).Round(time.Millisecond))
			}
			rep := slow.stop()
			t.Log(summary("slow", rep))
			if rep.Failures != 0 || rep.Served != rep.Requests {
				t.Fatalf("the slow consumer failed %d of %d requests: %v %+v", rep.Failures, rep.Requests, rep.ByStatus, rep.Spans)
			}
			if len(rep.Keys) != rotations+1 {
				t.Fatalf("the consumer held %d keys, want %d", len(rep.Keys), rotations+1)
			}
			t.Logf("figures: gate %s, quiet %s, consumer reload %s: %d rotations, %d requests, %d failed; last old-key use → revoke %v (min %s)",
				name, quiet, reload, rotations, rep.Requests, rep.Failures, gaps, slices.Min(gaps))
			s.d.stop()
			s.w.scanForSecrets()
		})
	}
}

// A consumer that never reloads holds every recommended gate: it keeps
// using the old key, so the rotation waits, then holds at max_wait for a
// person — the old key is never revoked under it and it never fails.
func TestNeverReloadingConsumerHoldsEveryRecommendedGate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"prometheus", "kubeadapt", "consumers"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const maxWait = 3 * time.Second
			s := newZDStack(t, zdOptions{Quiet: time.Second, MaxWait: maxWait, Watch: time.Second, Gate: recommendedGates[name]})
			stuck := s.slowConsumer("stuck", 0)
			stuck.waitServed(10, 15*time.Second)
			r := s.rotate("a consumer that never reloads")
			held := s.waitFor(r.ID, "held at max_wait", 30*time.Second, func(r zdRotation) bool { return r.Hold == "drain_timeout" })
			if held.Phase != "draining" || !held.Drain.Escalated {
				t.Fatalf("held rotation: %+v", held)
			}
			s.holdsFor(r.ID, 2*time.Second, "drain_timeout", func(zdRotation) error { return nil })
			rep := stuck.stop()
			t.Log(summary("stuck", rep))
			if rep.Failures != 0 || len(rep.Keys) != 1 {
				t.Fatalf("the consumer that never reloads: %d failures, %d keys: %v", rep.Failures, len(rep.Keys), rep.ByStatus)
			}
			if k := s.kaKey(zdKey + "-v1"); k.Status != "active" {
				t.Fatalf("the old key is %s under a consumer still using it", k.Status)
			}
			t.Logf("figures: gate %s: held at max_wait %s after %d polls (%s); %d requests, %d failed",
				name, maxWait, held.Drain.Polls, clipText(held.HoldDetail), rep.Requests, rep.Failures)
			s.d.stop()
		})
	}
}
