package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

// attestGate reads attestations with a short horizon, and 401s from
// Prometheus.
var attestGate = &zdGate{Attest: true, Sections: strings.Replace(recommendedGates["consumers"].Sections, "horizon: 1h", "horizon: 5s", 1),
	Drain: recommendedGates["consumers"].Drain}

type consumersView struct {
	Current   int `json:"current_generation"`
	Consumers []struct {
		Name       string `json:"name"`
		Generation int    `json:"generation"`
		State      string `json:"state"`
		LastSeen   string `json:"last_seen"`
	} `json:"consumers"`
}

func (s *zdStack) consumers() map[string]string {
	s.t.Helper()
	var v consumersView
	if code := s.w.api("GET", "/v1/keys/"+zdKey+"/consumers", nil, &v); code != 200 {
		s.t.Fatalf("GET consumers: %d", code)
	}
	out := map[string]string{}
	for _, c := range v.Consumers {
		out[c.Name] = c.State + "@" + string(rune('0'+c.Generation))
	}
	return out
}

// Two consumers attest the generation they hold. The gate holds while the
// slow one still reports the old generation (GET /v1/keys/{key}/consumers
// shows it behind), passes a quiet period after it attests the new one,
// and a consumer that stops attesting holds the next rotation only until
// the horizon has passed since it was last heard from — then the API shows
// it stale.
func TestAttestationsHoldTheGateUntilEveryConsumerMoved(t *testing.T) {
	t.Parallel()
	const quiet, horizon = time.Second, 5 * time.Second
	s := newZDStack(t, zdOptions{Quiet: quiet, MaxWait: time.Minute, Watch: 500 * time.Millisecond, Gate: attestGate})
	env := "ATTEST_SECRET=" + zdAttestSecret
	fast := s.startConsumer("fast", 200*time.Millisecond, append(s.fileSource(), s.attestArgs("fast")...), env)
	// The slow consumer re-reads a copy of the key that nobody updates.
	oldKey := s.sinkValues()["files"]
	slow := s.startConsumer("slow", 500*time.Millisecond, append([]string{"-key-env", "OLD_KEY"}, s.attestArgs("slow")...), env, "OLD_KEY="+oldKey)
	fast.waitServed(10, 15*time.Second)
	slow.waitServed(10, 15*time.Second)

	r := s.rotate("two attesting consumers")
	s.waitFor(r.ID, "draining", 20*time.Second, func(r zdRotation) bool { return r.Phase == "draining" })
	s.holdsFor(r.ID, 3*quiet, "", func(zdRotation) error { return nil })
	if got := s.consumers(); got["slow"] != "behind@1" || got["fast"] != "current@2" {
		t.Fatalf("consumers while the slow one is on generation 1: %v", got)
	}
	slowRep := slow.stop()
	moved := s.startConsumer("slow-moved", time.Second, append(s.fileSource(), s.attestArgs("slow")...), env)
	waitLive(t, moved, "an attestation", func(r consumer.Report) bool { return r.LastAttested != "" })
	movedAt := moved.live().LastAttestedAt
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	drained := event(t, s.audit(r.ID), "drained")
	if drained.At.Sub(movedAt) < quiet-50*time.Millisecond {
		t.Fatalf("drained %s after the slow consumer attested the new generation, less than the quiet period", drained.At.Sub(movedAt))
	}
	if !strings.Contains(drained.Detail["asked"], "old_key_use") || !strings.Contains(drained.Detail["source"], "attested") {
		t.Fatalf("drained event: %+v", drained.Detail)
	}
	firstGap := drained.At.Sub(movedAt).Round(time.Millisecond)

	// The slow consumer stops attesting (still on generation 2).
	last := moved.stop()
	r2 := s.rotate("one consumer went silent")
	s.waitFor(r2.ID, "draining", 20*time.Second, func(r zdRotation) bool { return r.Phase == "draining" })
	if got := s.consumers(); !strings.HasPrefix(got["slow"], "behind@2") {
		t.Fatalf("consumers while the silent one is within the horizon: %v", got)
	}
	done2 := s.waitDone(r2.ID, 30*time.Second)
	if done2.Phase != "done" {
		t.Fatalf("second rotation ended %s: %s %s", done2.Phase, done2.Outcome, done2.LastError)
	}
	drained2 := event(t, s.audit(r2.ID), "drained")
	if d := drained2.At.Sub(last.LastAttestedAt); d < horizon {
		t.Fatalf("drained %s after the silent consumer's last attestation, within the horizon %s", d, horizon)
	}
	if got := s.consumers(); got["slow"] != "stale@2" || got["fast"] != "current@3" {
		t.Fatalf("consumers after the horizon: %v", got)
	}
	reps := map[string]consumer.Report{"fast": fast.stop(), "slow": slowRep, "slow-moved": last}
	for name, rep := range reps {
		t.Log(summary(name, rep))
		if rep.Failures != 0 || rep.AttestErrors != 0 {
			t.Errorf("consumer %s: %d failures, %d attestation errors (%s)", name, rep.Failures, rep.AttestErrors, rep.LastAttestError)
		}
	}
	t.Logf("figures: slow consumer attested the new generation → drained %s (quiet %s); silent consumer's last attestation → drained %s (horizon %s); attestations fast %d, slow %d+%d",
		firstGap, quiet, drained2.At.Sub(last.LastAttestedAt).Round(time.Millisecond), horizon, reps["fast"].Attestations, slowRep.Attestations, last.Attestations)
	s.d.stop()
	s.w.scanForSecrets()
}
